"""Run one process in a sandbox: ``run(spec) -> exit code``.

The caller's side: validate, create the cgroup, fork (see ``init`` for what the children
do), stream output live, and clean up. Everything the sandbox mounts lives in its own mount
namespace, so the kernel tears it down when the last process in it dies; what is left to
the caller is the cgroup, the empty mount-point directory, and removing mount points the
setup had to create in the image's upper dir.
"""

from __future__ import annotations

import os
import selectors
import signal
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from pybuild.errors import RunnerError
from pybuild.runner import cgroups, init
from pybuild.runner.cleanup import remove_created
from pybuild.runner.spec import RunSpec, validate

Sink = Callable[[bytes], None] | int | None
_CHUNK = 65536


@dataclass
class _Io:
    """The child's fds 0-2, and what the parent reads from or writes to."""

    child: list[int] = field(default_factory=list)
    child_owned: list[int] = field(default_factory=list)     # closed in the parent after fork
    parent_owned: list[int] = field(default_factory=list)    # closed when the run ends
    readers: dict[int, Callable[[bytes], None]] = field(default_factory=dict)
    stdin_data: bytes = b""
    stdin_writer: int | None = None


def _writer(fd: int) -> Callable[[bytes], None]:
    def write(data: bytes) -> None:
        while data:
            data = data[os.write(fd, data):]
    return write


def _open_terminal(io: _Io, stdin: bytes | int | None, stdout: Sink) -> _Io:
    master, slave = os.openpty()
    io.child = [slave, slave, slave]
    io.child_owned.append(slave)
    io.parent_owned.append(master)
    io.readers[master] = stdout if callable(stdout) else _writer(1 if stdout is None else stdout)
    if isinstance(stdin, bytes):
        io.stdin_data, io.stdin_writer = stdin, master
    return io


def _open_io(stdin: bytes | int | None, stdout: Sink, stderr: Sink, terminal: bool) -> _Io:
    io = _Io()
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
        io.stdin_data, io.stdin_writer = stdin, w
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


@dataclass
class _Child:
    pid: int
    on_init_pid: Callable[[int], None] | None = None
    grandchild: int | None = None
    created: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    buffer: bytes = b""

    def feed(self, data: bytes) -> None:
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        for raw in lines:
            kind, _, text = raw.decode(errors="surrogateescape").partition(" ")
            if kind == "P":
                self.grandchild = int(text)
                if self.on_init_pid is not None:
                    self.on_init_pid(self.grandchild)
            elif kind == "M":
                self.created.append(text)
            elif kind == "E":
                self.errors.append(text)

    def kill(self) -> None:
        for pid in (self.grandchild, self.pid):
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def run(spec: RunSpec, *, stdout: Sink = None, stderr: Sink = None,
        stdin: bytes | int | None = None, cancel: threading.Event | None = None,
        cgroup_name: str | None = None) -> int:
    """Run ``spec`` and return its exit code (128+n if killed by signal n).

    ``stdout``/``stderr``: a callback called with each chunk as it arrives, an fd, or None to
    share the caller's. ``stdin``: None for /dev/null, an fd, or bytes to feed. Setting
    ``cancel`` kills the sandbox (exit code 137). Raises RunnerError if the sandbox could not
    be set up; a missing executable is exit code 127 with the message on stderr, as docker.
    """
    validate(spec)
    cgroup = None
    if spec.resources is not None:
        cgroup = cgroups.create(cgroup_name or cgroups.default_name(), spec.resources)
    root = _mount_point()
    child: _Child | None = None
    try:
        child, code = _fork_and_wait(spec, root, cgroup, stdin, stdout, stderr, cancel)
    finally:
        if child is not None:
            remove_created(spec.rootfs, child.created)
        if cgroup is not None:
            cgroup.remove()
    if child.errors:
        # Paths under the private mount point read as container paths.
        message = child.errors[-1].replace(root + "/", "/").replace(root, "/")
        raise RunnerError(f"sandbox setup failed: {message}")
    return code


def _mount_point() -> str:
    """An empty directory to mount the rootfs on, shared by every sandbox.

    Each sandbox mounts on it inside its own mount namespace only, so concurrent runs do not
    collide, the host never sees the mount, and a killed caller leaves nothing to remove.
    """
    for base in ("/run/pybuild", os.path.join(tempfile.gettempdir(), "pybuild-run")):
        path = os.path.join(base, "rootfs")
        try:
            os.makedirs(path, mode=0o700, exist_ok=True)
            return path
        except OSError:
            continue
    raise RunnerError("no writable place for the sandbox mount point (/run/pybuild, $TMPDIR)")


