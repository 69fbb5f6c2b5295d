#!/bin/sh
# Make the node base for Dockerfiles/hello: a Debian bookworm minbase root filesystem
# (debootstrap) with Debian's own nodejs package, from the apt mirror this machine uses
# (not the host's nodejs, which may come from another repository). Cached like
# debian-rootfs.sh, in /var/cache/berth-base/debian-bookworm-minbase+nodejs-<arch>.tar.
#
# Usage: node-rootfs.sh OUT.tar          (then: berth import OUT.tar node:bookworm)
# Environment as debian-rootfs.sh (BERTH_BASE_CACHE, REFRESH, MIRROR, SUITE).
# Needs root and debootstrap.
set -eu
INCLUDE=nodejs exec sh "$(dirname "$0")/debian-rootfs.sh" "$@"
