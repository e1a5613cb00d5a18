"""Docker's copy-up: an image's content at a mount path, copied into a new, empty volume.

The source is read without following its symlinks (a symlink is copied as a symlink, whatever
it points at); the destination is written only through directory descriptors opened with
O_NOFOLLOW under a directory this module created itself, so nothing lands outside it.
Owners, modes (set after the chown that would clear setuid bits), xattrs (security.capability
after the chown that would drop it), mtimes (of a directory after its entries), hard links
within the source, fifos and device nodes come along; sockets do not, as docker's tar skips
them. Overlay's own trusted.overlay.* xattrs are left behind: they describe a layer, not a file.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pybuild.errors import VolumeError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Entry:
    """One source entry: its name, where it is on the host, its lstat."""

    name: str
    host: str
    st: os.stat_result


class Source(Protocol):
    def top(self) -> Entry | None: ...  # the directory to copy, None when there is none
    def children(self, rel: tuple[str, ...]) -> list[Entry]: ...


class DirSource:
    """A plain directory, e.g. the mount path inside a container's mounted rootfs."""

    def __init__(self, path: Path):
        self.path = str(path)

    def top(self) -> Entry | None:
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return None
        if stat.S_ISLNK(st.st_mode):  # it would be followed on the host, not in the rootfs
            raise VolumeError(f"copy-up source {self.path} is a symlink; resolve it inside "
                              "the rootfs first")
        return Entry("", self.path, st) if stat.S_ISDIR(st.st_mode) else None

    def children(self, rel: tuple[str, ...]) -> list[Entry]:
        parent = os.path.join(self.path, *rel)
        with os.scandir(parent) as it:
            return sorted((Entry(e.name, e.path, e.stat(follow_symlinks=False)) for e in it),
                          key=lambda e: e.name)


class LayerSource:
    """An image path through its unpacked layers (overlay lower dirs, bottom to top), the
    path's symlinks resolved inside the image as the container would see them."""

    def __init__(self, lowerdirs: Sequence[Path], path: str):
        from pybuild.build.rootfs import RootfsView

        self.view = RootfsView(lowerdirs)
        self.path = self.view.resolve("/" + path.strip("/"))

    def top(self) -> Entry | None:
        found = self.view.lookup(self.path)
        if found is None or not stat.S_ISDIR(found.st.st_mode):
            return None
        return Entry("", found.host, found.st)

    def children(self, rel: tuple[str, ...]) -> list[Entry]:
        parent = "/".join((self.path.rstrip("/"), *rel))
        entries = []
        for name in self.view.listdir(parent):
            found = self.view.lookup(f"{parent}/{name}")
            if found is not None:
                entries.append(Entry(name, found.host, found.st))
        return entries


def copy_tree(source: Source, dest: Path) -> Entry | None:
    """Copy the source's entries into the empty directory ``dest``; the source's top entry
    (whose owner and mode the caller gives the volume's root), or None if there is nothing."""
    top = source.top()
    if top is None:
        return None
    fd = os.open(dest, _DIR_FLAGS)
    try:
        _Copier(source, fd).copy_dir((), fd)
    finally:
        os.close(fd)
    return top


def apply_metadata(entry: Entry, fd: int) -> None:
    """Give the open file or directory ``fd`` the owner, mode, xattrs and times of ``entry``."""
    st = entry.st
    os.fchown(fd, st.st_uid, st.st_gid)
    os.fchmod(fd, stat.S_IMODE(st.st_mode))
    for name, value in _xattrs(entry.host):
        with contextlib.suppress(OSError):  # where the filesystem or our privileges allow
            os.setxattr(fd, name, value)
    os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))


def _xattrs(host: str) -> list[tuple[str, bytes]]:
    try:
        names = os.listxattr(host, follow_symlinks=False)
    except OSError:
        return []
    out = []
    for name in sorted(names):
        if name.startswith("trusted.overlay."):
            continue
        with contextlib.suppress(OSError):
            out.append((name, os.getxattr(host, name, follow_symlinks=False)))
    return out


class _Copier:
    def __init__(self, source: Source, root_fd: int):
        self.source = source
        self.root_fd = root_fd
        self.links: dict[tuple[int, int], str] = {}  # inode -> first copy, relative to root
        root = os.fstat(root_fd)
        self.dest = (root.st_dev, root.st_ino)  # a source holding the copy must not recurse

    def copy_dir(self, rel: tuple[str, ...], fd: int) -> None:
        for entry in self.source.children(rel):
            if (entry.st.st_dev, entry.st.st_ino) != self.dest:
                self.copy_entry(rel, entry, fd)

    def copy_entry(self, rel: tuple[str, ...], entry: Entry, parent_fd: int) -> None:
        st, name = entry.st, entry.name
        if stat.S_ISDIR(st.st_mode):
            os.mkdir(name, 0o700, dir_fd=parent_fd)
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
            try:
                self.copy_dir((*rel, name), fd)
                apply_metadata(entry, fd)  # last, so the entries written keep its mtime
            finally:
                os.close(fd)
        elif stat.S_ISREG(st.st_mode):
            self.copy_file(rel, entry, parent_fd)
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(entry.host), name, dir_fd=parent_fd)
            self.path_metadata(entry, parent_fd, symlink=True)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) or stat.S_ISFIFO(st.st_mode):
            os.mknod(name, stat.S_IFMT(st.st_mode) | 0o600, st.st_rdev, dir_fd=parent_fd)
            self.path_metadata(entry, parent_fd, symlink=False)
        # sockets are skipped, as docker's archive skips them

    def copy_file(self, rel: tuple[str, ...], entry: Entry, parent_fd: int) -> None:
        st = entry.st
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in self.links:
            # the first copy's path was made by this copier from real directories only
            os.link(self.links[key], entry.name, src_dir_fd=self.root_fd,
                    dst_dir_fd=parent_fd, follow_symlinks=False)
            return
        out = os.open(entry.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                      | os.O_CLOEXEC, 0o600, dir_fd=parent_fd)
        try:
            src = os.open(entry.host, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                while os.sendfile(out, src, None, _CHUNK):
                    pass
            finally:
                os.close(src)
            apply_metadata(entry, out)
        finally:
            os.close(out)
        if st.st_nlink > 1:
            self.links[key] = "/".join((*rel, entry.name))

    def path_metadata(self, entry: Entry, parent_fd: int, *, symlink: bool) -> None:
        st, name = entry.st, entry.name
        os.chown(name, st.st_uid, st.st_gid, dir_fd=parent_fd, follow_symlinks=False)
        if not symlink:  # Linux has no mode on a symlink
            os.chmod(name, stat.S_IMODE(st.st_mode), dir_fd=parent_fd)
        via = f"/proc/self/fd/{parent_fd}/{name}"  # the name itself, never what it points at
        for xname, value in _xattrs(entry.host):
            with contextlib.suppress(OSError):
                os.setxattr(via, xname, value, follow_symlinks=False)
        os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=parent_fd,
                 follow_symlinks=False)
