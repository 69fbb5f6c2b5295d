#!/usr/bin/env bash
# README's main command: set up a fresh machine and run berth's main job.
# Installs the system packages, builds berth, makes a busybox base image from
# Debian's busybox-static and imports it, builds the example web site image
# (Dockerfiles/static-site), runs it with a published port, fetches the page,
# shows the container and its logs, and removes it again.
# Needs root. Uses BERTH_ROOT (default /var/lib/berth); PORT (default 8100).
set -euo pipefail
cd "$(dirname "$0")"
port=${PORT:-8100}

[ "$(id -u)" = 0 ] || { echo "quickstart.sh: run as root" >&2; exit 1; }
bash .ci/install-packages
cargo build --release -p berth-cli
berth=${CARGO_TARGET_DIR:-target}/release/berth

tar=$(mktemp --suffix=.tar)
cleanup() {
    rm -f "$tar"
    "$berth" rm -f hello >/dev/null 2>&1 || true
}
trap cleanup EXIT
sh Dockerfiles/base/busybox-rootfs.sh "$tar"
"$berth" import "$tar" busybox:latest
"$berth" build -t hello-site Dockerfiles/static-site
"$berth" images
"$berth" run -d --name hello -p "$port:8080" hello-site
"$berth" ps
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$port/" && break; sleep 0.1; done
"$berth" logs hello
"$berth" rm -f hello
