"""Running a bundle under runc with the caller as the container's parent (as conmon does).

    code = supervise(bundle, container_id, stdout=sink, stderr=sink, on_start=record_pid)

``runc run --detach`` sets the container up, starts it and exits. The caller has made
itself a child subreaper, so the container's init, runc's child until then, becomes the
caller's: it is waited for as the sandbox's PID 1 is (its wait status is the exit code,
128+n for signal n), its host pid comes from runc's ``--pid-file`` once it runs, and its
output arrives on pipes pumped into sinks as the sandbox's does. ``bundle.run_runc`` is the
foreground form for callers that only want the exit code.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from pybuild.errors import RunnerError
from pybuild.runner import init, libc, stdio
from pybuild.runner.bundle import exec_failure, unmount_rootfs
from pybuild.runner.runc import DEFAULT_ROOT, Runc, binary, check_id, log_errors
from pybuild.runner.stdio import Sink, Source

__all__ = ["supervise"]

_PR_SET_CHILD_SUBREAPER = 36


def supervise(bundle: Path, container_id: str, *, stdout: Sink, stderr: Sink,
              stdin: Source = None, root: Path | None = None,
              on_start: Callable[[int], None] | None = None,
              on_exit: Callable[[int], None] | None = None,
              prepare: Callable[[int], None] | None = None) -> int:
    """Run the bundle; its exit code. ``on_start`` gets the container's host pid once it
    runs, ``on_exit`` gets the exit code once it is gone and before runc deletes it (its cgroup is
    still there to read). ``prepare`` gets the pid of runc's init between ``runc create``
    and ``runc start``, before the workload runs (where a network's veth is plugged into its
    netns). A workload that cannot be executed is 127 or 126 with runc's
    message on stderr; RunnerError when runc cannot set the container up. Afterwards the
    container is deleted from runc's state and the bundle's rootfs unmounted, whatever
    happened."""
    check_id(container_id)
    path = binary()
    if path is None:
        raise RunnerError("runc is not installed (not found on PATH)")
    bundle = Path(bundle)
    if json.loads((bundle / "config.json").read_text()).get("process", {}).get("terminal"):
        raise RunnerError("runc: a terminal (-t) is not supported (no console socket)")
    runc = Runc(root or DEFAULT_ROOT, path)
    runc.prepare()
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 1)
    fd, log_name = tempfile.mkstemp(prefix=f"{container_id}.", suffix=".log", dir=runc.root)
    os.close(fd)
    log, pid_file = Path(log_name), bundle / "init.pid"
    io = stdio.open_io(stdin, stdout, stderr, False)
    try:
        pid = _create(runc, bundle, container_id, io, log, pid_file, prepare)
        if pid is None:  # nothing runs: runc's message is on the stderr pipe
            _pump(io, None)
            return exec_failure(log_errors(log)[-1] if log_errors(log) else "runc failed")
        if on_start is not None:
            on_start(pid)
        code = _pump(io, pid)
        if on_exit is not None:
            on_exit(code)
        return code
    finally:
        stdio.close(io)
        runc.delete(container_id)
        log.unlink(missing_ok=True)
        pid_file.unlink(missing_ok=True)
        unmount_rootfs(bundle)


def _create(runc: Runc, bundle: Path, container_id: str, io: stdio.Io, log: Path,
            pid_file: Path, prepare: Callable[[int], None] | None) -> int | None:
    """``runc create``, ``prepare``, ``runc start``: the container's host pid, or None when
    runc failed (its message is in ``log``)."""
    command = runc.command("create", "--pid-file", os.fspath(pid_file),
                           "--bundle", os.fspath(bundle), container_id, log=log)
    proc = subprocess.Popen(command, stdin=io.child[0], stdout=io.child[1],
                            stderr=io.child[2], close_fds=True)
    for child_fd in io.child_owned:  # the container holds the pipes' write ends now
        os.close(child_fd)
    io.child_owned.clear()
    if proc.wait() != 0:
        return None
    try:
        pid = int(pid_file.read_text())
    except (OSError, ValueError) as e:
        runc.kill(container_id)
        raise RunnerError(f"runc: no pid for container {container_id}: {e}") from e
    try:
        if prepare is not None:
            prepare(pid)
    except BaseException:
        runc.kill(container_id)
        raise
    if subprocess.run(runc.command("start", container_id, log=log), stdin=subprocess.DEVNULL,
                      capture_output=True).returncode != 0:
        runc.kill(container_id)
        return None
    return pid


def _pump(io: stdio.Io, pid: int | None) -> int:
    """Output to the sinks until every writer is gone; the wait status of ``pid``."""
    sel = selectors.DefaultSelector()
    pidfd = -1
    try:
        if pid is not None:
            pidfd = os.pidfd_open(pid)
            sel.register(pidfd, selectors.EVENT_READ)
        io.register(sel)
        while sel.get_map():
            for key, _ in sel.select():
                if key.fd == pidfd:
                    sel.unregister(pidfd)
                    io.stop_input(sel)
                else:
                    io.handle(sel, key)
        if pid is None:
            return 0
        return init.status_of(os.waitpid(pid, 0)[1])
    except BaseException:
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        raise
    finally:
        sel.close()
        if pidfd >= 0:
            os.close(pidfd)
