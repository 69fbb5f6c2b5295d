// Answers every request on port 8000 with "Hello World!" and logs it.
const http = require('http');
const port = 8000;

const server = http.createServer((req, res) => {
  console.log(`${new Date().toISOString()} ${req.method} ${req.url}`);
  res.writeHead(200, { 'Content-Type': 'text/plain' });
  res.end('Hello World!\n');
});

server.listen(port, () => console.log(`hello: listening on port ${port}`));

// As the container's init, node gets no default SIGTERM handler: stop promptly.
process.on('SIGTERM', () => server.close(() => process.exit(0)));
