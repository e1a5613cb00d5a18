"""The entries of an archive being loaded, each read exactly once.

A tar (possibly a pipe) is streamed through once. Each regular entry is hashed as it passes;
small ones are kept in memory, large ones (layers) are decompressed straight into an
uncommitted blob writer in the store's tmp dir, so a layer is written to disk once, already in
the form the store keeps. Nothing reaches ``blobs/`` until ``commit``, after every check passed;
``close`` removes what was not committed.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from pybuild.errors import ArchiveError, DigestMismatch, LayerError, UnsafePathError
from pybuild.store import Store
from pybuild.store.blobs import BlobWriter

SMALL = 1 << 20            # entries up to this size stay in memory ...
MEMORY_BUDGET = 64 << 20   # ... while all of them together stay under this
CHUNK = 1 << 20
MAX_LINKS = 16


@dataclass
class Entry:
    """One regular file of the archive. Mutable: the decompressed form is filled in lazily."""

    name: str
    size: int
    digest: str = ""                  # sha256 of the bytes as stored in the archive
    data: bytes | None = None         # those bytes, for small entries
    writer: BlobWriter | None = None  # the decompressed content, for layers
    error: str = ""                   # why decompressing failed, reported only if it is a layer
    committed: bool = field(default=False)


class _Hashing:
    """Reads exactly ``size`` bytes of ``src``, hashing them unless told the hash is known."""

    def __init__(self, src: BinaryIO, size: int):
        self.src, self.left = src, size
        self.hash: Any = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = self.src.read(n) if n else b""
        if n and not data:
            raise ArchiveError("archive is truncated: an entry ends early")
        if self.hash is not None:
            self.hash.update(data)
        self.left -= len(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


class Spool:
    def __init__(self, store: Store):
        self.store = store
        self.entries: dict[str, Entry] = {}
        self.links: dict[str, str] = {}
        self.in_memory = 0

    # --- filling ---------------------------------------------------------------------------
    def add(self, name: str, stream: BinaryIO, size: int) -> Entry:
        if name in self.entries or name in self.links:
            raise ArchiveError(f"archive has two entries named {name!r}")
        self._refuse_through_link(name)
        entry = Entry(name, size)
        self.entries[name] = entry
        reader = _Hashing(stream, size)
        if size <= SMALL and self.in_memory + size <= MEMORY_BUDGET:
            entry.data = reader.read(size) if size else b""
            self.in_memory += size
        else:
            self._ingest(entry, reader)
        reader.drain()
        if reader.hash is not None:
            entry.digest = "sha256:" + reader.hash.hexdigest()
        elif entry.writer is not None:
            entry.digest = _written_digest(entry.writer)
        return entry

    def add_link(self, name: str, target: str) -> None:
        if name in self.entries or name in self.links:
            raise ArchiveError(f"archive has two entries named {name!r}")
        self._refuse_through_link(name)
        self.links[name] = target

    def _refuse_through_link(self, name: str) -> None:
        parts = name.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent in self.links:
                raise UnsafePathError(f"refusing archive entry {name!r}: its parent {parent!r} "
                                      "is a link")

    def _ingest(self, entry: Entry, reader: _Hashing) -> None:
        """A large entry into a blob writer; a plain one is hashed once, by the writer."""
        from pybuild.layers.compression import sniff

        kind, prefix = sniff(reader)  # type: ignore[arg-type]
        if kind != "none":
            self._decompress(entry, _Prefixed(prefix, reader))  # type: ignore[arg-type]
            return
        entry.writer = writer = self.store.blobs.writer()
        reader.hash = None  # the writer's hash of prefix + rest is the entry's digest
        writer.write(prefix)
        while chunk := reader.read(CHUNK):
            writer.write(chunk)

    def _decompress(self, entry: Entry, src: BinaryIO) -> None:
        from pybuild.layers.compression import open_decompressed

        entry.writer = writer = self.store.blobs.writer()
        try:
            plain = open_decompressed(src)
            while chunk := plain.read(CHUNK):
                writer.write(chunk)
        except LayerError as err:
            entry.error = str(err)
            writer.abort()
            entry.writer = None

    # --- reading ---------------------------------------------------------------------------
    def has(self, name: str) -> bool:
        return self._resolve(name, quiet=True) is not None

    def get(self, name: str) -> Entry:
        entry = self._resolve(name, quiet=False)
        assert entry is not None
        return entry

    def _resolve(self, name: str, *, quiet: bool) -> Entry | None:
        for _ in range(MAX_LINKS):
            if name in self.entries:
                return self.entries[name]
            if name not in self.links:
                if quiet:
                    return None
                raise ArchiveError(f"archive has no {name!r}")
            name = self.links[name]
        raise ArchiveError(f"archive entry {name!r}: too many levels of links")

    def read_bytes(self, name: str) -> bytes:
        entry = self.get(name)
        if entry.data is None:
            raise ArchiveError(f"archive entry {name!r} is too large for a JSON document")
        return entry.data

    def read_json(self, name: str) -> Any:
        try:
            return json.loads(self.read_bytes(name))
        except (ValueError, UnicodeDecodeError) as err:
            raise ArchiveError(f"archive entry {name!r} is not valid JSON: {err}") from None

    def check_blob(self, name: str, digest: str, size: int | None) -> Entry:
        """The entry, after checking it is ``size`` bytes hashing to ``digest``."""
        if not self.has(name):
            raise ArchiveError(f"blob {digest} is named but not in the archive")
        entry = self.get(name)
        if size is not None and entry.size != size:
            raise DigestMismatch(f"blob {digest}: size is {entry.size}, descriptor says {size}")
        if entry.digest != digest:
            raise DigestMismatch(f"blob {digest}: content has digest {entry.digest}")
        return entry

    def plain(self, name: str) -> tuple[str, int]:
        """Digest and size of the entry decompressed (the layer's diff ID and size)."""
        entry = self.get(name)
        if entry.writer is None and entry.data is not None and not entry.error:
            self._decompress(entry, io.BytesIO(entry.data))
        if entry.writer is None:
            raise ArchiveError(f"layer {name}: {entry.error or 'no content'}")
        return _written_digest(entry.writer), entry.writer.size

    # --- finishing -------------------------------------------------------------------------
    def commit(self, name: str, diff_id: str) -> None:
        """Move the decompressed entry into the store as blob ``diff_id`` (verified again)."""
        entry = self.get(name)
        if entry.committed or self.store.blobs.has(diff_id):
            return
        if entry.writer is None:
            raise ArchiveError(f"layer {name} was not decompressed")
        entry.writer.commit(diff_id, entry.writer.size)
        entry.committed = True

    def close(self) -> None:
        for entry in self.entries.values():
            if entry.writer is not None and not entry.committed:
                entry.writer.abort()


class _Prefixed:
    """A few already-read bytes put back in front of a stream."""

    def __init__(self, prefix: bytes, src: _Hashing):
        self.prefix, self.src = prefix, src

    def read(self, n: int = -1) -> bytes:
        if self.prefix:
            cut = len(self.prefix) if n < 0 else n
            out, self.prefix = self.prefix[:cut], self.prefix[cut:]
            return out
        return self.src.read(n)

    def readable(self) -> bool:
        return True


def _written_digest(writer: BlobWriter) -> str:
    # BlobWriter hashes what passes through it: reading its hash saves hashing twice.
    return writer.digest
