"""The caller's end of the workload's stdin/stdout/stderr, pumped through one selector.

Sinks are callbacks (called per chunk, as output arrives), fds, or None (share the
caller's). With a terminal the pty is made *inside* the sandbox from its own devpts (so
``tty`` names a device that exists there, as with runc's console socket); its master
arrives over a socketpair and is then pumped like a pipe.
"""

from __future__ import annotations

import os
import selectors
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

Sink = Callable[[bytes], None] | int | None
Source = bytes | int | None
CHUNK = 65536


def writer(fd: int) -> Callable[[bytes], None]:
    def write(data: bytes) -> None:
        while data:
            data = data[os.write(fd, data):]
    return write


@dataclass
class Io:
    """The child's fds 0-2, and what the caller reads from or writes to."""

    child: list[int] = field(default_factory=list)
    child_owned: list[int] = field(default_factory=list)     # closed by the caller after fork
    parent_owned: list[int] = field(default_factory=list)    # closed when the run ends
    readers: dict[int, Callable[[bytes], None]] = field(default_factory=dict)
    forwarded: set[int] = field(default_factory=set)         # caller fds copied into a pty
    stdin_data: bytes = b""
    stdin_writer: int | None = None
    console: socket.socket | None = None                     # receives the pty master
    console_child: int | None = None
    terminal_sink: Callable[[bytes], None] | None = None
    terminal_stdin: Source = None

    def register(self, sel: selectors.BaseSelector) -> None:
        for fd in self.readers:
            sel.register(fd, selectors.EVENT_READ)
        if self.console is not None:
            sel.register(self.console, selectors.EVENT_READ)
        if self.stdin_writer is not None:
            os.set_blocking(self.stdin_writer, False)
            sel.register(self.stdin_writer, selectors.EVENT_WRITE)

    def handle(self, sel: selectors.BaseSelector, key: selectors.SelectorKey) -> bool:
        """Serve one ready fd; False if it is not one of ours."""
        if self.console is not None and key.fileobj is self.console:
            self._receive_console(sel)
        elif key.fd == self.stdin_writer and key.events & selectors.EVENT_WRITE:
            self._pump_stdin(sel)
        elif key.fd in self.readers:
            self._pump_output(sel, key.fd)
        else:
            return False
        return True

    def stop_input(self, sel: selectors.BaseSelector) -> None:
        """The workload is gone: stop feeding it (outputs are drained to EOF)."""
        for fd in [*self.forwarded, self.stdin_writer]:
            if fd is not None and fd in sel.get_map():
                sel.unregister(fd)

    def _pump_output(self, sel: selectors.BaseSelector, fd: int) -> None:
        try:
            data = os.read(fd, CHUNK)
        except OSError:  # EIO: a terminal's last slave closed
            data = b""
        if data:
            self.readers[fd](data)
        else:
            sel.unregister(fd)

    def _pump_stdin(self, sel: selectors.BaseSelector) -> None:
        assert self.stdin_writer is not None
        try:
            self.stdin_data = self.stdin_data[os.write(self.stdin_writer, self.stdin_data):]
        except BlockingIOError:
            return
        except OSError:  # EPIPE: the workload stopped reading
            self.stdin_data = b""
        if not self.stdin_data:  # all written: close the pipe so the workload sees EOF
            sel.unregister(self.stdin_writer)
            os.close(self.stdin_writer)
            self.parent_owned.remove(self.stdin_writer)
            self.stdin_writer = None

    def _receive_console(self, sel: selectors.BaseSelector) -> None:
        assert self.console is not None and self.terminal_sink is not None
        sel.unregister(self.console)
        try:
            _, fds, _, _ = socket.recv_fds(self.console, 16, 1)
        except OSError:
            fds = []
        if not fds:  # setup failed before the terminal existed: the status pipe says why
            return
        master = fds[0]
        self.parent_owned.append(master)
        self.readers[master] = self.terminal_sink
        sel.register(master, selectors.EVENT_READ)
        if isinstance(self.terminal_stdin, bytes):  # a pty buffers a few KiB at once
            writer(master)(self.terminal_stdin)
        elif isinstance(self.terminal_stdin, int):
            self.readers[self.terminal_stdin] = writer(master)
            self.forwarded.add(self.terminal_stdin)
            sel.register(self.terminal_stdin, selectors.EVENT_READ)


def _open_terminal(io: Io, stdin: Source, stdout: Sink) -> Io:
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    io.console = parent
    io.console_child = child.detach()
    io.child_owned.append(io.console_child)
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)  # until the pty replaces them
    io.child = [null, null, null]
    io.child_owned.append(null)
    io.terminal_sink = stdout if callable(stdout) else writer(1 if stdout is None else stdout)
    io.terminal_stdin = stdin
    return io


def open_io(stdin: Source, stdout: Sink, stderr: Sink, terminal: bool) -> Io:
    io = Io()
    if terminal:
        return _open_terminal(io, stdin, stdout)
    if stdin is None:
        io.child.append(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
        io.child_owned.append(io.child[-1])
    elif isinstance(stdin, int):
        io.child.append(stdin)
    else:
        r, w = os.pipe()
        io.child.append(r)
        io.child_owned.append(r)
        io.parent_owned.append(w)
        io.stdin_writer = w if stdin else None
        io.stdin_data = stdin
        if not stdin:
            os.close(w)
            io.parent_owned.remove(w)
    for sink, default in ((stdout, 1), (stderr, 2)):
        if callable(sink):
            r, w = os.pipe()
            io.child.append(w)
            io.child_owned.append(w)
            io.parent_owned.append(r)
            io.readers[r] = sink
        else:
            io.child.append(default if sink is None else sink)
    return io


def close(io: Io) -> None:
    for fd in dict.fromkeys(io.child_owned + io.parent_owned):
        try:
            os.close(fd)
        except OSError:
            pass
    io.child_owned.clear()
    io.parent_owned.clear()
    if io.console is not None:
        io.console.close()
