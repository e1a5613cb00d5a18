"""Reading tar entries from a plain stream without tarfile (see ``tarformat`` for why)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import BinaryIO

from pybuild.errors import LayerError
from pybuild.layers import tarformat as tf
from pybuild.layers.compression import CHUNK

_META = (tf.PAX_LOCAL, tf.PAX_GLOBAL, tf.GNU_LONGNAME, tf.GNU_LONGLINK)
_MAX_META = 16 << 20  # a PAX or long-name record larger than this is an attack, not a name


class TarInput:
    """Buffered reads of a stream; truncation inside an entry raises LayerError."""

    def __init__(self, stream: BinaryIO):
        self._stream = stream
        self._buf = memoryview(b"")
        self.remaining = 0  # data bytes of the current entry not yet read

    def _fill(self) -> bool:
        data = self._stream.read(CHUNK)
        self._buf = memoryview(data)
        return bool(data)

    def read_block(self) -> bytes | None:
        """The next 512 bytes; None at a clean end of stream."""
        if not self._buf and not self._fill():
            return None
        return self.read_exact(tf.BLOCK)

    def read_exact(self, size: int) -> bytes:
        parts = []
        while size:
            if not self._buf and not self._fill():
                raise LayerError("truncated tar: the stream ended inside an entry")
            part = self._buf[:size]
            self._buf = self._buf[len(part):]
            parts.append(part)
            size -= len(part)
        return b"".join(parts)

    def chunks(self) -> Iterator[memoryview]:
        """The current entry's data, in pieces as large as the buffer allows."""
        while self.remaining:
            if not self._buf and not self._fill():
                raise LayerError("truncated tar: the stream ended inside a file's data")
            part = self._buf[:self.remaining]
            self._buf = self._buf[len(part):]
            self.remaining -= len(part)
            yield part

    def skip(self, size: int) -> None:
        while size:
            if not self._buf and not self._fill():
                raise LayerError("truncated tar: the stream ended inside an entry")
            step = min(size, len(self._buf))
            self._buf = self._buf[step:]
            size -= step


def iter_entries(stream: BinaryIO) -> Iterator[tuple[tf.Header, TarInput]]:
    """Each entry's header; read its data with ``TarInput.chunks`` before asking for the next."""
    inp = TarInput(stream)
    meta: dict[bytes, bytes] = {}
    while True:
        block = inp.read_block()
        if block is None or tf.is_zero_block(block):
            return  # a missing end-of-archive marker is tolerated, as GNU tar does
        hdr = tf.parse_block(block)
        if hdr.typeflag in _META:
            _read_meta(inp, hdr, meta)
            continue
        if hdr.typeflag == b"S":
            raise LayerError(f"{_show(hdr.name)}: GNU sparse files are not supported")
        _apply_meta(hdr, meta)
        meta = {}
        if hdr.size < 0:
            raise LayerError(f"{_show(hdr.name)}: negative size in tar header")
        has_data = _has_data(hdr)
        inp.remaining = hdr.size if has_data else 0
        yield hdr, inp
        for _ in inp.chunks():
            pass
        if has_data:
            inp.skip(-hdr.size % tf.BLOCK)


def _has_data(hdr: tf.Header) -> bool:
    # As in tarfile and GNU tar, only regular (and unknown) types are followed by data.
    return hdr.typeflag not in (tf.DIR, tf.SYMLINK, tf.HARDLINK, tf.CHAR, tf.BLOCKDEV, tf.FIFO)


def _read_meta(inp: TarInput, hdr: tf.Header, meta: dict[bytes, bytes]) -> None:
    if hdr.size > _MAX_META:
        raise LayerError(f"tar metadata record of {hdr.size} bytes is too large")
    payload = inp.read_exact(hdr.size)
    inp.skip(-hdr.size % tf.BLOCK)
    if hdr.typeflag == tf.PAX_LOCAL:
        meta.update(tf.parse_pax(payload))
    elif hdr.typeflag == tf.GNU_LONGNAME:
        meta[b"path"] = payload.split(b"\0", 1)[0]
    elif hdr.typeflag == tf.GNU_LONGLINK:
        meta[b"linkpath"] = payload.split(b"\0", 1)[0]
    # Global PAX headers carry archive-wide comments in practice; nothing to apply.


def _apply_meta(hdr: tf.Header, meta: dict[bytes, bytes]) -> None:
    if meta:
        try:
            tf.apply_pax(hdr, meta)
        except ValueError:
            raise LayerError(f"{_show(hdr.name)}: malformed PAX record") from None


def _show(name: bytes) -> str:
    return name.decode("utf-8", "backslashreplace").replace("\n", "\\n")


class Prefetcher:
    """Reads (and so decompresses) ``stream`` in a thread while the caller writes files.

    zlib and zstd release the GIL, so on two cores decompression overlaps extraction. Use as a
    context manager: leaving it early stops the thread.
    """

    _DEPTH = 4

    def __init__(self, stream: BinaryIO):
        self._stream = stream
        self._queue: queue.Queue = queue.Queue(self._DEPTH)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pybuild-unpack", daemon=True)
        self._thread.start()
        self._done = False

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                data = self._stream.read(CHUNK)
                self._put(data)
                if not data:
                    return
        except BaseException as err:  # handed to the reader, which raises it
            self._put(err)

    def _put(self, item) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def read(self, size: int = -1) -> bytes:
        if self._done:
            return b""
        item = self._queue.get()
        if isinstance(item, BaseException):
            self._done = True
            raise item
        self._done = not item
        return item

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
