"""The persistent stat -> sha256 memo of context files, and the atomic file write.

Kept apart from ``pybuild.context`` because the cache index shares the atomic write and
both live under ``ROOT/cache/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path


class FileHashMemo:
    """Content hashes of context files, trusted while the file's full stat is unchanged.

    One JSON file per context directory, replaced atomically (temp file + rename), so a
    crash leaves the old memo or the new one; an unreadable memo is simply empty.
    """

    VERSION = 1

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._entries: dict[str, list[int | str]] = {}
        self._dirty = False
        try:
            data = json.loads(self.path.read_bytes())
            if data.get("version") == self.VERSION:
                self._entries = data["entries"]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass

    @classmethod
    def for_context(cls, cache_dir: str | os.PathLike[str], context: str) -> FileHashMemo:
        """The memo for ``context`` under ``cache_dir/filehashes/``."""
        name = hashlib.sha256(os.path.realpath(context).encode()).hexdigest()[:32]
        return cls(Path(cache_dir) / "filehashes" / f"{name}.json")

    def get(self, relpath: str, key: tuple[int, ...]) -> str | None:
        row = self._entries.get(relpath)
        if row is not None and tuple(row[:-1]) == key:
            return str(row[-1])
        return None

    def put(self, relpath: str, key: tuple[int, ...], digest: str) -> None:
        self._entries[relpath] = [*key, digest]
        self._dirty = True

    def save(self) -> None:
        if not self._dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps({"version": self.VERSION, "entries": self._entries},
                          separators=(",", ":")).encode()
        atomic_write(self.path, data)
        self._dirty = False


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temp file next to ``path``, fsync it, rename it over ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def sha256_file(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
