"""Mount targets held by file descriptor, so a mount can only land inside the container's root.

A mount on a path string follows whatever symlinks the path has at the moment of the mount.
Before pivot_root the host's tree is still reachable, so a path inside the image (or inside
a volume another container writes to) that is swapped for a symlink between its resolution
and the mount sends the mount out of the root: CVE-2021-30465 in runc. Here a target is
first resolved inside the root (symlinks followed as if the root were ``/``), then walked one
component at a time from an fd of the root with O_NOFOLLOW: a component that became a
symlink since then fails the walk instead of leading anywhere. The mount then goes onto the
walked fd itself, through ``/proc/self/fd/N``, as runc does since that CVE.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager

from pybuild import pathwalk

_DIR = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_ANY = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


def resolve_in_root(root: str, path: str) -> str:
    """``path`` inside ``root`` with every symlink resolved as if ``root`` were ``/``."""
    return pathwalk.resolve(path, pathwalk.host_readlink(root))


def _fail(path: str, e: OSError, why: str = "") -> OSError:
    reason = why or ("a part of it is a symlink now (changed during setup) or not a directory"
                     if e.errno in (errno.ENOTDIR, errno.ELOOP) else e.strerror)
    return OSError(e.errno, f"mount target {path} in the container: {reason}")


def open_walked(root_fd: int, cpath: str, is_dir: bool,
                created: list[str] | None = None) -> int:
    """An O_PATH fd of the symlink-free container path ``cpath`` below ``root_fd``.

    Missing components are made (directories, and a file last unless ``is_dir``) and
    recorded in ``created`` when it is given; without it a missing one is an error.
    """
    parts = [p for p in cpath.split("/") if p]
    fd = os.dup(root_fd)
    try:
        for i, name in enumerate(parts):
            want_dir = is_dir or i < len(parts) - 1
            flags = _DIR if want_dir else _ANY
            try:
                nxt = os.open(name, flags, dir_fd=fd)
            except FileNotFoundError:
                if created is None:
                    raise
                if want_dir:
                    os.mkdir(name, 0o755, dir_fd=fd)
                else:
                    os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW
                                     | os.O_CLOEXEC, 0o644, dir_fd=fd))
                created.append("/" + "/".join(parts[:i + 1]))
                nxt = os.open(name, flags, dir_fd=fd)
            os.close(fd)
            fd = nxt
        if stat.S_ISLNK(os.fstat(fd).st_mode):  # O_PATH|O_NOFOLLOW opens a final symlink
            raise OSError(errno.ELOOP, "symlink")
        return fd
    except OSError as e:
        os.close(fd)
        raise _fail(cpath, e) from e


@contextmanager
def opened(root: str, path: str, is_dir: bool,
           created: list[str] | None = None) -> Iterator[int]:
    """An O_PATH fd of container path ``path`` (resolved and walked inside ``root``, made
    where missing when ``created`` is given) while the block runs."""
    cpath = resolve_in_root(root, path)
    if cpath == "/":
        raise OSError(errno.EINVAL, f"mount target {path} in the container: it resolves to "
                      "the container's root itself")
    root_fd = os.open(root, _DIR)
    try:
        fd = open_walked(root_fd, cpath, is_dir, created)
    finally:
        os.close(root_fd)
    try:
        yield fd
    finally:
        os.close(fd)


@contextmanager
def target(root: str, path: str, is_dir: bool,
           created: list[str] | None = None) -> Iterator[str]:
    """``/proc/self/fd/N`` for ``opened``'s fd: mount(2) onto it lands on that very inode."""
    with opened(root, path, is_dir, created) as fd:
        yield f"/proc/self/fd/{fd}"
