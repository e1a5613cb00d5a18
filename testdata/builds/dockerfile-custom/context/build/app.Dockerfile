FROM localhost/bench/busybox:latest
COPY . /ctx/
