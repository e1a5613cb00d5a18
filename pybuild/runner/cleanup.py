"""Undo what the sandbox setup wrote into the image: mount points it had to create.

A bind mount needs an existing target, so a missing ``/etc/hosts`` (or cache mount dir)
is created in the merged tree before mounting, and overlayfs puts it in the upper dir,
copying up its parent directory too. Like BuildKit, we remove such paths afterwards when
they are still empty, and then parents that were only copied up for them, so neither
reaches the layer diff.
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


def remove_created(rootfs: Rootfs, created: Iterable[str]) -> None:
    """Remove the still-empty created mount points (container paths) from the writable dir."""
    created = list(created)
    base = rootfs.path if rootfs.path is not None else rootfs.upperdir
    if base is None or not created:
        return
    for cpath in reversed(created):
        _remove_if_empty(Path(base) / cpath.lstrip("/"))
    if rootfs.path is not None:
        return
    parents = {str(Path(c.lstrip("/")).parent) for c in created} - {"."}
    for rel in sorted(parents, key=lambda p: -p.count("/")):
        while rel not in ("", ".") and _only_copied_up(Path(base), rootfs.lowerdirs, rel):
            (Path(base) / rel).rmdir()
            rel = str(Path(rel).parent)
