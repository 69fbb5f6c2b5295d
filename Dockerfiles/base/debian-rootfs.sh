#!/bin/sh
# Make a Debian bookworm root filesystem tarball with debootstrap
# (--variant=minbase: essential packages and apt, ~100 MB unpacked), from the
# apt mirror this machine already uses, so no other internet access is needed.
#
# Usage: debian-rootfs.sh OUT.tar          (then: berth import OUT.tar debian:bookworm)
#
# Slow (a minute or more: it downloads and installs ~80 packages), so nothing
# runs it by default. The result is cached and copied on later calls:
#   BERTH_BASE_CACHE  cache dir (default /var/cache/berth-base)
#   REFRESH=1         rebuild even when the cache holds a tarball
#   MIRROR=URL        mirror to use instead of the one from /etc/apt
#   SUITE=name        Debian suite (default bookworm)
#   INCLUDE=a,b       extra packages installed by debootstrap (node-rootfs.sh: nodejs);
#                     they are part of the cache file's name
# Needs root and the debootstrap package (apt-get install debootstrap).
set -eu
out=${1:?usage: debian-rootfs.sh OUT.tar}
suite=${SUITE:-bookworm}
cache_dir=${BERTH_BASE_CACHE:-/var/cache/berth-base}
include=${INCLUDE:-}
cached="$cache_dir/debian-$suite-minbase${include:++$(echo "$include" | tr , +)}-$(dpkg --print-architecture).tar"

die() { echo "debian-rootfs.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (debootstrap needs chroot and mknod)"
command -v debootstrap >/dev/null || die "debootstrap missing: apt-get install debootstrap"

if [ -s "$cached" ] && [ "${REFRESH:-0}" != 1 ]; then
    cp "$cached" "$out"
    echo "debian-rootfs.sh: $out from cache $cached" >&2
    exit 0
fi

# The Debian mirror apt uses here: deb822 sources first, then the one-line format.
find_mirror() {
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk '
            /^[ \t]*$/ { if (uri != "" && suites ~ /(^| )'"$suite"'( |$)/) { print uri; exit } uri=""; suites=""; next }
            /^URIs:/   { uri=$2 }
            /^Suites:/ { $1=""; suites=$0 }
            END        { if (uri != "" && suites ~ /(^| )'"$suite"'( |$)/) print uri }
        ' "$f" | head -n 1
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk '$1 == "deb" && $0 !~ /\[/ && $3 == "'"$suite"'" { print $2; exit }
             $1 == "deb" && $0 ~ /\[/ { for (i = 2; i <= NF; i++) if ($i ~ /\]$/) { if ($(i+2) == "'"$suite"'") { print $(i+1); exit } } }' "$f"
    done
}
mirror=${MIRROR:-$(find_mirror | head -n 1)}
[ -n "$mirror" ] || die "no apt source for $suite in /etc/apt; set MIRROR=URL"

dir=$(mktemp -d /var/tmp/berth-debian.XXXXXX)
cleanup() {
    # debootstrap mounts /proc and /sys in the target; never delete through a mount.
    grep -F " $dir/" /proc/self/mountinfo | awk '{ print $5 }' | sort -r | while read -r m; do
        umount -l "$m" || true
    done
    rm -rf --one-file-system "$dir"
}
trap cleanup EXIT INT TERM

echo "debian-rootfs.sh: debootstrap --variant=minbase ${include:+--include=$include }$suite from $mirror (slow)" >&2
debootstrap --variant=minbase ${include:+--include="$include"} "$suite" "$dir/rootfs" "$mirror" >&2

# Trim what an image does not need and what differs from run to run.
rm -rf "$dir/rootfs/var/cache/apt/archives/"*.deb "$dir/rootfs/var/lib/apt/lists/"* \
       "$dir/rootfs/var/log/"*.log "$dir/rootfs/var/log/apt/"* "$dir/rootfs/debootstrap" \
       "$dir/rootfs/tmp/"* "$dir/rootfs/dev/"*
# Containers get /etc/hostname, hosts and resolv.conf from the engine.
: > "$dir/rootfs/etc/hostname"

mkdir -p "$cache_dir"
tar --numeric-owner --xattrs --xattrs-include='*' --sort=name -C "$dir/rootfs" -cf "$cached.tmp" .
mv "$cached.tmp" "$cached"
cp "$cached" "$out"
echo "debian-rootfs.sh: wrote $out (cached as $cached)" >&2
