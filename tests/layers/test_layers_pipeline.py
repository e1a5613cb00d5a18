"""The layer pipeline: hashing only (no output) takes the same diff ID and size as writing
the plain tar, with no worker thread; compression hashes both sides."""

from __future__ import annotations

import hashlib
import io
import os
import threading

import pytest

from pybuild.layers.pipeline import Pipeline

DATA = os.urandom(5000)  # crosses several 512-byte chunks, ends mid-chunk


def run(out, compression: str = "none"):
    with Pipeline(out, compression, chunk=512) as pipe:
        pipe.write(DATA[:700])
        src = io.BytesIO(DATA[700:])
        pipe.copy_stream(src)
        return pipe.finish()


def test_hashing_only_matches_the_plain_tar_written():
    threads = threading.active_count()
    hashed = run(None)
    assert threading.active_count() == threads  # nothing started beside the caller
    out = io.BytesIO()
    written = run(out)
    want = "sha256:" + hashlib.sha256(DATA).hexdigest()
    assert hashed.diff_id == hashed.digest == written.diff_id == want
    assert hashed.size == written.size == len(DATA) and out.getvalue() == DATA


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_a_compressed_layer_still_hashes_its_plain_tar(compression):
    out = io.BytesIO()
    result = run(out, compression)
    assert result.diff_id == "sha256:" + hashlib.sha256(DATA).hexdigest()
    assert result.digest == "sha256:" + hashlib.sha256(out.getvalue()).hexdigest()
    assert result.size == len(out.getvalue())


def test_a_compressed_layer_needs_an_output():
    with pytest.raises(ValueError):
        Pipeline(None, "gzip")
