"""Symlink resolution inside a root, as if the root were ``/`` (never the host's ``/``).

One walk serves every tree pybuild resolves paths in: the build context, an image seen
through its layers, and a container's rootfs before pivot_root. Each supplies ``readlink``,
which answers for one clean absolute path: the link's target, or None when the entry is not a
symlink (or does not exist).
"""

from __future__ import annotations

import errno
from collections.abc import Callable

MAX_LINKS = 40  # as the kernel's path walk


def resolve(path: str, readlink: Callable[[str], str | None], *,
            follow_last: bool = True) -> str:
    """The clean absolute path ``path`` leads to; OSError(ELOOP) past MAX_LINKS links."""
    todo = [p for p in path.split("/") if p not in ("", ".")]
    done: list[str] = []
    links = 0
    while todo:
        part = todo.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        target = readlink("/" + "/".join([*done, part])) if (todo or follow_last) else None
        if target is None:
            done.append(part)
            continue
        links += 1
        if links > MAX_LINKS:
            raise OSError(errno.ELOOP, f"too many levels of symbolic links: {path}")
        if target.startswith("/"):
            done = []
        todo[:0] = [p for p in target.split("/") if p not in ("", ".")]
    return "/" + "/".join(done)


def host_readlink(root: str) -> Callable[[str], str | None]:
    """``readlink`` for a plain directory tree at ``root``."""
    import os

    def readlink(path: str) -> str | None:
        try:
            return os.readlink(root + path)
        except OSError:
            return None

    return readlink
