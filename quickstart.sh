#!/usr/bin/env bash
# README's main command: set up a fresh machine and run berth's main job.
# Installs the system packages, builds berth, makes a busybox base image from
# Debian's busybox-static and imports it, then lists the images.
# Needs root. Uses BERTH_ROOT (default /var/lib/berth).
set -euo pipefail
cd "$(dirname "$0")"

[ "$(id -u)" = 0 ] || { echo "quickstart.sh: run as root" >&2; exit 1; }
bash .ci/install-packages
cargo build --release --workspace
berth=target/release/berth

tar=$(mktemp --suffix=.tar)
trap 'rm -f "$tar"' EXIT
sh Dockerfiles/base/busybox-rootfs.sh "$tar"
"$berth" import "$tar" busybox:latest
"$berth" images
