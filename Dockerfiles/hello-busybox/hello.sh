# Serves "Hello World!" on port 8000 with busybox httpd, logging each request (-v).
mkdir -p /www
echo 'Hello World!' > /www/index.html
echo "hello: listening on port 8000"
exec httpd -f -v -p 8000 -h /www
