"""Run one process in a sandbox: ``run(spec) -> exit code``.

The caller's side: validate, create the cgroup, fork (see ``init`` for what the children
do), stream output live, and clean up. Everything the sandbox mounts lives in its own mount
namespace, so the kernel tears it down when the last process in it dies; what is left to
the caller is the cgroup and cleaning up the mount points the setup had to create in the
image's upper dir.
"""

from __future__ import annotations

import os
import selectors
import signal
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from pybuild.errors import RunnerError
from pybuild.runner import cgroups, devices, init, stdio
from pybuild.runner.cleanup import remove_created
from pybuild.runner.spec import RunSpec, validate
from pybuild.runner.stdio import Sink, Source


@dataclass
class _Child:
    pid: int = 0
    on_init_pid: Callable[[int], None] | None = None
    on_start: Callable[[int], None] | None = None
    grandchild: int | None = None
    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
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
                if self.on_start is not None:
                    self.on_start(self.grandchild)
            elif kind == "M":
                self.created.append(text)
            elif kind == "K":
                self.kept.append(text)
            elif kind == "E":
                self.errors.append(text)

    def kill(self) -> None:
        for pid in (self.grandchild, self.pid):
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def run(spec: RunSpec, *, stdout: Sink = None, stderr: Sink = None,
        stdin: Source = None, cancel: threading.Event | None = None,
        cgroup_name: str | None = None,
        on_start: Callable[[int], None] | None = None,
        on_exit: Callable[[cgroups.Cgroup], None] | None = None,
        layout: cgroups.Layout | None = None,
        prepare: Callable[[int], None] | None = None) -> int:
    """Run ``spec`` and return its exit code (128+n if killed by signal n).

    ``stdout``/``stderr``: a callback called with each chunk as it arrives, an fd, or None to
    share the caller's. ``stdin``: None for /dev/null, an fd, or bytes to feed. Setting
    ``cancel`` kills the sandbox (exit code 137). ``on_start`` gets the host pid of the
    sandbox's PID 1 once it is in its cgroup (a container records it to signal it);
    ``on_exit`` gets the cgroup once the workload is gone, before it is removed (to read
    whether the OOM killer struck). ``layout``: the host's cgroups, detected here when not
    given; every step of the run uses this one (the cgroup, PID 1's devices cgroup and
    CAP_MKNOD, /sys/fs/cgroup in the container). Raises
    RunnerError if the sandbox could not be set up; a missing executable is exit code 127 with
    the message on stderr, as docker.
    """
    layout = layout or cgroups.detect()
    # CAP_MKNOD only where init's intermediate will put PID 1 in a devices cgroup (it
    # checks that it did): decided here, once, so the seccomp filter validate() compiles
    # is the one for the set PID 1 ends up with.
    confined = devices.hierarchy(layout) is not None
    spec = replace(spec, capabilities=devices.granted_caps(spec.capabilities, confined))
    validate(spec)
    if os.geteuid() != 0:
        raise RunnerError("the sandbox needs root (rootless mode is not implemented)")
    root = _mount_point()
    cgroup = None
    if spec.resources is not None:
        cgroup = cgroups.create(cgroup_name or cgroups.default_name(), spec.resources, layout)
    child = _Child(on_start=on_start)
    try:
        code = _fork_and_wait(spec, root, layout, cgroup, child, (stdin, stdout, stderr),
                              cancel, prepare)
    finally:  # the sandbox is dead here, even after an exception: nothing writes anymore
        remove_created(spec.rootfs, child.created, child.kept)
        if cgroup is not None:
            try:
                if on_exit is not None:
                    on_exit(cgroup)
            finally:
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


def _fork_and_wait(spec: RunSpec, root: str, layout: cgroups.Layout,
                   cgroup: cgroups.Cgroup | None, child: _Child,
                   streams: tuple[Source, Sink, Sink], cancel: threading.Event | None,
                   prepare: Callable[[int], None] | None = None) -> int:
    io = stdio.open_io(*streams, spec.process.terminal)
    status_r, status_w = os.pipe()
    io.child_owned.append(status_w)
    io.parent_owned.append(status_r)
    sync_r = sync_w = None
    if prepare is not None:
        sync_r, sync_w = os.pipe()
        io.child_owned.append(sync_r)
        io.parent_owned.append(sync_w)
    fds = init.Fds(status_w, (io.child[0], io.child[1], io.child[2]), sync_r,
                   io.console_child)
    try:
        caller = os.getpid()
        pid = os.fork()
        if pid == 0:
            try:
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # the caller decides what happens
                init.intermediate(spec, root, layout, fds, caller, cgroup)
            finally:
                os._exit(init.SETUP_FAILED)
        child.pid = pid
        for fd in io.child_owned:
            os.close(fd)
        io.child_owned.clear()
        if sync_w is not None:
            child.on_init_pid = _preparer(sync_w, prepare)
        return _supervise(child, io, status_r, cancel)
    finally:
        stdio.close(io)


def _preparer(sync_w: int, prepare: Callable[[int], None]) -> Callable[[int], None]:
    """Run ``prepare`` on the sandbox's PID 1, then let it go on (see init step 2)."""
    def run(pid: int) -> None:
        prepare(pid)
        try:
            os.write(sync_w, b"1")
        except BrokenPipeError:  # it died already; its status tells the rest
            pass
    return run


def _supervise(child: _Child, io: stdio.Io, status_r: int,
               cancel: threading.Event | None) -> int:
    """Pump output to the sinks until the child is gone; kill it on cancel or any error."""
    pidfd = os.pidfd_open(child.pid)
    sel = selectors.DefaultSelector()
    try:
        sel.register(pidfd, selectors.EVENT_READ)
        sel.register(status_r, selectors.EVENT_READ)
        io.register(sel)
        exited = False
        while not exited or sel.get_map():
            if cancel is not None and cancel.is_set():
                child.kill()
            for key, _ in sel.select(None if cancel is None else 0.05):
                if key.fd == pidfd:  # all writers are dead now: drain the pipes to EOF
                    exited = True
                    sel.unregister(pidfd)
                    io.stop_input(sel)
                elif key.fd == status_r:
                    _read_status(sel, status_r, child)
                else:
                    io.handle(sel, key)
        return init.status_of(os.waitpid(child.pid, 0)[1])
    except BaseException:
        child.kill()
        os.waitpid(child.pid, 0)
        raise
    finally:
        sel.close()
        os.close(pidfd)


def _read_status(sel: selectors.BaseSelector, fd: int, child: _Child) -> None:
    data = os.read(fd, 4096)
    if data:
        child.feed(data)
    else:
        sel.unregister(fd)
