"""docker's json-file log: one ``{"log": LINE, "stream": "stdout"|"stderr", "time": RFC3339}``
per line of output, appended by the monitor and read by ``logs``."""

from __future__ import annotations

import datetime
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

_MAX_LINE = 16 * 1024  # docker splits longer lines into pieces of this size


def _stamp() -> str:
    now = time.time_ns()
    when = datetime.datetime.fromtimestamp(now // 1_000_000_000, datetime.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S") + f".{now % 1_000_000_000:09d}Z"


class LogWriter:
    """Line-splits the chunks of each stream; a partial line waits for its end (or close)."""

    def __init__(self, path: Path):
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        self._partial = {"stdout": b"", "stderr": b""}

    def sink(self, stream: str) -> Callable[[bytes], None]:
        return lambda data: self.write(stream, data)

    def write(self, stream: str, data: bytes) -> None:
        buf = self._partial[stream] + data
        lines = buf.split(b"\n")
        self._partial[stream] = lines.pop()
        out = [self._entry(stream, line + b"\n") for line in lines]
        while len(self._partial[stream]) >= _MAX_LINE:
            piece, self._partial[stream] = (self._partial[stream][:_MAX_LINE],
                                            self._partial[stream][_MAX_LINE:])
            out.append(self._entry(stream, piece))
        if out:
            os.write(self._fd, b"".join(out))

    def _entry(self, stream: str, data: bytes) -> bytes:
        text = data.decode("utf-8", "replace")
        return json.dumps({"log": text, "stream": stream, "time": _stamp()},
                          ensure_ascii=False).encode() + b"\n"

    def close(self) -> None:
        for stream, rest in self._partial.items():
            if rest:
                os.write(self._fd, self._entry(stream, rest))
        self._partial = {"stdout": b"", "stderr": b""}
        os.close(self._fd)


@dataclass(frozen=True)
class LogLine:
    stream: str
    text: str
    time: str


def read_lines(path: Path, offset: int = 0) -> tuple[list[LogLine], int]:
    """Whole lines from ``offset``; the offset after the last whole line."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1
    lines = []
    for raw in data[:end].splitlines():
        try:
            entry = json.loads(raw)
            lines.append(LogLine(entry["stream"], entry["log"], entry["time"]))
        except (ValueError, KeyError, TypeError):
            continue  # a torn line from a crash: skip it, as docker does
    return lines, offset + end


def naps(cap: float = 0.02) -> Iterator[float]:
    """Sleeps that start at 1 ms and double up to ``cap``: a short-lived container is seen
    to end at once, a long one costs a wakeup per ``cap``."""
    nap = 0.001
    while True:
        yield nap
        nap = min(nap * 2, cap)


def follow(path: Path, alive: Callable[[], bool], *, tail: int | None = None,
           poll: float = 0.02) -> Iterator[LogLine]:
    """Every line (the last ``tail`` first), then new ones while ``alive()``."""
    lines, offset = read_lines(path)
    yield from lines if tail is None else lines[len(lines) - min(tail, len(lines)):]
    sleeps = naps(poll)
    while True:
        running = alive()
        lines, offset = read_lines(path, offset)
        yield from lines
        if not running:
            return
        if lines:
            sleeps = naps(poll)
        else:
            time.sleep(next(sleeps))
