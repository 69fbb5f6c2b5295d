ARG BASE=busybox:latest
FROM ${BASE}
COPY . /ctx/
ADD vendor.tar /opt/vendor/
RUN find /ctx /opt/vendor | sort > /manifest.txt
