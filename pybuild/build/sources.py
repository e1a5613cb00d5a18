"""The files COPY and ADD read from the context or from another stage or image, as staging
``Item``s, and the digest of items for the cache key (content, mode and ownership, never
mtime). Heredocs are made in :mod:`pybuild.build.copystep`, URLs and archives in
:mod:`pybuild.build.addsource`.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import posixpath
import stat
from collections.abc import Callable, Sequence
from dataclasses import replace

from pybuild.build.rootfs import RootfsView
from pybuild.build.staging import Item, apply_chmod
from pybuild.context.walk import SourceEntry
from pybuild.errors import BuildError
from pybuild.store.filepool import MIN_SIZE


def context_items(entries: Sequence[SourceEntry], root: str, chmod: str | None,
                  first_group: int = 0,
                  content: Callable[[SourceEntry], str] | None = None) -> list[Item]:
    """Context entries as items, each source match its own group (numbered from
    ``first_group``). A directory that holds any of the entries gets the build's time:
    BuildKit's context transfer writes a directory before what is in it and does not set its
    time again after, so only empty directories keep their own. ``content`` gives a file's
    sha256, asked for the big ones that layers may share (``pybuild.store.filepool``)."""
    parents = {posixpath.dirname(e.dest) for e in entries if e.dest}
    items = []
    for e in entries:
        host = os.path.join(root, e.relpath)
        st = os.lstat(host)
        mtime = None if e.kind == "dir" and e.dest in parents else st.st_mtime
        mode = apply_chmod(e.mode, chmod, e.kind == "dir") if e.kind != "symlink" else 0o777
        big = content is not None and e.kind == "file" and st.st_size >= MIN_SIZE
        items.append(Item(e.dest, e.kind, mode, host=host, link_target=e.link_target,
                          mtime=mtime, group=first_group + e.match, inode=_inode(st),
                          content=content(e) if big and content else None,
                          content_stat=e.stat_key))
    return items


def _inode(st: os.stat_result) -> tuple[int, int] | None:
    """What tells the names of one file apart from copies: only files with several names."""
    return (st.st_dev, st.st_ino) if stat.S_ISREG(st.st_mode) and st.st_nlink > 1 else None


_CAPABILITY = "security.capability"


def _kind(st: os.stat_result) -> str:
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    if stat.S_ISLNK(st.st_mode):
        return "symlink"
    return "file"


def _glob(view: RootfsView, pattern: str) -> list[str]:
    matches = ["/"]
    for comp in [c for c in pattern.split("/") if c]:
        if any(ch in comp for ch in "*?["):
            matches = [posixpath.join(m, n) for m in matches if view.is_dir(m)
                       for n in view.listdir(view.resolve(m)) if fnmatch.fnmatchcase(n, comp)]
        else:
            matches = [posixpath.join(m, comp) for m in matches]
    return [m for m in matches if view.exists(m)]


def stage_items(view: RootfsView, patterns: Sequence[str], chmod: str | None,
                stage: str, *, excludes: Sequence[str] = (), parents: bool = False
                ) -> tuple[list[Item], int, bool]:
    """Items copied from another stage or image; (items, named sources, any dir).

    ``excludes`` match each item's path below the destination, as for the context;
    ``parents`` keeps each source's path (below a ``/./`` pivot when there is one). Each
    match is a group of its own, numbered in order."""
    items: list[Item] = []
    count, any_dir = 0, False
    for pattern in patterns:
        found_items, found, dirs = _pattern_items(view, pattern, chmod, stage, parents, count)
        items.extend(found_items)
        count, any_dir = count + found, any_dir or dirs
    if excludes:
        from pybuild.context.dockerignore import matcher_of

        excluded = matcher_of(excludes)
        items = [i for i in items if not i.rel or not excluded.matches(i.rel)]
    return items, count, any_dir


def _pattern_items(view: RootfsView, pattern: str, chmod: str | None, stage: str,
                   parents: bool, first_group: int) -> tuple[list[Item], int, bool]:
    items: list[Item] = []
    count, any_dir = 0, False
    path = posixpath.normpath("/" + pattern.lstrip("/"))
    pivot = "/"
    if parents and "/./" in "/" + pattern.lstrip("/"):
        pivot = posixpath.normpath(("/" + pattern.lstrip("/")).split("/./", 1)[0] or "/")
    wildcard = any(c in pattern for c in "*?[")
    found = _glob(view, path) if wildcard else [path]
    if not wildcard and not view.exists(path):
        raise BuildError(f"failed to compute cache key: \"{path}\" not found in {stage}")
    for match in found:
        real = view.resolve(match)
        entry = view.lookup(real)
        if entry is None:
            raise BuildError(f"failed to compute cache key: \"{match}\" not found in {stage}")
        group = first_group + count
        count += 1
        kept = posixpath.relpath(match, pivot) if parents else ""
        kept = "" if kept == "." else kept
        if stat.S_ISDIR(entry.st.st_mode):
            any_dir = True
            found_items = _walk(view, real, kept, chmod)
        else:
            found_items = [_item(view, real, kept or posixpath.basename(match), chmod)]
        items.extend(replace(i, group=group) for i in found_items)
    return items, count, any_dir


def _item(view: RootfsView, path: str, rel: str, chmod: str | None) -> Item:
    found = view.lookup(path)
    assert found is not None
    st = found.st
    kind = _kind(st)
    mode = stat.S_IMODE(st.st_mode)
    if kind != "symlink":
        mode = apply_chmod(mode, chmod, kind == "dir")
    target = os.readlink(found.host) if kind == "symlink" else None
    return Item(rel, kind, mode, host=found.host, link_target=target, mtime=st.st_mtime,
                owner=(st.st_uid, st.st_gid), inode=_inode(st),
                xattrs=_capability(found.host) if kind == "file" else ())


def _capability(host: str) -> tuple[tuple[str, bytes], ...]:
    """The one xattr a file keeps through ``COPY --from``: BuildKit copies them all, but its
    layers record only security.capability (and the context transfer sends none)."""
    try:
        return ((_CAPABILITY, os.getxattr(host, _CAPABILITY, follow_symlinks=False)),)
    except OSError:
        return ()


def _walk(view: RootfsView, path: str, rel: str, chmod: str | None) -> list[Item]:
    out = [_item(view, path, rel, chmod)]
    for name in view.listdir(path):
        child, child_rel = posixpath.join(path, name), posixpath.join(rel, name) if rel else name
        found = view.lookup(child)
        if found is None:
            continue
        if stat.S_ISDIR(found.st.st_mode):
            out.extend(_walk(view, child, child_rel, chmod))
        else:
            out.append(_item(view, child, child_rel, chmod))
    return out


def items_digest(items: Sequence[Item], chown: tuple[int, int] | None) -> str:
    """Digest of items read from an image: content, mode, ownership, link targets."""
    h = hashlib.sha256(repr(chown).encode())
    for item in items:
        h.update(f"{item.rel}\0{item.kind}\0{item.mode:o}\0{item.link_target}\0"
                 f"{item.owner}\0{item.xattrs!r}\0".encode())
        if item.data is not None:
            h.update(hashlib.sha256(item.data).digest())
        elif item.kind == "file" and item.host:
            with open(item.host, "rb") as f:
                h.update(hashlib.file_digest(f, "sha256").digest())
    return "sha256:" + h.hexdigest()
