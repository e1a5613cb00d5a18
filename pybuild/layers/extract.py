"""Applying layers: whiteouts, opaque dirs, and no write ever leaving the root.

``mode="apply"`` flattens a layer onto an existing tree (whiteouts delete). ``mode="overlay"``
makes an overlayfs lower dir: whiteouts become 0/0 character devices and opaque markers the
``trusted.overlay.opaque=y`` xattr. Per the OCI spec a whiteout only hides what lower layers
made, so names this layer itself creates are never removed by its own markers.

A hard link entry's own header (owner, mode, mtime, xattrs) is applied to the file it names,
as docker's and containerd's unpack do. ``untar=True`` is ADD's unpack of a local archive,
as docker's Untar in a chroot of the destination: a leading "/" or a ".." cannot leave the
root (it is clamped, not refused), only ``security.capability`` xattrs are set (the one
docker's layer tars keep, so what is unpacked is what the layer holds), and an entry type
docker does not unpack (GNU dump dirs, volume labels, contiguous files) fails.
"""

from __future__ import annotations

import errno
import os
import posixpath
import shutil
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO, Literal

from pybuild.errors import LayerError, UnsafePathError
from pybuild.layers import tarformat as tf
from pybuild.layers.compression import open_decompressed
from pybuild.layers.reader import Prefetcher, TarInput, iter_entries
from pybuild.layers.saferoot import SafeRoot, show
from pybuild.layers.walk import OPAQUE, WHITEOUT_PREFIX

Mode = Literal["overlay", "apply"]
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_KEEP_XATTRS = ("trusted.overlay.", "security.selinux")
_UNTAR_XATTRS = ("security.capability",)
_UNTAR_TYPES = (tf.REG, b"\0", tf.DIR, tf.SYMLINK, tf.HARDLINK, tf.CHAR, tf.BLOCKDEV, tf.FIFO)


def apply_layer(stream: BinaryIO, root: Path, *, mode: Mode = "apply",
                allow_devices: bool = True, untar: bool = False) -> None:
    """Apply one layer (plain or compressed, any format) to ``root``; ``untar``: ADD's rules
    (see the module's doc)."""
    if mode not in ("overlay", "apply"):
        raise LayerError(f"unknown apply mode {mode!r}; expected 'overlay' or 'apply'")
    applier = _Applier(SafeRoot(Path(root)), mode, allow_devices, untar)
    try:
        with Prefetcher(open_decompressed(stream)) as plain:
            for hdr, data in iter_entries(plain):  # type: ignore[arg-type]
                applier.entry(hdr, data)
        applier.finish()
    except OSError as err:
        raise LayerError(f"cannot apply layer to {root}: {err}") from None
    finally:
        applier.close()


def unpack_layers(streams: Iterable[BinaryIO], root: Path) -> None:
    """Flatten a stack of layers, lowest first, into a plain directory."""
    for stream in streams:
        apply_layer(stream, root, mode="apply")


def clean_name(name: bytes) -> bytes:
    """The entry's path relative to the root; refuses absolute paths and escapes."""
    if name.startswith(b"/"):
        raise UnsafePathError(f"{show(name)}: absolute path in layer")
    path = posixpath.normpath(name)
    if path == b"..":
        raise UnsafePathError(f"{show(name)}: path escapes the root")
    if path.startswith(b"../"):
        raise UnsafePathError(f"{show(name)}: path escapes the root")
    return b"" if path == b"." else path


def chrooted_name(name: bytes) -> bytes:
    """The entry's path relative to the root as a chroot sees it: "/" and ".." stop there."""
    return posixpath.normpath(b"/" + name).lstrip(b"/")


