"""docker cp between two roots: a container's (see ``rootfd``) and the host's ("/").

Both directions are the same three steps, as docker's: find the source (``locate``), decide
from the destination where the copy goes and under which name (``plan``, docker's rules:
into an existing directory under the source's name, over an existing file, or as a new
entry named by the destination; ``SRC/.`` copies a directory's contents), then stream the
source as a tar (the layer writer, over descriptors opened with O_NOFOLLOW) into an
extraction (the layer extractor, which opens every component with O_NOFOLLOW below the
destination's descriptor). The extraction runs in a forked child whose working directory
is that descriptor, because the extractor takes a path and "." is the one path that names
a descriptor without resolving anything again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import posixpath
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pybuild.containers.rootfd import Entry, locate, open_in_root
from pybuild.errors import ContainerError, PybuildError
from pybuild.layers.walk import Node, make_node, open_dir, scan

Owner = tuple[int, int] | None  # None: keep the source's uid/gid


@dataclass(frozen=True)
class Side:
    """One end of a copy: a root descriptor, a path in it, and how messages name it."""

    root_fd: int
    path: str
    label: str  # "CONTAINER:PATH" or the local path
    missing: str  # the message when the source is not there


class _Owned:
    """A stat result with another owner: what the tar says without changing the files."""

    __slots__ = ("_st", "st_uid", "st_gid")

    def __init__(self, st: os.stat_result, uid: int, gid: int):
        self._st, self.st_uid, self.st_gid = st, uid, gid

    def __getattr__(self, name: str):
        return getattr(self._st, name)


def _own(node: Node, owner: Owner) -> Node:
    if owner is None:
        return node
    return dataclasses.replace(node, st=_Owned(node.st, *owner))  # type: ignore[arg-type]


def _nodes(entry: Entry, top: bytes | None, owner: Owner) -> Iterator[Node]:
    if top is not None:
        node = make_node(entry.parent_fd, top, entry.name, entry.st)
        if node is not None:
            yield _own(node, owner)
    if stat.S_ISDIR(entry.st.st_mode):
        fd = open_dir(entry.name, entry.parent_fd)
        try:
            yield from _children(fd, top + b"/" if top else b"", owner)
        finally:
            os.close(fd)


def _children(dir_fd: int, prefix: bytes, owner: Owner) -> Iterator[Node]:
    for bname, name, st in scan(dir_fd):
        node = make_node(dir_fd, prefix + bname, name, st)
        if node is None:
            continue  # a socket: tar cannot hold it
        yield _own(node, owner)
        if node.kind == "dir":
            fd = open_dir(name, dir_fd)  # O_NOFOLLOW: a dir swapped for a symlink fails here
            try:
                yield from _children(fd, node.path + b"/", owner)
            finally:
                os.close(fd)


def write_archive(entry: Entry, out: BinaryIO, *, top: bytes | None, owner: Owner) -> None:
    """``entry`` as a tar: named ``top`` (a directory's entries below it), or with ``top``
    None a directory's contents only."""
    from pybuild.layers.create import write_layer

    write_layer(_nodes(entry, top, owner), out)


def source(side: Side, *, follow: bool) -> tuple[Entry, bool, bytes | None]:
    """(entry, contents-only, the name its copy gets by default); the caller closes
    ``entry.parent_fd``."""
    contents = side.path.endswith("/.") or side.path.rstrip("/") == ""
    wants_dir = contents or side.path.endswith("/")
    entry = locate(side.root_fd, side.path, follow=follow or wants_dir)
    if entry is None:
        raise ContainerError(side.missing)
    if wants_dir and not stat.S_ISDIR(entry.st.st_mode):
        os.close(entry.parent_fd)
        raise ContainerError(f"{side.label}: not a directory")
    base = posixpath.basename(side.path.rstrip("/"))
    return entry, contents, None if contents else os.fsencode(base)


def plan(dest: Side, src_is_dir: bool, contents: bool,
         name: bytes | None) -> tuple[str, bytes | None]:
    """(the directory to extract into, the name of the copy's top entry or None)."""
    found = locate(dest.root_fd, dest.path, follow=True)
    if found is not None:
        os.close(found.parent_fd)
        if stat.S_ISDIR(found.st.st_mode):
            return found.path, name
        if src_is_dir:
            raise ContainerError(f"cannot copy a directory to a file: {dest.label}")
        return posixpath.dirname(found.path), os.fsencode(posixpath.basename(found.path))
    if dest.path.endswith("/") and not src_is_dir:
        raise ContainerError(f"destination directory {dest.label} does not exist")
    trimmed = dest.path.rstrip("/") or "/"
    parent = locate(dest.root_fd, posixpath.dirname(trimmed), follow=True)
    if parent is not None:
        os.close(parent.parent_fd)
    if parent is None or not stat.S_ISDIR(parent.st.st_mode):
        raise ContainerError(f"destination directory of {dest.label} does not exist")
    return parent.path, os.fsencode(posixpath.basename(trimmed))


def copy(src: Side, dest: Side, *, follow: bool = False, owner: Owner = None) -> None:
    """docker cp from ``src`` to ``dest`` (both resolved in their own roots)."""
    entry, contents, name = source(src, follow=follow)
    try:
        where, top = plan(dest, stat.S_ISDIR(entry.st.st_mode), contents, name)
        with opened_dir(dest.root_fd, where, dest.label) as dir_fd:
            extract_into(dir_fd, lambda out: write_archive(entry, out, top=top, owner=owner))
    finally:
        os.close(entry.parent_fd)


@contextlib.contextmanager
def opened_dir(root_fd: int, path: str, label: str) -> Iterator[int]:
    try:
        fd = open_in_root(root_fd, path)
    except OSError as err:
        raise ContainerError(f"{label}: {err.strerror}") from None
    try:
        yield fd
    finally:
        os.close(fd)


def extract_into(dir_fd: int, produce) -> None:
    """Run ``produce(out)`` (it writes a tar to ``out``) into a child that extracts the tar
    below ``dir_fd``; the child's error, if any, is raised here."""
    data_r, data_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - reports through err_w and its exit status
        os.close(data_w)
        os.close(err_r)
        _extract_child(dir_fd, data_r, err_w)
    os.close(data_r)
    os.close(err_w)
    failure: BaseException | None = None
    try:
        with open(data_w, "wb", closefd=True) as out:
            produce(out)
    except BrokenPipeError:
        pass  # the child stopped reading: its own error says why
    except BaseException as err:  # noqa: BLE001 - re-raised once the child is reaped
        failure = err
    _, status = os.waitpid(pid, 0)
    with open(err_r, "rb") as f:
        message = f.read().decode(errors="replace")
    if failure is not None:
        raise failure
    if status != 0:
        raise ContainerError(message or "the copy failed")


def _extract_child(dir_fd: int, data_r: int, err_w: int) -> None:
    from pybuild.layers.extract import apply_layer

    code = 1
    try:
        os.fchdir(dir_fd)
        with open(data_r, "rb") as stream:
            apply_layer(stream, Path("."), mode="apply", untar=True)
        code = 0
    except PybuildError as err:
        os.write(err_w, str(err).encode())
    except BaseException as err:  # noqa: BLE001 - everything goes back as one line
        os.write(err_w, f"{type(err).__name__}: {err}".encode())
    finally:
        os._exit(code)
