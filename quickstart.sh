#!/usr/bin/env bash
# README's main command: set up a fresh machine and run berth's walkthrough.
# Installs the system packages, builds berth, makes and imports the base images
# (busybox from Debian's busybox-static; node: Debian bookworm minbase with Debian's
# nodejs, cached in /var/cache/berth-base after the first run), then:
#   berth build -t kubetm/hello Dockerfiles/hello && berth run -d -p 8100:8000 --name hello kubetm/hello && curl localhost:8100
# shows the container, its logs and a command run in it, and removes it.
# Needs root. Uses BERTH_ROOT (default /var/lib/berth).
set -euo pipefail
cd "$(dirname "$0")"

[ "$(id -u)" = 0 ] || { echo "quickstart.sh: run as root" >&2; exit 1; }
bash .ci/install-packages
cargo build --release -p berth-cli
PATH="$(realpath "${CARGO_TARGET_DIR:-target}")/release:$PATH"
export PATH

work=$(mktemp -d)
cleanup() {
    rm -rf "$work"
    berth rm -f hello >/dev/null 2>&1 || true
}
trap cleanup EXIT
sh Dockerfiles/base/busybox-rootfs.sh "$work/busybox.tar"
berth import "$work/busybox.tar" busybox:latest
sh Dockerfiles/base/node-rootfs.sh "$work/node.tar"
berth import "$work/node.tar" node:bookworm
rm -f "$work"/*.tar

berth build -t kubetm/hello Dockerfiles/hello && berth run -d -p 8100:8000 --name hello kubetm/hello && curl --retry 30 --retry-delay 1 --retry-connrefused -sS localhost:8100
berth ps
berth logs hello
berth exec hello node -e 'console.log("node " + process.version + " in " + require("os").hostname())'
berth rm -f hello
