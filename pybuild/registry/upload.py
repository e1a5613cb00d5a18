"""One blob from the store to a registry: monolithic (POST, then PUT with the digest) for small
blobs, chunked (PATCH with Content-Range, then PUT) above a threshold."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from pybuild.registry.events import BlobProgress
from pybuild.registry.remote import Repository
from pybuild.store import Store

REPORT_EVERY = 4 << 20
OCTETS = {"Content-Type": "application/octet-stream"}


@dataclass(frozen=True)
class UploadPolicy:
    """Blobs over ``threshold`` bytes go in ``chunk``-byte PATCHes."""

    threshold: int = 256 << 20
    chunk: int = 64 << 20


DEFAULT_POLICY = UploadPolicy()


class _Reporting:
    """A part of a blob file, read by requests as a request body, telling progress."""

    def __init__(self, file: BinaryIO, length: int, done: int, total: int, digest: str,
                 emit: Callable[[BlobProgress], None]):
        self.file, self.left, self.done = file, length, done
        self.length, self.total, self.digest, self.emit = length, total, digest, emit
        self._next = done + REPORT_EVERY

    def __len__(self) -> int:
        return self.length

    def read(self, n: int = -1) -> bytes:
        # http.client asks for 8 KiB at a time; bigger reads cost fewer calls, and it sends
        # whatever it is given
        n = self.left if n < 0 else min(max(n, 1 << 20), self.left)
        data = self.file.read(n) if n else b""
        self.left -= len(data)
        self.done += len(data)
        if self.done >= self._next:
            self._next = self.done + REPORT_EVERY
            self.emit(BlobProgress(self.digest, "Pushing", self.done, self.total))
        return data


def _body(file: BinaryIO, offset: int, length: int, total: int, digest: str,
          emit: Callable[[BlobProgress], None]) -> Callable[[], _Reporting]:
    """A fresh request body for each attempt (one answering a 401 sends the bytes again)."""
    def make() -> _Reporting:
        file.seek(offset)
        return _Reporting(file, length, offset, total, digest, emit)
    return make


def upload_blob(store: Store, repo: Repository, digest: str, size: int,
                emit: Callable[[BlobProgress], None], policy: UploadPolicy,
                location: str | None = None) -> None:
    """Send the stored blob ``digest``; ``location`` is an upload the registry already
    opened (a mount it answered with an upload instead)."""
    location = location or repo.start_upload()
    where = f"{repo.shown}@{digest}"
    with store.blobs.open(digest, verify=False) as file:
        if size <= policy.threshold:
            repo.transport.request("PUT", location, what=where, scope=repo.scope("pull", "push"),
                                   params={"digest": digest},
                                   data=_body(file, 0, size, size, digest, emit),
                                   headers={**OCTETS, "Content-Length": str(size)}, retry=False)
            return
        offset = 0
        while offset < size:
            length = min(policy.chunk, size - offset)
            response = repo.transport.request(
                "PATCH", location, what=where, scope=repo.scope("pull", "push"),
                data=_body(file, offset, length, size, digest, emit),
                headers={**OCTETS, "Content-Length": str(length),
                         "Content-Range": f"{offset}-{offset + length - 1}"}, retry=False)
            location = repo.location(response)
            offset += length
    repo.transport.request("PUT", location, what=where, scope=repo.scope("pull", "push"),
                           params={"digest": digest}, headers={"Content-Length": "0"},
                           retry=False)


def upload_bytes(repo: Repository, data: bytes, digest: str) -> None:
    location = repo.start_upload()
    repo.transport.request("PUT", location, what=f"{repo.shown}@{digest}",
                           scope=repo.scope("pull", "push"), params={"digest": digest},
                           data=data, headers=OCTETS)
