"""An attached run's streams: the monitor passes the first run's output on through pipes as
it logs it, and its ready pipe says when the run has ended and when the monitor is done.

So ``pybuild run`` without ``-d`` waits on pipes, never polls the log or state.json: output
shows as it comes, and the exit code arrives the moment the container is gone. The
monitor does not depend on the reader: one that dies (the CLI killed) only ends the
passing on (EPIPE), the container and its log go on.
"""

from __future__ import annotations

import os
import selectors
from collections.abc import Callable
from dataclasses import dataclass

from pybuild.errors import ContainerError

Write = Callable[[bytes], object]


@dataclass(frozen=True)
class Attachment:
    """Read ends of container ``name``'s ``stdout``, ``stderr`` and ``events`` (the ready
    pipe: ``running PID``, then ``exited CODE`` or ``error MESSAGE``; EOF once the monitor
    is done with the run, an ``--rm`` container's removal included)."""

    name: str
    stdout: int
    stderr: int
    events: int

    def close(self) -> None:
        for fd in (self.stdout, self.stderr, self.events):
            try:
                os.close(fd)
            except OSError:
                pass

    def pump(self, out: Write, err: Write) -> int:
        """Pass the output to ``out`` and ``err`` until the monitor is done; the exit code,
        or ContainerError if the container could not start."""
        lines: list[str] = []
        pending = b""
        writers = {self.stdout: out, self.stderr: err}
        with selectors.DefaultSelector() as sel:
            for fd in (self.stdout, self.stderr, self.events):
                sel.register(fd, selectors.EVENT_READ)
            while sel.get_map():
                for key, _ in sel.select():
                    data = os.read(key.fd, 65536)
                    if not data:
                        sel.unregister(key.fd)
                    elif key.fd == self.events:
                        pending += data
                        *done, pending = pending.split(b"\n")
                        lines += (line.decode(errors="replace") for line in done)
                    else:
                        writers[key.fd](data)
        return _outcome(self.name, lines)


def _outcome(name: str, lines: list[str]) -> int:
    for line in lines:
        kind, _, rest = line.partition(" ")
        if kind == "exited":
            return int(rest)
        if kind == "error":
            raise ContainerError(f"cannot start container {name}: {rest}")
    raise ContainerError(f"container {name}: its monitor died before the container ended")


def pipes() -> tuple[tuple[int, int], tuple[int, int]]:
    """(read, write) pairs for stdout and stderr, close-on-exec."""
    return os.pipe2(os.O_CLOEXEC), os.pipe2(os.O_CLOEXEC)
