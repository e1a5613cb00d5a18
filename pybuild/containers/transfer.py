"""docker cp for a container: its root (``rootfd``) on one side, the host or a tar stream on
the other, with docker's checks (a read-only rootfs or volume takes no copy).

A stopped container's volumes and bind mounts are not in its overlay, so a path below one
is resolved in that volume's own directory instead (as its root); a running container's
root already shows them mounted.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import stat
from collections.abc import Iterator
from typing import BinaryIO

from pybuild.containers import copy as cp
from pybuild.containers.copy import Owner, Side
from pybuild.containers.model import ContainerConfig, MountSpec
from pybuild.containers.rootfd import container_root
from pybuild.errors import ContainerError
from pybuild.store import Store

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


def _mount_at(config: ContainerConfig, path: str) -> MountSpec | None:
    """The mount holding container path ``path``: the one with the longest destination."""
    clean = posixpath.normpath(posixpath.join("/", path))
    best: MountSpec | None = None
    for m in config.mounts:
        dest = posixpath.normpath(m.destination)
        if (clean == dest or clean.startswith(dest.rstrip("/") + "/")) and (
                best is None or len(dest) > len(posixpath.normpath(best.destination))):
            best = m
    return best


def check_writable(config: ContainerConfig, path: str) -> None:
    mount = _mount_at(config, path)
    if mount is not None:
        if mount.readonly:
            raise ContainerError("mounted volume is marked read-only")
    elif config.read_only:
        raise ContainerError("container rootfs is marked read-only")


@contextlib.contextmanager
def _one_line(label: str) -> Iterator[None]:
    """A system call's failure (a path the container changed meanwhile, say) as one line."""
    try:
        yield
    except OSError as err:
        where = f" {err.filename}" if err.filename else ""
        raise ContainerError(f"copying {label}:{where} {err.strerror}") from None


@contextlib.contextmanager
def _root(store: Store, config: ContainerConfig, path: str, label: str) -> Iterator[Side]:
    from pybuild.containers.lifecycle import current_state, dirs_of

    state = current_state(store, config.id)
    mount = None if state.running else _mount_at(config, path)
    missing = f"Could not find the file {path} in container {config.name}"
    if mount is not None and mount.type in ("bind", "volume"):
        host = _mount_source(store, config, mount)
        inner = posixpath.relpath(posixpath.normpath(posixpath.join("/", path)),
                                  posixpath.normpath(mount.destination))
        tail = "/." if path.endswith("/.") else "/" if path.endswith("/") else ""
        fd = os.open(host, _DIR)
        try:
            yield Side(fd, "/" + inner.removeprefix(".") + tail, label, missing)
        finally:
            os.close(fd)
        return
    with container_root(config, state, dirs_of(store).path(config.id), store.tmp) as fd:
        yield Side(fd, path, label, missing)


def _mount_source(store: Store, config: ContainerConfig, mount: MountSpec) -> str:
    if mount.type == "bind":
        return mount.source
    from pybuild.containers.volumes import volume_path

    return str(volume_path(store, config)(mount))


@contextlib.contextmanager
def _host(path: str) -> Iterator[Side]:
    # no normalising: a trailing "/" or "/." means something to cp
    full = path if path.startswith("/") else os.path.join(os.getcwd(), path)
    fd = os.open("/", _DIR)
    try:
        yield Side(fd, full, path, f"lstat {full}: no such file or directory")
    finally:
        os.close(fd)


def _owner(archive: bool, uid: int = 0, gid: int = 0) -> Owner:
    return None if archive else (uid, gid)


def copy_from(store: Store, config: ContainerConfig, src: str, dest: str, *,
              archive: bool = False, follow: bool = False) -> None:
    """``docker cp CONTAINER:SRC DEST``: the copy is the caller's unless ``archive``."""
    with _one_line(f"{config.name}:{src}"), _root(store, config, src, f"{config.name}:{src}") \
            as side, _host(dest) as host:
        cp.copy(side, host, follow=follow, owner=_owner(archive, os.getuid(), os.getgid()))


def copy_to(store: Store, config: ContainerConfig, src: str, dest: str, *,
            archive: bool = False, follow: bool = False) -> None:
    """``docker cp SRC CONTAINER:DEST``: the copy is root's in the container unless
    ``archive``."""
    check_writable(config, dest)
    with _one_line(f"{config.name}:{dest}"), _host(src) as host, \
            _root(store, config, dest, f"{config.name}:{dest}") as side:
        cp.copy(host, side, follow=follow, owner=_owner(archive))


def get_archive(store: Store, config: ContainerConfig, path: str, out: BinaryIO, *,
                follow: bool = False) -> dict[str, object]:
    """``path`` as a tar on ``out`` (docker cp CONTAINER:SRC -), owners kept; returns
    docker's stat of it (name, size, mode, mtime, linkTarget)."""
    with _one_line(f"{config.name}:{path}"), \
            _root(store, config, path, f"{config.name}:{path}") as side:
        entry, _contents, name = cp.source(side, follow=follow)
        try:
            info = _stat(entry, path)
            cp.write_archive(entry, out, top=name, owner=None)
        finally:
            os.close(entry.parent_fd)
    return info


def _stat(entry, path: str) -> dict[str, object]:
    import datetime

    st = entry.st
    link = os.readlink(entry.name, dir_fd=entry.parent_fd) if stat.S_ISLNK(st.st_mode) else ""
    when = datetime.datetime.fromtimestamp(st.st_mtime, datetime.UTC).isoformat()
    return {"name": posixpath.basename(path.rstrip("/")) or "/", "size": st.st_size,
            "mode": st.st_mode, "mtime": when, "linkTarget": link}


def put_archive(store: Store, config: ContainerConfig, path: str, data: BinaryIO) -> None:
    """Extract the tar ``data`` into the directory ``path`` (docker cp - CONTAINER:DEST)."""
    from pybuild.containers.rootfd import locate

    check_writable(config, path)
    label = f"{config.name}:{path}"
    with _one_line(label), _root(store, config, path, label) as side:
        found = locate(side.root_fd, side.path, follow=True)
        if found is not None:
            os.close(found.parent_fd)
        if found is None or not stat.S_ISDIR(found.st.st_mode):
            raise ContainerError(f'destination "{label}" must be a directory')
        with cp.opened_dir(side.root_fd, found.path, label) as dir_fd:
            cp.extract_into(dir_fd, lambda out: _pump(data, out))


def _pump(data: BinaryIO, out: BinaryIO) -> None:
    while chunk := data.read(1 << 16):
        out.write(chunk)


def spool() -> BinaryIO:
    """Where a tar for the caller waits: memory up to 8 MiB, then a temp file."""
    import tempfile

    return tempfile.SpooledTemporaryFile(8 << 20)  # type: ignore[return-value]


def chunks(buffer: BinaryIO, size: int = 1 << 20) -> Iterator[bytes]:
    buffer.seek(0)
    try:
        while chunk := buffer.read(size):
            yield chunk
    finally:
        buffer.close()