class _Applier:
    def __init__(self, root: SafeRoot, mode: Mode, allow_devices: bool, untar: bool = False):
        self.root = root
        self.mode = mode
        self.allow_devices = allow_devices
        self.untar = untar
        self.clean = chrooted_name if untar else clean_name
        self.touched: set[bytes] = set()  # made by this layer; its own markers spare them
        self.opaque: list[bytes] = []
        self.dir_times: list[tuple[bytes, int]] = []
        self.as_root = os.geteuid() == 0

    def close(self) -> None:
        self.root.close()

    def _touch(self, rel: bytes) -> None:
        while rel and rel not in self.touched:
            self.touched.add(rel)
            rel = rel.rpartition(b"/")[0]

    def entry(self, hdr: tf.Header, data: TarInput) -> None:
        rel = self.clean(hdr.name)
        self.root.trim()
        if self.untar and hdr.typeflag not in _UNTAR_TYPES:
            raise LayerError(f"{show(hdr.name)}: unhandled tar header type {hdr.typeflag[0]}")
        if not rel:
            return  # the root's own entry: its attributes belong to whoever made the root
        parent, _, base = rel.rpartition(b"/")
        if base.startswith(WHITEOUT_PREFIX):
            self._marker(parent, base, rel)
            return
        if hdr.typeflag in (tf.CHAR, tf.BLOCKDEV) and not self.allow_devices:
            raise UnsafePathError(f"{show(rel)}: device nodes are not allowed here")
        pfd = self.root.dir_fd(parent, entry=rel, create=True)
        assert pfd is not None
        self._touch(rel)
        is_dir = hdr.typeflag == tf.DIR
        exists = self._clear(pfd, base, rel, keep_dir=is_dir)
        if is_dir:
            self._make_dir(pfd, base, rel, hdr, exists)
        elif hdr.typeflag == tf.HARDLINK:
            self._make_link(pfd, base, rel, hdr)
        elif hdr.typeflag == tf.SYMLINK:
            os.symlink(hdr.linkname, base, dir_fd=pfd)
            self._finish_node(pfd, base, hdr, symlink=True)
        elif hdr.typeflag in (tf.CHAR, tf.BLOCKDEV, tf.FIFO):
            kind = {tf.CHAR: stat.S_IFCHR, tf.BLOCKDEV: stat.S_IFBLK, tf.FIFO: stat.S_IFIFO}
            device = os.makedev(hdr.major, hdr.minor) if hdr.typeflag != tf.FIFO else 0
            os.mknod(base, kind[hdr.typeflag] | 0o600, device, dir_fd=pfd)
            self._finish_node(pfd, base, hdr)
        elif hdr.typeflag in (tf.REG, b"\0", b"7"):
            self._make_file(pfd, base, hdr, data)
        # Other types (volume labels, GNU dump dirs) carry nothing to extract.

    def _clear(self, pfd: int, base: bytes, rel: bytes, *, keep_dir: bool) -> bool:
        """Remove what is at ``base`` unless both it and the entry are directories."""
        try:
            st = os.lstat(base, dir_fd=pfd)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return True
            self.root.forget(rel)
            shutil.rmtree(os.fsdecode(base), dir_fd=pfd)
        else:
            os.unlink(base, dir_fd=pfd)
        return False

    def _make_file(self, pfd: int, base: bytes, hdr: tf.Header, data: TarInput) -> None:
        fd = os.open(base, _FILE_FLAGS, 0o600, dir_fd=pfd)
        try:
            for chunk in data.chunks():
                while chunk:
                    chunk = chunk[os.write(fd, chunk):]
            self._chown(fd, hdr, None)
            os.chmod(fd, stat.S_IMODE(hdr.mode))
            self._set_xattrs(fd, hdr, replace=False)
            os.utime(fd, ns=(hdr.mtime_ns, hdr.mtime_ns))
        finally:
            os.close(fd)

    def _make_dir(self, pfd: int, base: bytes, rel: bytes, hdr: tf.Header, exists: bool) -> None:
        if not exists:
            os.mkdir(base, 0o700, dir_fd=pfd)
        fd = self.root.dir_fd(rel, entry=rel, create=False)
        assert fd is not None
        self._chown(fd, hdr, None)
        os.chmod(fd, stat.S_IMODE(hdr.mode))
        self._set_xattrs(fd, hdr, replace=exists)
        self.dir_times.append((rel, hdr.mtime_ns))

    def _make_link(self, pfd: int, base: bytes, rel: bytes, hdr: tf.Header) -> None:
        target = self.clean(hdr.linkname)
        tparent, _, tbase = target.rpartition(b"/")
        tfd = self.root.dir_fd(tparent, entry=rel, create=False) if target else None
        try:
            tst = os.lstat(tbase, dir_fd=tfd) if tfd is not None else None
        except FileNotFoundError:
            tst = None
        if tst is None:
            raise UnsafePathError(f"{show(rel)}: hardlink target {show(hdr.linkname)} is missing")
        if stat.S_ISDIR(tst.st_mode):
            raise UnsafePathError(f"{show(rel)}: hardlink to directory {show(hdr.linkname)}")
        os.link(tbase, base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
        # The header's metadata goes on the shared file, but a chown even to the same owner
        # drops a capability (and setuid), so only what differs is set.
        if (tst.st_uid, tst.st_gid) != (hdr.uid, hdr.gid):
            self._chown(base, hdr, pfd)
        if not stat.S_ISLNK(tst.st_mode) and (
                os.lstat(base, dir_fd=pfd).st_mode & 0o7777) != stat.S_IMODE(hdr.mode):
            os.chmod(base, stat.S_IMODE(hdr.mode), dir_fd=pfd)
        if hdr.xattrs:
            self._set_xattrs(f"/proc/self/fd/{pfd}/{os.fsdecode(base)}", hdr, replace=False)
        os.utime(base, ns=(hdr.mtime_ns, hdr.mtime_ns), dir_fd=pfd, follow_symlinks=False)

    def _finish_node(self, pfd: int, base: bytes, hdr: tf.Header, symlink: bool = False) -> None:
        self._chown(base, hdr, pfd)
        if not symlink:
            os.chmod(base, stat.S_IMODE(hdr.mode), dir_fd=pfd)
        if hdr.xattrs:
            self._set_xattrs(f"/proc/self/fd/{pfd}/{os.fsdecode(base)}", hdr, replace=False)
        os.utime(base, ns=(hdr.mtime_ns, hdr.mtime_ns), dir_fd=pfd, follow_symlinks=False)

    def _chown(self, target: int | bytes, hdr: tf.Header, pfd: int | None) -> None:
        try:
            if pfd is None:
                os.chown(target, hdr.uid, hdr.gid)
            else:
                os.chown(target, hdr.uid, hdr.gid, dir_fd=pfd, follow_symlinks=False)
        except PermissionError:
            if self.as_root:
                raise  # without root, files simply stay ours

    def _set_xattrs(self, target: int | str, hdr: tf.Header, *, replace: bool) -> None:
        follow = {} if isinstance(target, int) else {"follow_symlinks": False}
        if replace:
            for key in os.listxattr(target, **follow):
                if key not in hdr.xattrs and not key.startswith(_KEEP_XATTRS):
                    os.removexattr(target, key, **follow)
        for key, value in hdr.xattrs.items():
            if key.startswith("trusted.overlay."):
                continue  # a layer must not steer the overlay mounted on top of it
            if self.untar and key not in _UNTAR_XATTRS:
                continue
            try:
                os.setxattr(target, key, value, **follow)
            except OSError as err:
                # Linux allows user.* xattrs on neither symlinks nor devices; some filesystems
                # allow none at all. Losing those beats failing the whole layer.
                if err.errno in (errno.EPERM, errno.ENOTSUP) and not isinstance(target, int):
                    continue
                raise LayerError(f"{show(hdr.name)}: cannot set xattr {key}: {err}") from None

    # whiteouts --------------------------------------------------------------------------------
    def _marker(self, parent: bytes, base: bytes, rel: bytes) -> None:
        if base == OPAQUE:
            if self.root.dir_fd(parent, entry=rel, create=True) is not None:
                self._touch(parent)
                self.opaque.append(parent)
            return
        if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
            return  # aufs bookkeeping (.wh..wh.plnk and the like) means nothing here
        name = base[len(WHITEOUT_PREFIX):]
        if name in (b"", b".", b"..") or b"/" in name:
            raise UnsafePathError(f"{show(rel)}: malformed whiteout")
        victim = parent + b"/" + name if parent else name
        if victim in self.touched:
            return
        pfd = self.root.dir_fd(parent, entry=rel, create=self.mode == "overlay")
        if pfd is None:
            return
        self._clear(pfd, name, victim, keep_dir=False)
        if self.mode == "overlay":
            os.mknod(name, stat.S_IFCHR, os.makedev(0, 0), dir_fd=pfd)

    def finish(self) -> None:
        for rel in self.opaque:
            self.root.trim()
            fd = self.root.dir_fd(rel, entry=rel + b"/" + OPAQUE, create=True)
            assert fd is not None
            if self.mode == "overlay":
                os.setxattr(fd, "trusted.overlay.opaque", b"y")
            else:
                self._prune(fd, rel)
        for rel, mtime_ns in reversed(self.dir_times):
            self.root.trim()
            parent, _, base = rel.rpartition(b"/")
            pfd = self.root.dir_fd(parent, entry=rel, create=False)
            if pfd is not None:
                try:
                    os.utime(base, ns=(mtime_ns, mtime_ns), dir_fd=pfd, follow_symlinks=False)
                except FileNotFoundError:
                    pass  # removed by a later whiteout

    def _prune(self, fd: int, rel: bytes) -> None:
        """Under an opaque dir, remove everything lower layers made."""
        prefix = rel + b"/" if rel else b""
        for name in os.listdir(fd):
            bname = os.fsencode(name)
            child = prefix + bname
            if child not in self.touched:
                self._clear(fd, bname, child, keep_dir=False)
                continue
            if stat.S_ISDIR(os.lstat(name, dir_fd=fd).st_mode):
                child_fd = os.open(name, _DIR_FLAGS, dir_fd=fd)
                try:
                    self._prune(child_fd, child)
                finally:
                    os.close(child_fd)
