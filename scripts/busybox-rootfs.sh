#!/bin/bash
# Makes a tiny base image rootfs from the host's busybox-static: the binary, its applet
# symlinks, /etc/passwd, group and shadow, every mtime at 0. The same bytes on every run, so
# `pybuild import OUT localhost/bench/busybox:latest` gives the same image id everywhere.
#   usage: scripts/busybox-rootfs.sh OUT.tar        (needs: apt-get install busybox-static)
set -euo pipefail
out=${1:?usage: busybox-rootfs.sh OUT.tar}
busybox=/bin/busybox
[ -x "$busybox" ] || { echo "busybox-rootfs.sh: $busybox not found: apt-get install busybox-static" >&2; exit 2; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
chmod 0755 "$root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,proc,sys,dev,home}
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"
cp "$busybox" "$root/bin/busybox"
# busybox places its own applet links (relative to the new root, hence the chroot)
chroot "$root" /bin/busybox --install -s
cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat >"$root/etc/group" <<'GROUP'
root:x:0:
nobody:x:65534:
GROUP
cat >"$root/etc/shadow" <<'SHADOW'
root:*:0:0:99999:7:::
nobody:*:0:0:99999:7:::
SHADOW
chmod 0600 "$root/etc/shadow"
find "$root" -exec touch --no-dereference --date=@0 {} +
tar --directory="$root" --numeric-owner --sort=name --mtime=@0 --create --file="$out" .