def _fork_and_wait(spec: RunSpec, root: str, cgroup: cgroups.Cgroup | None,
                   stdin: bytes | int | None, stdout: Sink, stderr: Sink,
                   cancel: threading.Event | None) -> tuple[_Child, int]:
    io = _open_io(stdin, stdout, stderr, spec.process.terminal)
    status_r, status_w = os.pipe()
    io.child_owned.append(status_w)
    io.parent_owned.append(status_r)
    sync_r = sync_w = None
    if cgroup is not None:
        sync_r, sync_w = os.pipe()
        io.child_owned.append(sync_r)
        io.parent_owned.append(sync_w)
    fds = init.Fds(status_w, (io.child[0], io.child[1], io.child[2]), sync_r)
    try:
        caller = os.getpid()
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # the caller decides what happens
            init.intermediate(spec, root, fds, caller)
        _close(io.child_owned)
        io.child_owned.clear()
        child = _Child(pid)
        if cgroup is not None and sync_w is not None:
            child.on_init_pid = _placer(cgroup, sync_w)
        return child, _supervise(child, io, status_r, cancel)
    finally:
        _close(io.child_owned + io.parent_owned)


def _placer(cgroup: cgroups.Cgroup, sync_w: int) -> Callable[[int], None]:
    """Put the sandbox's PID 1 into the cgroup, then let it go on (see init step 2)."""
    def place(pid: int) -> None:
        cgroup.add(pid)
        os.write(sync_w, b"1")
    return place


def _close(fds: list[int]) -> None:
    for fd in dict.fromkeys(fds):
        try:
            os.close(fd)
        except OSError:
            pass


def _supervise(child: _Child, io: _Io, status_r: int,
               cancel: threading.Event | None) -> int:
    """Pump output to the sinks until the child is gone; kill it on cancel or any error."""
    pidfd = os.pidfd_open(child.pid)
    sel = selectors.DefaultSelector()
    try:
        sel.register(pidfd, selectors.EVENT_READ)
        sel.register(status_r, selectors.EVENT_READ)
        for fd in io.readers:
            sel.register(fd, selectors.EVENT_READ)
        if io.stdin_writer is not None:
            _start_stdin(sel, io)
        exited = False
        while not exited or sel.get_map():
            if cancel is not None and cancel.is_set():
                child.kill()
            for key, _ in sel.select(None if cancel is None else 0.05):
                if key.fd == pidfd:  # all writers are dead now: drain the pipes to EOF
                    exited = True
                    sel.unregister(pidfd)
                    if io.stdin_writer is not None and io.stdin_writer in sel.get_map():
                        sel.unregister(io.stdin_writer)
                elif key.fd == io.stdin_writer and key.events & selectors.EVENT_WRITE:
                    _pump_stdin(sel, io)
                else:
                    _pump_output(sel, key.fd, child, io, status_r)
        return init._status_of(os.waitpid(child.pid, 0)[1])
    except BaseException:
        child.kill()
        os.waitpid(child.pid, 0)
        raise
    finally:
        sel.close()
        os.close(pidfd)


def _pump_output(sel: selectors.BaseSelector, fd: int, child: _Child, io: _Io,
                 status_r: int) -> None:
    try:
        data = os.read(fd, _CHUNK)
    except OSError:  # EIO: a terminal's last slave closed
        data = b""
    if not data:
        sel.unregister(fd)
    elif fd == status_r:
        child.feed(data)
    else:
        io.readers[fd](data)


def _start_stdin(sel: selectors.BaseSelector, io: _Io) -> None:
    assert io.stdin_writer is not None
    os.set_blocking(io.stdin_writer, False)
    if io.stdin_writer in io.readers:  # a terminal: its buffer takes a few KiB at once
        os.set_blocking(io.stdin_writer, True)
        _writer(io.stdin_writer)(io.stdin_data)
        os.set_blocking(io.stdin_writer, False)
    elif io.stdin_data:
        sel.register(io.stdin_writer, selectors.EVENT_WRITE)
    else:
        os.close(io.stdin_writer)
        io.parent_owned.remove(io.stdin_writer)


def _pump_stdin(sel: selectors.BaseSelector, io: _Io) -> None:
    assert io.stdin_writer is not None
    try:
        io.stdin_data = io.stdin_data[os.write(io.stdin_writer, io.stdin_data):]
    except BlockingIOError:
        return
    except OSError:  # EPIPE: the workload stopped reading
        io.stdin_data = b""
    if not io.stdin_data:  # all written: close the pipe so the workload sees EOF
        sel.unregister(io.stdin_writer)
        os.close(io.stdin_writer)
        io.parent_owned.remove(io.stdin_writer)
