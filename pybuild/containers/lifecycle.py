"""Starting, signalling, stopping, waiting for and removing containers.

Each container's monitor does the running; these functions start monitors, signal the pid
state.json records, and wait on state.json. A container whose monitor died (killed, or the
machine rebooted) reads as exited.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import sys
import time
from pathlib import Path

from pybuild.containers import attach
from pybuild.containers.attach import Attachment
from pybuild.containers.logs import naps
from pybuild.containers.model import ContainerConfig, State
from pybuild.containers.records import ContainerDirs
from pybuild.errors import ContainerError, UsageError
from pybuild.store import Store


def dirs_of(store: Store) -> ContainerDirs:
    return ContainerDirs(store.root / "containers", store.tmp)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def current_state(store: Store, container_id: str) -> State:
    """state.json, corrected when its monitor is gone: running then means it died with it."""
    state = dirs_of(store).state(container_id)
    if state.running and not _alive(state.monitor_pid):
        return state.update(status="exited", pid=0, exit_code=state.exit_code or 137,
                            error=state.error or "the container's monitor is gone")
    return state


def parse_signal(name: str | int) -> int:
    text = str(name).upper()
    if text.isdigit():
        return int(text)
    text = text if text.startswith("SIG") else "SIG" + text
    try:
        return int(signal.Signals[text])
    except KeyError:
        raise UsageError(f"invalid signal: {name}") from None


def start(store: Store, config: ContainerConfig, timeout: float = 30.0) -> State:
    """Start a monitor for the container; returns once it runs (or could not start)."""
    state = current_state(store, config.id)
    if state.running:
        return state
    ready_r = _launch(store, config, state, None)
    try:
        line = _read_line(ready_r, timeout)
    finally:
        os.close(ready_r)
    if line.startswith("error "):
        raise ContainerError(f"cannot start container {config.name}: {line[6:]}")
    if not line:
        raise ContainerError(f"cannot start container {config.name}: its monitor died "
                             f"(see {dirs_of(store).path(config.id) / 'monitor.log'})")
    return current_state(store, config.id)


def start_attached(store: Store, config: ContainerConfig) -> Attachment:
    """Start a monitor that passes the first run's output on (``pybuild run`` without
    ``-d``): ``Attachment.pump`` shows it and returns the exit code."""
    (out_r, out_w), (err_r, err_w) = attach.pipes()
    try:
        state = current_state(store, config.id)
        if state.running:
            raise ContainerError(f"container {config.name} is running already")
        ready_r = _launch(store, config, state, (out_w, err_w))
    except BaseException:
        os.close(out_r)
        os.close(err_r)
        raise
    finally:
        os.close(out_w)
        os.close(err_w)
    return Attachment(config.name, out_r, err_r, ready_r)


def _launch(store: Store, config: ContainerConfig, state: State,
            passed: tuple[int, int] | None) -> int:
    """Fork the container's monitor; the read end of its ready pipe."""
    dirs = dirs_of(store)
    if config.runtime == "runc":
        from pybuild.runner.runc import binary

        if binary() is None:
            raise ContainerError(f"cannot start container {config.name}: runtime runc is "
                                 "not installed (no runc on PATH)")
    path = dirs.path(config.id)
    with contextlib.suppress(FileNotFoundError):
        (path / "stop").unlink()
    dirs.write_state(config.id, state.update(status="created", restart_count=0, pid=0))
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    try:
        _fork_monitor(store.root, config.id, ready_w, path / "monitor.log", passed)
    except BaseException:
        os.close(ready_r)
        raise
    finally:
        os.close(ready_w)
    return ready_r


_READY_FD = 3  # where the monitor finds the ready pipe, and the attached stdout and stderr
_PASSED_FDS = (4, 5)


def _fork_monitor(root: Path, container_id: str, ready_w: int, log: Path,
                  passed: tuple[int, int] | None) -> None:
    """The monitor, forked from this process: its modules are loaded already, so no new
    interpreter starts. It is a daemon as conmon is: forked twice (nobody's child, so no
    zombie for the caller to reap), its own session (no terminal, no signals of the caller's
    process group), stdin and stdout on /dev/null, stderr to ``log``."""
    from pybuild.containers import monitor

    err = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
    for stream in (sys.stdout, sys.stderr):  # else the child's copy of a buffer comes out too
        with contextlib.suppress(Exception):
            stream.flush()
    try:
        pid = os.fork()
        if pid == 0:
            try:
                os.setsid()
                if os.fork() == 0:
                    _detach_fds(ready_w, err, passed)
                    monitor.run_forked(root, container_id, _READY_FD,
                                       None if passed is None else _PASSED_FDS)
            finally:
                os._exit(0)
    finally:
        os.close(err)
    os.waitpid(pid, 0)


