"""Directory descriptors inside an extraction root, opened one component at a time.

Every component is opened with O_NOFOLLOW, so a symlink anywhere in an entry's parent path, put
there by the archive or already on disk, is refused instead of followed. Writes then go through
``*at`` calls relative to the parent's descriptor and never re-resolve a path.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from pybuild.errors import LayerError, UnsafePathError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CACHE_MAX = 256


def show(name: bytes) -> str:
    """A path for a one-line message."""
    return name.decode("utf-8", "backslashreplace").replace("\n", "\\n")


class SafeRoot:
    def __init__(self, root: Path):
        root.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(root, _DIR_FLAGS)
        self._cache: dict[bytes, int] = {b"": self.fd}

    def close(self) -> None:
        for rel, fd in self._cache.items():
            if rel:
                os.close(fd)
        self._cache.clear()
        os.close(self.fd)

    def dir_fd(self, rel: bytes, *, entry: bytes, create: bool) -> int | None:
        """The descriptor of directory ``rel``; missing ones are made (0755) or give None."""
        fd = self._cache.get(rel)
        if fd is not None:
            return fd
        parent, _, base = rel.rpartition(b"/")
        parent_fd = self.dir_fd(parent, entry=entry, create=create)
        if parent_fd is None:
            return None
        fd = self._open_child(parent_fd, rel, base, entry, create)
        if fd is not None:
            self._cache[rel] = fd
        return fd

    def trim(self) -> None:
        """Bound the open descriptors; call only between entries, as it closes them."""
        if len(self._cache) > _CACHE_MAX:
            self._drop(lambda key: True)

    def _open_child(self, parent_fd: int, rel: bytes, base: bytes, entry: bytes,
                    create: bool) -> int | None:
        try:
            return os.open(base, _DIR_FLAGS, dir_fd=parent_fd)
        except FileNotFoundError:
            if not create:
                return None
            os.mkdir(base, 0o755, dir_fd=parent_fd)
            return os.open(base, _DIR_FLAGS, dir_fd=parent_fd)
        except OSError as err:
            if err.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
        mode = os.lstat(base, dir_fd=parent_fd).st_mode
        if stat.S_ISLNK(mode):
            raise UnsafePathError(
                f"{show(entry)}: refusing to write through symlink {show(rel)}"
            )
        raise LayerError(f"{show(entry)}: parent {show(rel)} is not a directory")

    def forget(self, rel: bytes) -> None:
        """Close cached descriptors of ``rel`` and below: it was removed or replaced."""
        prefix = rel + b"/"
        self._drop(lambda key: key == rel or key.startswith(prefix))

    def _drop(self, match) -> None:
        for key in [k for k in self._cache if k and match(k)]:
            os.close(self._cache.pop(key))
