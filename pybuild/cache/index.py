"""The cache index: step key -> what the step produced, under ``ROOT/cache/index/``.

Layout::

    keys/<key-hex>.json     one CacheRecord per key: a hit is one small file read
    slots/<slot-hex>.json   the last record stored for a step position, with its full source
                            manifest, read only to explain a miss

Every file is replaced atomically (temp file + rename), so a killed writer leaves the old
file or the new one plus a stray ``.*.tmp`` that readers never open. A record that does not
parse, or whose inputs do not hash to its key, is treated as a miss.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pybuild.cache.keys import KeyInputs, explain_miss
from pybuild.store.fsutil import atomic_write

_STALE_TMP_SECONDS = 3600


@dataclass(frozen=True)
class CacheRecord:
    """What one cached step produced.

    ``layer`` is the diff id of the layer the step added, or None for a step that added none
    (a WORKDIR that already existed); ``meta`` is free for the caller (the build keeps the
    layer's size there); ``config`` is a config change as JSON-able data, which the build
    leaves empty: it applies a step's config change from its plan, hit or miss.
    """

    key: str
    inputs: KeyInputs
    layer: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)
    created: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "inputs": self.inputs.to_json(), "layer": self.layer,
                "config": dict(self.config), "meta": dict(self.meta), "created": self.created}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> CacheRecord:
        layer = doc.get("layer")
        return cls(key=str(doc["key"]), inputs=KeyInputs.from_json(doc["inputs"]),
                   layer=None if layer is None else str(layer), config=dict(doc["config"]),
                   meta=dict(doc.get("meta") or {}), created=float(doc.get("created", 0)))


def _hex(key: str) -> str:
    algo, _, hexpart = key.partition(":")
    if algo != "sha256" or len(hexpart) != 64 or not all(c in "0123456789abcdef" for c in hexpart):
        raise ValueError(f"not a sha256 cache key: {key!r}")
    return hexpart


def slot_name(slot: str) -> str:
    """A file name for a slot: callers pass e.g. ``"<context>|<dockerfile>|<stage>/<index>"``."""
    return hashlib.sha256(slot.encode()).hexdigest()[:40]


class CacheIndex:
    """The persistent key -> CacheRecord map, shared by concurrent builds."""

    def __init__(self, root: str | os.PathLike[str]):
        self.dir = Path(root) / "cache" / "index"

    def _key_path(self, key: str) -> Path:
        return self.dir / "keys" / f"{_hex(key)}.json"

    def _slot_path(self, slot: str) -> Path:
        return self.dir / "slots" / f"{slot_name(slot)}.json"

    def get(self, key: str) -> CacheRecord | None:
        """The record for ``key``, or None when absent, unreadable or not matching its key."""
        return _read(self._key_path(key), expect_key=key)

    def put(self, record: CacheRecord, slot: str | None = None) -> None:
        """Store ``record`` (its manifest kept only in the slot file, to keep hits small)."""
        if record.inputs.key() != record.key:
            raise ValueError("record key does not match its inputs")
        lean = CacheRecord(record.key, record.inputs.without_manifest(), record.layer,
                           record.config, record.meta, record.created or time.time())
        atomic_write(self._key_path(record.key), _encode(lean))
        if slot is not None:
            full = CacheRecord(lean.key, record.inputs, lean.layer, lean.config, lean.meta,
                               lean.created)
            atomic_write(self._slot_path(slot), _encode(full))

    def last_for_slot(self, slot: str) -> CacheRecord | None:
        """The last record stored for ``slot``, whatever its key."""
        return _read(self._slot_path(slot), expect_key=None)

    def explain(self, slot: str, inputs: KeyInputs) -> str:
        """Why ``inputs`` missed, compared with the last build of the same slot."""
        last = self.last_for_slot(slot)
        return explain_miss(last.inputs if last else None, inputs)

    def remove(self, key: str) -> None:
        self._key_path(key).unlink(missing_ok=True)

    def keys(self) -> Iterator[str]:
        try:
            names = os.listdir(self.dir / "keys")
        except FileNotFoundError:
            return
        for name in sorted(names):
            if name.endswith(".json") and not name.startswith("."):
                yield "sha256:" + name[:-5]

    def clear(self) -> None:
        """Forget every record (``--no-cache`` does not need this: it just skips lookups)."""
        for sub in ("keys", "slots"):
            for path in (self.dir / sub).glob("*"):
                path.unlink(missing_ok=True)

    def remove_stale_temps(self, older_than: float = _STALE_TMP_SECONDS) -> int:
        """Delete temp files a killed writer left behind; returns how many."""
        cutoff, removed = time.time() - older_than, 0
        for path in self.dir.glob("*/.*.tmp"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed


def _encode(record: CacheRecord) -> bytes:
    return json.dumps(record.to_json(), sort_keys=True, separators=(",", ":")).encode()


def _read(path: Path, expect_key: str | None) -> CacheRecord | None:
    try:
        record = CacheRecord.from_json(json.loads(path.read_bytes()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # corrupt: a miss, and the next put replaces it
    if expect_key is not None and record.key != expect_key:
        return None
    if record.inputs.key() != record.key:
        return None
    return record
