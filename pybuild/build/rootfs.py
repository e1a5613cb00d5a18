"""A read-only view of an image's filesystem through its unpacked layers, without mounting.

The layers are overlay lower dirs (bottom to top): a whiteout is a 0/0 character device and
an opaque directory carries ``trusted.overlay.opaque=y``. The builder reads through this view
to resolve USER names, to check whether WORKDIR exists, to follow symlinks in COPY
destinations the way the kernel would inside the container, and to copy from other stages.
Symlinks are always resolved against the image's root, never the host's.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pybuild import pathwalk
from pybuild.errors import BuildError


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
    except OSError:
        return False


@dataclass(frozen=True)
class Found:
    """Where a path of the image lives: the host path in one layer and its lstat."""

    host: str
    st: os.stat_result


class RootfsView:
    """Union lookups over overlay-format layer dirs, ``lowerdirs`` bottom to top."""

    def __init__(self, lowerdirs: Sequence[Path]):
        self.layers = [str(p) for p in reversed(lowerdirs)]  # top first

    def lookup(self, path: str) -> Found | None:
        """The topmost entry for a clean absolute image path (no symlinks followed)."""
        parts = [p for p in path.split("/") if p]
        for layer in self.layers:
            found, stop = self._in_layer(layer, parts)
            if found is not None:
                return found
            if stop:
                return None
        return None

    def _in_layer(self, layer: str, parts: list[str]) -> tuple[Found | None, bool]:
        """(entry, hidden-below): a whiteout or opaque dir on the way hides lower layers."""
        current = layer
        for i, part in enumerate(parts):
            current = os.path.join(current, part)
            try:
                st = os.lstat(current)
            except OSError:
                return None, False
            if _is_whiteout(st):
                return None, True
            last = i == len(parts) - 1
            if last:
                return Found(current, st), False
            if not stat.S_ISDIR(st.st_mode):
                return None, True  # a file or symlink here shadows lower layers' dirs
            if _is_opaque(current) and not last:
                # entries below an opaque dir come only from this layer
                rest = os.path.join(current, *parts[i + 1:])
                try:
                    st = os.lstat(rest)
                except OSError:
                    return None, True
                return (None, True) if _is_whiteout(st) else (Found(rest, st), False)
        if not parts:
            return Found(layer, os.lstat(layer)), False
        return None, False

    def listdir(self, path: str) -> list[str]:
        """Merged names of a directory, whiteouts applied."""
        parts = [p for p in path.split("/") if p]
        names: dict[str, bool] = {}
        for layer in self.layers:
            host = os.path.join(layer, *parts)
            try:
                st = os.lstat(host)
            except OSError:
                continue
            if _is_whiteout(st) or not stat.S_ISDIR(st.st_mode):
                break
            with os.scandir(host) as it:
                for entry in it:
                    if entry.name not in names:
                        names[entry.name] = not _is_whiteout(entry.stat(follow_symlinks=False))
            if _is_opaque(host):
                break
        return sorted(name for name, visible in names.items() if visible)

    def resolve(self, path: str, *, follow_last: bool = True) -> str:
        """The clean image path ``path`` leads to, following symlinks inside the image."""
        try:
            return pathwalk.resolve(path, self._readlink, follow_last=follow_last)
        except OSError:
            raise BuildError(f"too many levels of symbolic links: {path}") from None

    def _readlink(self, path: str) -> str | None:
        found = self.lookup(path)
        if found is None or not stat.S_ISLNK(found.st.st_mode):
            return None
        return os.readlink(found.host)

    def read_file(self, path: str, limit: int = 1 << 20) -> bytes | None:
        """Contents of a regular file (symlinks followed inside the image), or None."""
        found = self.lookup(self.resolve(path))
        if found is None or not stat.S_ISREG(found.st.st_mode):
            return None
        with open(found.host, "rb") as f:
            return f.read(limit)

    def is_dir(self, path: str) -> bool:
        found = self.lookup(self.resolve(path))
        return found is not None and stat.S_ISDIR(found.st.st_mode)

    def exists(self, path: str) -> bool:
        return self.lookup(self.resolve(path, follow_last=False)) is not None
