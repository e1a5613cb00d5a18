"""Blobs: put streams through a temp file, verify digests, keep nothing on mismatch."""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from pybuild.errors import BlobNotFound, DigestMismatch, StoreError
from pybuild.store import Store


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "root")


def test_put_and_read_back(store):
    data = os.urandom(3 << 20)  # bigger than one copy chunk
    info = store.blobs.put(io.BytesIO(data))
    assert info.digest == sha(data) and info.size == len(data)
    assert store.blobs.read_bytes(info.digest) == data
    assert store.blobs.path(info.digest) == store.root / "blobs/sha256" / info.digest[7:]
    assert list(store.blobs.digests()) == [info.digest]


def test_put_is_idempotent(store):
    first = store.blobs.put_bytes(b"same")
    second = store.blobs.put(io.BytesIO(b"same"), digest=sha(b"same"), size=4)
    assert first == second
    assert list(store.blobs.digests()) == [first.digest]


def test_put_with_expected_digest_verifies(store):
    info = store.blobs.put(io.BytesIO(b"payload"), digest=sha(b"payload"), size=7)
    assert store.blobs.has(info.digest)


def test_mismatch_keeps_nothing(store):
    with pytest.raises(DigestMismatch):
        store.blobs.put(io.BytesIO(b"evil"), digest=sha(b"good"))
    with pytest.raises(DigestMismatch, match="size"):
        store.blobs.put(io.BytesIO(b"good"), digest=sha(b"good"), size=5)
    with pytest.raises(DigestMismatch):
        store.blobs.put_bytes(b"evil", digest=sha(b"good"))
    assert list(store.blobs.digests()) == []
    assert os.listdir(store.tmp) == []


def test_reads_verify_content(store):
    info = store.blobs.put_bytes(b"original content")
    path = store.blobs.path(info.digest)
    os.chmod(path, 0o644)
    path.write_bytes(b"tampered content")
    with pytest.raises(DigestMismatch):
        store.blobs.read_bytes(info.digest)
    assert "corrupt" in store.blobs.verify(info.digest)
    with store.blobs.open(info.digest, verify=False) as raw:
        assert raw.read() == b"tampered content"


def test_missing_and_malformed_digests(store):
    with pytest.raises(BlobNotFound):
        store.blobs.read_bytes(sha(b"absent"))
    with pytest.raises(StoreError):
        store.blobs.path("sha256:../../etc/passwd")
    assert store.blobs.delete(sha(b"absent")) is False


def test_writer_abort_and_exception_leave_no_temp(store):
    with pytest.raises(RuntimeError), store.blobs.writer() as out:
        out.write(b"half")
        raise RuntimeError("writer died")
    assert os.listdir(store.tmp) == []
    assert list(store.blobs.digests()) == []


def test_writer_commits_on_exit(store):
    with store.blobs.writer() as out:
        out.write(b"abc")
    assert out.info is not None and store.blobs.read_bytes(out.info.digest) == b"abc"
    assert oct(store.blobs.path(out.info.digest).stat().st_mode & 0o777) == "0o444"
