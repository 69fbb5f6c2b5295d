#!/bin/sh
# Make a minimal busybox root filesystem tarball from Debian's busybox-static,
# with one hard link per applet (as the official busybox image has), /etc/passwd
# and /etc/group for root and nobody, and the usual empty directories.
#
# Usage: busybox-rootfs.sh OUT.tar        (then: berth import OUT.tar busybox)
set -eu
out=${1:?usage: busybox-rootfs.sh OUT.tar}
bb=/bin/busybox
[ -x "$bb" ] || { echo "busybox-rootfs.sh: $bb missing: apt-get install busybox-static" >&2; exit 1; }
file -L "$bb" 2>/dev/null | grep -q 'statically linked' || ldd "$bb" 2>&1 | grep -q 'not a dynamic' || {
    echo "busybox-rootfs.sh: $bb is not static: apt-get install busybox-static" >&2; exit 1; }

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/bin" "$dir/etc" "$dir/dev" "$dir/proc" "$dir/sys" "$dir/tmp" "$dir/root" \
         "$dir/var/www" "$dir/home" "$dir/usr/bin" "$dir/usr/sbin" "$dir/sbin"
chmod 755 "$dir"
chmod 1777 "$dir/tmp"
chmod 700 "$dir/root"
cp "$bb" "$dir/bin/busybox"
for applet in $("$bb" --list); do
    [ "$applet" = busybox ] || ln "$dir/bin/busybox" "$dir/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n' > "$dir/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' > "$dir/etc/group"
# Fixed mtimes so the tarball (and the image made from it) is reproducible.
find "$dir" -exec touch -h -d @0 {} +
tar --numeric-owner --owner=0 --group=0 --sort=name -C "$dir" -cf "$out" .