def _detach_fds(ready_w: int, err: int, passed: tuple[int, int] | None) -> None:
    """Every fd of the caller closed but the ready pipe (now fd 3), the attached output
    pipes (fds 4 and 5) and the log (fd 2): a pipe the monitor kept open would never reach
    EOF for whoever reads it, and an inherited lock (the store's)
    would be held until the monitor exits."""
    import gc

    # No collection may run the finalizer of a parent's file object: it would close an fd
    # number the monitor has reused by then.
    gc.freeze()
    keep = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
            for fd in (ready_w, err, *(passed or ()))]
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.dup2(keep[1], 2)
    targets = (_READY_FD, *(_PASSED_FDS if passed else ()))
    for fd, target in zip((keep[0], *keep[2:]), targets, strict=True):
        os.dup2(fd, target, inheritable=False)
    os.closerange(targets[-1] + 1, os.sysconf("SC_OPEN_MAX"))


def _read_line(fd: int, timeout: float) -> str:
    import selectors

    data = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while b"\n" not in data:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                break
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            data += chunk
    return data.decode(errors="replace").strip()


def signal_container(store: Store, config: ContainerConfig, sig: int) -> None:
    state = current_state(store, config.id)
    if state.status != "running" or not state.pid:
        raise ContainerError(f"Container {config.id} is not running")
    try:
        os.kill(state.pid, sig)
    except ProcessLookupError:
        pass


def wait(store: Store, config: ContainerConfig, timeout: float | None = None,
         condition: str = "not-running") -> State:
    """Block until the container is not running (docker's default wait condition)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    dirs = dirs_of(store)
    sleeps = naps(0.05)
    while True:
        state = current_state(store, config.id)
        if condition == "not-running" and state.status in ("exited", "dead", "created") and (
                not state.monitor_pid or not _alive(state.monitor_pid)
                or not config.restart.should_restart(state.exit_code, state.restart_count)
                or (dirs.path(config.id) / "stop").exists()):
            return state
        if deadline is not None and time.monotonic() > deadline:
            return state
        time.sleep(next(sleeps))


def thaw(store: Store, config: ContainerConfig) -> None:
    """Unfreeze a paused container (a frozen process cannot act on a signal, not even die),
    and record it as running again."""
    from pybuild.containers.monitor import cgroup_name
    from pybuild.errors import RunnerError
    from pybuild.runner import cgroups

    with contextlib.suppress(RunnerError):
        cgroups.open(cgroup_name(config.id)).thaw()
    state = dirs_of(store).state(config.id)
    if state.status == "paused":
        dirs_of(store).write_state(config.id, state.update(status="running"))


def stop(store: Store, config: ContainerConfig, timeout: int | None = None,
         sig: str | int | None = None) -> State:
    """The stop signal (``sig``, else the container's), then SIGKILL after ``timeout``
    seconds (the container's own by default); no restart follows. A paused container is
    thawed first."""
    path = dirs_of(store).path(config.id)
    path.joinpath("stop").touch()
    state = current_state(store, config.id)
    if state.status == "paused":
        thaw(store, config)
        state = current_state(store, config.id)
    if state.status not in ("running", "restarting"):
        return state
    grace = config.stop_timeout if timeout is None else timeout
    if state.pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(state.pid, parse_signal(sig or config.stop_signal))
    state = wait(store, config, timeout=max(grace, 0))
    if state.running:
        with contextlib.suppress(ProcessLookupError):
            if state.pid:
                os.kill(state.pid, signal.SIGKILL)
        state = wait(store, config, timeout=30)
    _wait_monitor(store, config)
    return current_state(store, config.id)


def _wait_monitor(store: Store, config: ContainerConfig, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    sleeps = naps()
    while time.monotonic() < deadline:
        try:
            pid = dirs_of(store).state(config.id).monitor_pid
        except ContainerError:
            return
        if not _alive(pid):
            return
        time.sleep(next(sleeps))


def remove_files(store: Store, config: ContainerConfig, *, volumes: bool) -> None:
    """The state dir, the gc root of its image, its cgroup if a crash left it, and with
    ``volumes`` its anonymous volumes."""
    from pybuild.containers.monitor import cgroup_name
    from pybuild.containers.networking import release

    dirs = dirs_of(store)
    release(store, config, dirs.path(config.id))
    with contextlib.suppress(Exception):
        from pybuild.runner.cgroups import open_cgroup

        cgroup = open_cgroup(cgroup_name(config.id))
        if any(p.exists() for p in cgroup.paths()):
            cgroup.remove()
    dirs.remove(config.id)
    store.remove_gc_root(f"container-{config.id}")
    if volumes:
        from pybuild.containers.volumes import remove_anonymous

        remove_anonymous(store, config)


def remove(store: Store, config: ContainerConfig, *, force: bool = False,
           volumes: bool = False) -> None:
    state = current_state(store, config.id)
    if state.running:
        if not force:
            raise ContainerError(
                f"You cannot remove a running container {config.id}. Stop the container "
                "before attempting removal or force remove")
        dirs_of(store).path(config.id).joinpath("stop").touch()
        if state.status == "paused":
            thaw(store, config)
        with contextlib.suppress(ContainerError):
            signal_container(store, config, signal.SIGKILL)
        wait(store, config, timeout=30)
        _wait_monitor(store, config)
    remove_files(store, config, volumes=volumes)


def log_path(store: Store, config: ContainerConfig) -> Path:
    return dirs_of(store).path(config.id) / f"{config.id}-json.log"
