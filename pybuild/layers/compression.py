"""Compression registry for layer blobs, keyed by media type.

Writers choose one of ``COMPRESSIONS``; readers accept every format whatever the media type
says, because registries and archives in the wild mislabel layers. Detection is by magic bytes.
"""

from __future__ import annotations

import bz2
import io
import lzma
import zlib
from typing import BinaryIO, Protocol

import zstandard

from pybuild.errors import LayerError

COMPRESSIONS = ("none", "gzip", "zstd")

OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar"
OCI_NONDISTRIBUTABLE = "application/vnd.oci.image.layer.nondistributable.v1.tar"

ZSTD_LEVEL = 3
CHUNK = 1 << 20
# zstandard's decompressobj has no output bound, so feed it small slices of input to keep one
# call's output (and memory) modest even for highly compressible layers.
_ZSTD_FEED = 64 << 10

_MAGICS = (
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
)


def media_type_for(compression: str, *, docker: bool = False) -> str:
    """The layer media type for a compression; docker's names when ``docker`` is true."""
    _check(compression)
    if docker:
        # Docker's schema 2 has no zstd layer type; docker reads the OCI one.
        return {"none": DOCKER_LAYER, "gzip": DOCKER_LAYER + ".gzip"}.get(
            compression, OCI_LAYER + "+zstd"
        )
    return OCI_LAYER if compression == "none" else f"{OCI_LAYER}+{compression}"


def compression_of_media_type(media_type: str) -> str:
    """``"none"``, ``"gzip"`` or ``"zstd"`` for any OCI or docker layer media type."""
    base = media_type.split(";", 1)[0].strip()
    for prefix in (OCI_LAYER, OCI_NONDISTRIBUTABLE, DOCKER_LAYER, DOCKER_FOREIGN_LAYER):
        if not base.startswith(prefix):
            continue
        suffix = base[len(prefix):]
        if suffix == "":
            return "none"
        if suffix in ("+gzip", ".gzip"):
            return "gzip"
        if suffix in ("+zstd", ".zstd"):
            return "zstd"
    raise LayerError(f"not a layer media type: {media_type!r}")


def _check(compression: str) -> None:
    if compression not in COMPRESSIONS:
        raise LayerError(
            f"unknown compression {compression!r}; expected one of {', '.join(COMPRESSIONS)}"
        )


class Compressor(Protocol):
    def compress(self, data: memoryview | bytes) -> bytes: ...
    def flush(self) -> bytes: ...


class _Identity:
    def compress(self, data: memoryview | bytes) -> bytes:
        return bytes(data)

    def flush(self) -> bytes:
        return b""


def make_compressor(compression: str) -> Compressor:
    """A streaming compressor whose output depends only on its input (no names, no times)."""
    _check(compression)
    if compression == "gzip":
        # Blocks deflated in parallel, incompressible ones stored; mtime 0 and no file name.
        from pybuild.layers.pgzip import ParallelGzip

        return ParallelGzip()
    if compression == "zstd":
        # zstd's multi-threaded output does not depend on the number of workers.
        cctx = zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=-1, write_checksum=True)
        return cctx.compressobj()
    return _Identity()


def compress_stream(src: BinaryIO, dst: BinaryIO, compression: str) -> tuple[str, int]:
    """Compress ``src`` into ``dst``; the sha256 digest and size of the bytes written."""
    from pybuild.layers.pipeline import Pipeline

    with Pipeline(dst, compression) as pipe:
        pipe.copy_stream(src)
        result = pipe.finish()
    return result.digest, result.size


class _Decoder(Protocol):
    eof: bool
    unused_data: bytes

    def decompress(self, data: bytes) -> bytes: ...


def _new_decoder(kind: str) -> _Decoder:
    if kind == "gzip":
        return zlib.decompressobj(31)
    if kind == "zstd":
        return zstandard.ZstdDecompressor().decompressobj()
    if kind == "bzip2":
        return bz2.BZ2Decompressor()
    return lzma.LZMADecompressor()


class _DecompressedReader(io.RawIOBase):
    """Decompresses a stream of one or more members; truncation raises LayerError."""

    def __init__(self, src: BinaryIO, prefix: bytes, kind: str):
        self._src = src
        self._kind = kind
        self._input = prefix
        self._decoder: _Decoder | None = _new_decoder(kind)
        self._pending = memoryview(b"")
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        while not self._pending and not self._done:
            self._pending = memoryview(self._step())
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def _step(self) -> bytes:
        if not self._input:
            self._input = self._src.read(CHUNK)
            if not self._input:
                return self._at_end()
        if self._decoder is None:  # a member ended and more input followed
            if not self._input.strip(b"\0"):
                self._input = b""  # zero padding after the last member is harmless
                return b""
            self._decoder = _new_decoder(self._kind)
        feed = self._input[:_ZSTD_FEED] if self._kind == "zstd" else self._input
        self._input = self._input[len(feed):]
        try:
            out = self._decoder.decompress(feed)
        except (zlib.error, zstandard.ZstdError, OSError, EOFError, lzma.LZMAError) as err:
            raise LayerError(f"corrupt {self._kind} stream: {err}") from None
        if self._decoder.eof:
            self._input = self._decoder.unused_data + self._input
            self._decoder = None
        return out

    def _at_end(self) -> bytes:
        self._done = True
        if self._decoder is not None:
            raise LayerError(f"truncated {self._kind} stream: input ended inside a member")
        return b""


def sniff(stream: BinaryIO) -> tuple[str, bytes]:
    """The compression of ``stream`` by magic bytes, and the bytes read to find out."""
    prefix = b""
    while len(prefix) < 6:
        chunk = stream.read(6 - len(prefix))
        if not chunk:
            break
        prefix += chunk
    for magic, kind in _MAGICS:
        if prefix.startswith(magic):
            return kind, prefix
    return "none", prefix


class _PrefixedReader(io.RawIOBase):
    """A plain stream with a few already-read bytes put back in front."""

    def __init__(self, src: BinaryIO, prefix: bytes):
        self._src = src
        self._prefix = prefix

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        if hasattr(self._src, "readinto"):
            return self._src.readinto(buffer) or 0
        data = self._src.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def open_decompressed(stream: BinaryIO) -> BinaryIO:
    """A reader of the plain tar inside ``stream``: gzip, zstd, bzip2, xz or plain."""
    kind, prefix = sniff(stream)
    if kind == "none":
        return _PrefixedReader(stream, prefix)  # type: ignore[return-value]
    return _DecompressedReader(stream, prefix, kind)  # type: ignore[return-value]
