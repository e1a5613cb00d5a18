"""One description of a filesystem tree for comparisons: type, mode, owner, size, content
hash or link target, and xattrs of every path."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path


def entry(path: str) -> tuple:
    st = os.lstat(path)
    if stat.S_ISREG(st.st_mode):
        with open(path, "rb") as f:
            extra = hashlib.file_digest(f, "sha256").hexdigest()
    elif stat.S_ISLNK(st.st_mode):
        extra = os.readlink(path)
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        extra = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    else:
        extra = ""
    try:
        names = sorted(n for n in os.listxattr(path, follow_symlinks=False)
                       if not n.startswith("trusted.overlay."))
        xattrs = tuple((n, os.getxattr(path, n, follow_symlinks=False)) for n in names)
    except OSError:
        xattrs = ()
    size = st.st_size if stat.S_ISREG(st.st_mode) else 0
    return (stat.S_IFMT(st.st_mode), oct(stat.S_IMODE(st.st_mode)), st.st_uid, st.st_gid,
            size, extra, xattrs)


def tree(root: str | Path) -> dict[str, tuple]:
    """Every path below ``root`` (relative, '/'-separated) mapped to :func:`entry`."""
    out = {}
    root = str(root)
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(dirpath, name)
            out[os.path.relpath(path, root)] = entry(path)
    return out
