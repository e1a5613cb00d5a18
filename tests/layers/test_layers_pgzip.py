"""The parallel gzip writer: valid gzip for every reader, same bytes however the input is cut
and however many threads run, never much larger than the data."""

from __future__ import annotations

import gzip
import os
import subprocess
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st

from pybuild.layers.pgzip import BLOCK, ParallelGzip

PIECES = st.lists(st.one_of(st.binary(max_size=3000),
                            st.integers(1, 3 * BLOCK).map(lambda n: os.urandom(n)),
                            st.integers(1, 3 * BLOCK).map(lambda n: b"abcab\n" * (n // 6))),
                  max_size=5)


def compress(data: bytes, cuts: list[int] = (), workers: int | None = None) -> bytes:
    comp = ParallelGzip(workers=workers)
    out, start = [], 0
    for cut in sorted(c % (len(data) + 1) for c in cuts):
        out.append(comp.compress(data[start:cut]))
        start = cut
    out.append(comp.compress(data[start:]))
    return b"".join(out) + comp.flush()


@settings(max_examples=40, deadline=None)
@given(PIECES, st.lists(st.integers(0, 10 * BLOCK), max_size=6))
def test_round_trip_and_independent_of_cuts_and_threads(pieces, cuts):
    data = b"".join(pieces)
    out = compress(data)
    assert gzip.decompress(out) == data
    assert zlib.decompressobj(31).decompress(out) == data
    assert compress(data, cuts) == out
    assert compress(data, workers=1) == out
    assert len(out) <= len(data) + 5 * (len(data) // 65535 + 2) * 2 + 64


def test_gnu_gzip_reads_it(tmp_path):
    data = os.urandom(BLOCK + 17) + b"text " * 100_000
    path = tmp_path / "x.gz"
    path.write_bytes(compress(data))
    subprocess.run(["gzip", "-t", str(path)], check=True)
    assert subprocess.run(["gzip", "-dc", str(path)], check=True,
                          capture_output=True).stdout == data


def test_header_has_no_time_or_name():
    out = compress(b"hello")
    assert out[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
