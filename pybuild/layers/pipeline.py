"""The streaming half of layer creation: plain tar bytes in, compressed blob out.

The producer (the caller's thread) fills 1 MiB buffers with tar bytes and hashes them for the
diff ID; a worker thread compresses each buffer, hashes the result for the blob digest and writes
it. zlib, zstd, hashlib and os.readv release the GIL on big buffers, so on two cores the walk and
the compression run side by side. A fixed pool of buffers bounds memory and gives back-pressure.
With no output (``out=None``) only the diff ID and size are taken, in the caller's thread.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from dataclasses import dataclass
from typing import BinaryIO

from pybuild.errors import LayerError
from pybuild.layers.compression import CHUNK, make_compressor
from pybuild.layers.tarformat import BLOCK

_DEPTH = 4
_ZEROS = bytes(CHUNK)


@dataclass(frozen=True)
class PipelineResult:
    diff_id: str
    digest: str
    size: int


class Pipeline:
    """Use as a context manager; call ``finish`` for the digests, leaving aborts on error."""

    def __init__(self, out: BinaryIO | None, compression: str, chunk: int = CHUNK):
        if out is None and compression != "none":
            raise ValueError("a compressed layer needs somewhere to go")
        self._out = out
        self._plain = compression == "none"
        # a plain tar passes as it is; with no output only the one buffer being filled is used
        self._compressor = None if self._plain else make_compressor(compression)
        self._chunk = chunk
        self._free: queue.Queue = queue.Queue()
        self._full: queue.Queue = queue.Queue()
        for _ in range(_DEPTH if out is not None else 1):
            buf = bytearray(chunk)
            self._free.put((buf, memoryview(buf)))
        self._buf, self._view = self._free.get()
        self._pos = 0
        self._diff = hashlib.sha256()
        self._blob = hashlib.sha256()
        self._size = 0
        self._error: BaseException | None = None
        self._open = out is not None
        if self._open:
            self._thread = threading.Thread(target=self._work, name="pybuild-compress",
                                            daemon=True)
            self._thread.start()

    # producer side -------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = min(len(view), self._chunk - self._pos)
            self._view[self._pos:self._pos + n] = view[:n]
            self._pos += n
            view = view[n:]
            if self._pos == self._chunk:
                self._flush()

    def pad(self, size: int) -> None:
        """Zero bytes up to the next 512-byte boundary after ``size`` bytes of data."""
        rest = -size % BLOCK
        if rest:
            self.write(_ZEROS[:rest])

    def copy_fd(self, fd: int, size: int, name: str) -> None:
        """Exactly ``size`` bytes of ``fd`` straight into the buffers, then the padding."""
        remaining = size
        while remaining:
            if self._pos == self._chunk:
                self._flush()
            want = min(remaining, self._chunk - self._pos)
            got = os.readv(fd, [self._view[self._pos:self._pos + want]])
            if got == 0:
                raise LayerError(f"{name}: file shrank while it was being read")
            self._pos += got
            remaining -= got
        self.pad(size)

    def copy_stream(self, src: BinaryIO) -> None:
        readinto = getattr(src, "readinto", None)
        while True:
            if self._pos == self._chunk:
                self._flush()
            if readinto is not None:
                got = readinto(self._view[self._pos:])
            else:
                data = src.read(self._chunk - self._pos)
                got = len(data)
                self._view[self._pos:self._pos + got] = data
            if not got:
                return
            self._pos += got

    def finish(self) -> PipelineResult:
        self._flush()
        self._close()
        diff_id = "sha256:" + self._diff.hexdigest()
        digest = diff_id if self._plain else "sha256:" + self._blob.hexdigest()
        return PipelineResult(diff_id, digest, self._size)

    def _flush(self) -> None:
        if self._error is not None:
            raise self._wrap(self._error)
        if not self._pos:
            return
        self._diff.update(self._view[:self._pos])
        if self._out is None:
            self._size += self._pos
        else:
            self._full.put((self._buf, self._view, self._pos))
            self._buf, self._view = self._free.get()
        self._pos = 0

    def _close(self) -> None:
        if self._open:
            self._open = False
            self._full.put(None)
            self._thread.join()
        if self._error is not None:
            raise self._wrap(self._error)

    @staticmethod
    def _wrap(err: BaseException) -> BaseException:
        if isinstance(err, LayerError):
            return err
        return LayerError(f"cannot write layer: {err}")

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc) -> None:
        if self._open:
            self._open = False
            self._full.put(None)
            self._thread.join()

    # worker side ---------------------------------------------------------------------------
    def _work(self) -> None:
        compressor = self._compressor
        while True:
            item = self._full.get()
            if item is None:
                break
            buf, view, n = item
            try:
                if self._error is None and self._plain:
                    self._emit(view[:n])
                elif self._error is None and compressor is not None:
                    self._emit(compressor.compress(view[:n]))
            except BaseException as err:  # handed to the producer, which raises it
                self._error = err
            self._free.put((buf, view))
        try:
            if self._error is None and compressor is not None:
                self._emit(compressor.flush())
        except BaseException as err:
            self._error = err

    def _emit(self, data: bytes | memoryview) -> None:
        if not data:
            return
        if not self._plain:
            self._blob.update(data)
        self._out.write(data)
        self._size += len(data)
