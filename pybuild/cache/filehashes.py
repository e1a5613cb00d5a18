"""The persistent stat -> sha256 memo of context files, under ``ROOT/cache/filehashes/``.

``pybuild.context.walk`` consults it while walking a context; it lives with the cache because
its files sit beside the cache index and, like the index, outlive a build.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from pybuild.store.fsutil import atomic_write


class FileHashMemo:
    """Content hashes of context files, trusted while the file's full stat is unchanged.

    One JSON file per context directory, replaced atomically (temp file + rename), so a
    crash leaves the old memo or the new one; an unreadable memo is simply empty.
    """

    VERSION = 1

    def __init__(self, path: str | os.PathLike[str] | None, root: str | None = None):
        """``path`` None: an in-memory memo that is never saved. With the context ``root``,
        saving forgets files that no longer exist there."""
        self.path = Path(path) if path is not None else None
        self.root = root
        self._entries: dict[str, list[int | str]] = {}
        self._seen: set[str] = set()
        self._dirty = False
        if self.path is None:
            return
        try:
            data = json.loads(self.path.read_bytes())
            if data.get("version") == self.VERSION and isinstance(data["entries"], dict):
                self._entries = data["entries"]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass

    @classmethod
    def for_context(cls, cache_dir: str | os.PathLike[str], context: str) -> FileHashMemo:
        """The memo for ``context`` under ``cache_dir/filehashes/``."""
        name = hashlib.sha256(os.path.realpath(context).encode()).hexdigest()[:32]
        return cls(Path(cache_dir) / "filehashes" / f"{name}.json", os.path.realpath(context))

    def get(self, relpath: str, key: tuple[int, ...]) -> str | None:
        self._seen.add(relpath)
        row = self._entries.get(relpath)
        if isinstance(row, list) and row is not None and tuple(row[:-1]) == key:
            return str(row[-1])
        return None

    def put(self, relpath: str, key: tuple[int, ...], digest: str) -> None:
        self._entries[relpath] = [*key, digest]
        self._dirty = True

    def save(self) -> None:
        if not self._dirty or self.path is None:
            return
        self._forget_deleted()
        data = json.dumps({"version": self.VERSION, "entries": self._entries},
                          separators=(",", ":")).encode()
        atomic_write(self.path, data)
        self._dirty = False

    def _forget_deleted(self) -> None:
        """Drop entries for files gone from the context (only files not used this run)."""
        if self.root is None:
            return
        for relpath in [r for r in self._entries if r not in self._seen]:
            try:
                os.lstat(os.path.join(self.root, relpath))
            except (FileNotFoundError, NotADirectoryError):
                del self._entries[relpath]


def sha256_file(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
