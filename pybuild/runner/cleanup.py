"""Undo what the sandbox setup wrote into the image: mount points it had to create.

A bind mount needs an existing target, so a missing ``/etc/hosts`` (or cache mount dir)
is created in the merged tree before mounting, and overlayfs puts it in the upper dir,
copying up its parent directory too. We remove such paths afterwards when they are still
empty, and then parents that were only copied up for them, so neither reaches the layer
diff.

Mount points made for the spec's ``kept_mount_points`` are left as runc and BuildKit 20.10
leave them: runc never removes a directory it made for a mount, and BuildKit removes only
the empty files it stubbed /etc/hosts and /etc/resolv.conf with, so the directory they were
made in stays changed (copied up, with a new mtime).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from pybuild.runner.spec import Rootfs

_OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")


def _remove_if_empty(path: Path) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    try:
        if stat.S_ISDIR(st.st_mode):
            path.rmdir()
        elif stat.S_ISREG(st.st_mode) and st.st_size == 0:
            path.unlink()
    except OSError:  # not empty: the run used it, keep it
        pass


def _is_opaque(path: Path) -> bool:
    for name in _OPAQUE_XATTRS:
        try:
            if os.getxattr(path, name, follow_symlinks=False):
                return True
        except OSError:
            continue
    return False


def _only_copied_up(upper: Path, lowers: Iterable[Path], rel: str) -> bool:
    """Is upper/rel an empty, non-opaque dir whose lower twin has the same owner and mode?"""
    path = upper / rel
    try:
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode) or any(os.scandir(path)) or _is_opaque(path):
            return False
    except OSError:
        return False
    for lower in lowers:
        try:
            low = os.lstat(lower / rel)
        except OSError:
            continue
        same = (low.st_mode, low.st_uid, low.st_gid) == (st.st_mode, st.st_uid, st.st_gid)
        return stat.S_ISDIR(low.st_mode) and same
    return False


def _remove_empty_file(path: Path) -> None:
    try:
        st = os.lstat(path)
        if stat.S_ISREG(st.st_mode) and st.st_size == 0:
            path.unlink()
    except OSError:
        pass


def remove_created(rootfs: Rootfs, created: Iterable[str], kept: Iterable[str] = ()) -> None:
    """Remove the still-empty created mount points (container paths) from the writable dir,
    and the parents only copied up for them; of the ``kept`` ones only empty files, their
    directories left as they are (see the module docstring)."""
    created, kept = list(created), list(kept)
    base = rootfs.path if rootfs.path is not None else rootfs.upperdir
    if base is None or not (created or kept):
        return
    rels = [k.lstrip("/") for k in kept]
    for rel in reversed(rels):
        _remove_empty_file(Path(base) / rel)

    def under_kept(rel: str) -> bool:  # a kept mount point was made in it (or is it): stays
        return any(k == rel or k.startswith(rel + "/") for k in rels)

    created_rels = [c.lstrip("/") for c in created]
    for rel in reversed(created_rels):
        if not under_kept(rel):
            _remove_if_empty(Path(base) / rel)
    if rootfs.path is not None:
        return
    parents = {str(Path(rel).parent) for rel in created_rels} - {"."}
    for rel in sorted(parents, key=lambda p: -p.count("/")):
        while (rel not in ("", ".") and not under_kept(rel)
               and _only_copied_up(Path(base), rootfs.lowerdirs, rel)):
            (Path(base) / rel).rmdir()
            rel = str(Path(rel).parent)
