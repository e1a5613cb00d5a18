"""A container's filesystem as a directory descriptor, and paths resolved inside it only.

Every path of a container is resolved by the kernel with openat2(2) and RESOLVE_IN_ROOT
against the container's root descriptor: ``/``, ``..`` and absolute symlinks stop at that
root, and /proc magic links are refused (RESOLVE_NO_MAGICLINKS). That holds even while a
process in the container swaps a path component for a symlink, which a resolve-then-open
in user space cannot promise (CVE-2018-15664); no code of ours ever runs with the
container's root as its own (CVE-2019-14271).

The root of a running container is ``/proc/PID/root`` of its first process. A stopped one's
is its overlay (upper over the image's layers), mounted in the private mount namespace of a
short-lived child that hands back over a socket the mount's descriptor and its namespace's
(/proc/self/ns/mnt) and exits: holding the namespace keeps the mount attached (openat2
refuses ".." with EAGAIN on a detached mount, whose every reference bumps the mount lock),
the host never sees it, and it goes when we close both. The kernel does the copy-up and
whiteouts, as while the container runs.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import posixpath
import socket
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pybuild.containers.model import ContainerConfig, State
from pybuild.errors import ContainerError

_libc = ctypes.CDLL(None, use_errno=True)
_SYS_OPENAT2 = 437  # the same on x86_64 and aarch64
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_MAX_LINKS = 40


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


def openat2(dir_fd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """openat2(2); raises OSError with the call's errno."""
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    fd = _libc.syscall(ctypes.c_long(_SYS_OPENAT2), ctypes.c_int(dir_fd), os.fsencode(path),
                       ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return fd


def open_in_root(root_fd: int, path: str, flags: int = _DIR) -> int:
    """``path`` opened inside ``root_fd``, symlinks followed but never out of it.

    openat2 answers EAGAIN when a mount or rename anywhere on the host might have let ".."
    jump out. Through a symlink on a stopped container's overlay it does so every time (the
    overlay's own lookups bump the lock it checks), so after a few tries the path is walked
    in user space instead, which is as safe: one component at a time with O_NOFOLLOW below
    descriptors, symlinks read and resolved by us, ".." taken from our own stack of opened
    directories and never past the root.
    """
    for _ in range(10):
        try:
            return openat2(root_fd, path.lstrip("/") or ".", flags,
                           RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
        except BlockingIOError:
            continue
    return _walk_in_root(root_fd, path, flags)


def _walk_in_root(root_fd: int, path: str, flags: int) -> int:
    todo = [p for p in path.split("/") if p not in ("", ".")]
    stack = [os.dup(root_fd)]
    links = 0
    try:
        while todo:
            part = todo.pop(0)
            if part == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                continue
            st = os.stat(part, dir_fd=stack[-1], follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > _MAX_LINKS:
                    raise OSError(errno.ELOOP, "too many levels of symbolic links", path)
                target = os.readlink(part, dir_fd=stack[-1])
                if target.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop())
                todo[:0] = [p for p in target.split("/") if p not in ("", ".")]
                continue
            if not todo:
                return os.open(part, flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=stack[-1])
            stack.append(os.open(part, _DIR | os.O_NOFOLLOW, dir_fd=stack[-1]))
        return os.open(".", flags | os.O_CLOEXEC, dir_fd=stack[-1])
    finally:
        for fd in stack:
            os.close(fd)


@dataclass(frozen=True)
class Entry:
    """One path of the root: its parent's descriptor (the caller closes it), its name there
    ("." for a directory opened itself), its lstat, and its clean path."""

    parent_fd: int
    name: str
    st: os.stat_result
    path: str


def locate(root_fd: int, path: str, *, follow: bool) -> Entry | None:
    """The entry ``path`` names in the root (None when missing); with ``follow`` a final
    symlink is followed, inside the root, as the kernel would."""
    current = posixpath.join("/", path)
    for _ in range(_MAX_LINKS):
        head, base = posixpath.split(current.rstrip("/") or "/")
        if base in ("", ".", ".."):
            head, base = current, "."
        try:
            pfd = open_in_root(root_fd, head)
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            st = os.stat(base, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            os.close(pfd)
            return None
        if not (follow and stat.S_ISLNK(st.st_mode)):
            return Entry(pfd, base, st, posixpath.normpath(posixpath.join(head, base)))
        try:
            target = os.readlink(base, dir_fd=pfd)
        except OSError as err:
            if err.errno not in (errno.ENOENT, errno.EINVAL):
                raise
            continue  # swapped meanwhile: look again
        finally:
            os.close(pfd)
        current = posixpath.join(head, target)  # an absolute target starts over at the root
    raise OSError(errno.ELOOP, "too many levels of symbolic links", path)


@contextlib.contextmanager
def container_root(config: ContainerConfig, state: State, state_dir: Path,
                   tmp: Path) -> Iterator[int]:
    """A descriptor of the container's root: the live one while it runs, else its overlay."""
    if state.running and state.pid:
        try:
            fd = os.open(f"/proc/{state.pid}/root", _DIR)
        except OSError as err:
            raise ContainerError(f"cannot open the root of container {config.name}: "
                                 f"{err.strerror}") from None
        keep = -1
    else:
        fd, keep = _mount_overlay(config, state_dir, tmp)
    try:
        yield fd
    finally:
        os.close(fd)
        if keep >= 0:
            os.close(keep)


def _mount_overlay(config: ContainerConfig, state_dir: Path, tmp: Path) -> tuple[int, int]:
    """(the root's descriptor, its mount namespace's)."""
    tmp.mkdir(parents=True, exist_ok=True)
    target = tempfile.mkdtemp(dir=tmp, prefix="rootfs-")
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through the socket
            ours.close()
            _child_mount(config, state_dir, target, theirs)
        theirs.close()
        msg, fds, _, _ = socket.recv_fds(ours, 4096, 2)
        os.waitpid(pid, 0)
    finally:
        ours.close()
        with contextlib.suppress(OSError):
            theirs.close()
        with contextlib.suppress(OSError):
            os.rmdir(target)
    if len(fds) != 2:
        for fd in fds:
            os.close(fd)
        why = msg.decode(errors="replace").removeprefix("error ") or "the helper died"
        raise ContainerError(f"cannot mount the filesystem of container {config.name}: {why}")
    return fds[0], fds[1]


def _child_mount(config: ContainerConfig, state_dir: Path, target: str,
                 sock: socket.socket) -> None:
    from pybuild.runner import libc
    from pybuild.runner.mounts import mount_rootfs
    from pybuild.runner.spec import Rootfs

    code = 1
    try:
        libc.unshare(libc.CLONE_NEWNS)
        libc.mount(None, "/", None, libc.MS_REC | libc.MS_PRIVATE)
        mount_rootfs(Rootfs(lowerdirs=tuple(Path(p) for p in config.lowerdirs),
                            upperdir=state_dir / "upper", workdir=state_dir / "work"), target)
        fd = os.open(target, _DIR)
        socket.send_fds(sock, [b"ok"], [fd, os.open("/proc/self/ns/mnt", os.O_RDONLY)])
        code = 0
    except BaseException as err:  # noqa: BLE001 - everything goes back as one line
        with contextlib.suppress(OSError):
            sock.sendall(f"error {err}".encode())
    finally:
        os._exit(code)
