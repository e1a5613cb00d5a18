"""Names: ``refs.json`` maps normalised ``repo:tag`` and ``repo@digest`` to image IDs.

One small file, replaced atomically (temp, fsync, rename); changes are read-modify-write under
the store lock, so concurrent taggers never lose each other's names. Readers need no lock.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pybuild.errors import CorruptStore
from pybuild.image.canonical import canonical_json
from pybuild.store.fsutil import atomic_write
from pybuild.store.lock import FileLock


@dataclass(frozen=True)
class RefTable:
    tags: dict[str, str] = field(default_factory=dict)  # "docker.io/library/x:1" -> image id
    digests: dict[str, str] = field(default_factory=dict)  # "docker.io/library/x@sha256:.." -> id

    def names_for(self, image_id: str) -> tuple[list[str], list[str]]:
        """(tags, repo digests) naming ``image_id``, sorted."""
        return (sorted(k for k, v in self.tags.items() if v == image_id),
                sorted(k for k, v in self.digests.items() if v == image_id))

    def targets(self) -> set[str]:
        return set(self.tags.values()) | set(self.digests.values())

    def to_bytes(self) -> bytes:
        return canonical_json({"tags": self.tags, "digests": self.digests})


class RefStore:
    def __init__(self, path: Path, tmp: Path, lock: FileLock):
        self.path = path
        self.tmp = tmp
        self.lock = lock

    def load(self) -> RefTable:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return RefTable()
        try:
            data = json.loads(raw)
            return RefTable(dict(data.get("tags") or {}), dict(data.get("digests") or {}))
        except (ValueError, AttributeError, TypeError) as err:
            raise CorruptStore(f"{self.path} is broken: {err}") from err

    def update(self, change: Callable[[dict[str, str], dict[str, str]], None]) -> RefTable:
        """Apply ``change(tags, digests)`` (mutating the dicts) under the lock, atomically."""
        with self.lock:
            table = self.load()
            tags, digests = dict(table.tags), dict(table.digests)
            change(tags, digests)
            new = RefTable(tags, digests)
            if new != table:
                atomic_write(self.path, new.to_bytes(), self.tmp)
            return new
