"""``docker exec``: one more process in a running container, confined as the container is.

The process joins the container through its PID 1 (``pybuild.runner.enter``). It gets the
container's env plus ``-e``, its user unless ``-u`` (resolved against the container's own
/etc/passwd and /etc/group: its upper dir over the image's layers), its working dir unless
``-w``, its capabilities (all with ``--privileged``; MKNOD only where a devices cgroup
confines the container, as for its PID 1), no_new_privs, seccomp profile and ulimits.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from pybuild.containers import lifecycle
from pybuild.containers.model import ContainerConfig
from pybuild.errors import BuildError, ContainerError, UsageError
from pybuild.runner.enter import Entered, ExecSpec, enter
from pybuild.runner.stdio import Sink, Source
from pybuild.store import Store


@dataclass(frozen=True)
class ExecOptions:
    args: tuple[str, ...]
    user: str | None = None          # None: the container's
    workdir: str | None = None       # None: the container's
    env: tuple[str, ...] = ()        # KEY=value, over the container's
    tty: bool = False
    console_size: tuple[int, int] | None = None  # (rows, columns) for the tty
    privileged: bool = False
    detach: bool = False


class ExecFailed(ContainerError):
    """The command could not be executed; ``exit_code`` is docker's 126 or 127."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def running_pid(store: Store, config: ContainerConfig) -> int:
    """The host pid of the container's PID 1, or docker's error for a container without."""
    state = lifecycle.current_state(store, config.id)
    if state.status == "paused":
        raise ContainerError(f"Container {config.id} is paused, unpause the container "
                             "before exec")
    if state.status == "restarting":
        raise ContainerError(f"Container {config.id} is restarting, wait until the "
                             "container is running")
    if state.status != "running" or state.pid <= 0:
        raise ContainerError(f"Container {config.id} is not running")
    return state.pid


def exec_spec(store: Store, config: ContainerConfig, opts: ExecOptions) -> ExecSpec:
    from pybuild.containers.monitor import cgroup_name
    from pybuild.runner.devices import granted_caps
    from pybuild.runner.spec import Process, Rlimit

    if not opts.args:
        raise UsageError("exec: no command given")
    cwd = opts.workdir or config.working_dir or "/"
    if not cwd.startswith("/"):
        raise UsageError(f"the working directory '{cwd}' is invalid, it needs to be an "
                         "absolute path")
    uid, gid, groups, env = config.uid, config.gid, config.additional_gids, _env(config, opts)
    if opts.user is not None and opts.user != config.user:
        uid, gid, groups, home = _user(store, config, opts.user)
        if _home_of(store, config, config.user) == env.get("HOME"):
            env["HOME"] = home  # runc's default HOME was the container user's: now this one's
    for item in opts.env:  # -e wins over everything, HOME too
        key, _, value = item.partition("=")
        env[key] = value
    process = Process(args=tuple(opts.args), env=tuple(f"{k}={v}" for k, v in env.items()),
                      cwd=cwd, uid=uid, gid=gid, additional_gids=groups, terminal=opts.tty)
    confined = _devices_confined(config)
    pid1_caps = granted_caps(config.capabilities, confined)
    return ExecSpec(
        process=process, cgroup=cgroup_name(config.id),
        capabilities=granted_caps(_all_caps(), confined) if opts.privileged else pid1_caps,
        no_new_privs=config.no_new_privileges and not config.privileged,
        seccomp=config.seccomp, seccomp_capabilities=pid1_caps,
        rlimits=tuple(Rlimit(n, s, h) for n, s, h in config.ulimits),
        console_size=opts.console_size if opts.tty else None)


def _devices_confined(config: ContainerConfig) -> bool:
    """Whether a devices cgroup confines the container, and so may its exec'd processes
    keep CAP_MKNOD: runc always makes one (a BPF program on cgroup v2), pybuild's sandbox
    where this host has a v1 devices hierarchy, as sandbox.run decided for PID 1."""
    from pybuild.runner import cgroups, devices

    return config.runtime == "runc" or devices.hierarchy(cgroups.detect()) is not None


def _all_caps() -> tuple[str, ...]:
    """--privileged: every capability this process may still hand on (its bounding set;
    a runtime inside a container may lack some)."""
    from pybuild.runner import libc
    from pybuild.runner.caps import CAPABILITIES, last_cap

    return tuple(sorted(name for name, number in CAPABILITIES.items()
                        if number <= last_cap()
                        and libc.prctl(libc.PR_CAPBSET_READ, number) == 1))


def _env(config: ContainerConfig, opts: ExecOptions) -> dict[str, str]:
    env = dict(item.partition("=")[::2] for item in config.env)
    if opts.tty:
        env.setdefault("TERM", "xterm")  # as docker sets it for a terminal
    for item in opts.env:
        if not item.partition("=")[0]:
            raise UsageError(f"invalid environment variable: {item!r}")
    return env


def _view(store: Store, config: ContainerConfig):
    from pathlib import Path

    from pybuild.build.rootfs import RootfsView

    upper = lifecycle.dirs_of(store).path(config.id) / "upper"
    return RootfsView([*(Path(p) for p in reversed(config.lowerdirs)), upper])


def _user(store: Store, config: ContainerConfig,
          user: str) -> tuple[int, int, tuple[int, ...], str]:
    from pybuild.build.users import resolve_user

    try:
        ids = resolve_user(_view(store, config), user, "user")
    except BuildError as err:
        raise ContainerError(f"unable to find user {user}: {err}") from None
    return ids.uid, ids.gid, ids.additional_gids, ids.home


def _home_of(store: Store, config: ContainerConfig, user: str) -> str | None:
    try:
        return _user(store, config, user)[3]
    except ContainerError:
        return None


def exec_in(store: Store, config: ContainerConfig, opts: ExecOptions, *,
            stdin: Source = None, stdout: Sink = None, stderr: Sink = None,
            timeout: float | None = None) -> int:
    """Run ``opts.args`` in the running container; its exit code (0 once started, with
    ``detach``; 137 when killed after ``timeout`` seconds). ExecFailed when it cannot be
    executed, ContainerError when not running."""
    import os
    import threading

    spec = exec_spec(store, config, opts)
    pid = running_pid(store, config)
    null = None
    if opts.detach:  # its output goes nowhere, as docker exec -d's
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        stdin = stdout = stderr = null
    cancel = threading.Event() if timeout is not None else None
    timer = threading.Timer(timeout, cancel.set) if cancel is not None else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        entered: Entered = enter(pid, spec, stdin=stdin, stdout=stdout, stderr=stderr,
                                 detach=opts.detach, cancel=cancel)
    finally:
        if timer is not None:
            timer.cancel()
        if null is not None:
            os.close(null)
    if entered.exec_error and opts.detach:
        raise ExecFailed(f"exec failed: {entered.exec_error}", entered.exit_code)
    return entered.exit_code


def command(cmd: str | Sequence[str]) -> tuple[str, ...]:
    """docker-py's ``cmd``: a list as it is, a string split as a shell would."""
    import shlex

    return tuple(shlex.split(cmd)) if isinstance(cmd, str) else tuple(cmd)


class ExecResult(NamedTuple):
    """docker-py's: ``output`` is bytes, or an iterator of chunks with ``stream``."""

    exit_code: int | None
    output: bytes | Iterator[bytes] | None


def run_collected(store: Store, config: ContainerConfig, opts: ExecOptions, *,
                  stdout: bool = True, stderr: bool = True, stdin: bool = False,
                  stream: bool = False) -> ExecResult:
    """``Container.exec_run``: stdout and stderr interleaved as they come, as docker-py's
    default (not demuxed); ``stdin`` keeps the caller's fd 0 attached."""
    source: Source = 0 if stdin else None
    if opts.detach:
        exec_in(store, config, opts)
        return ExecResult(None, b"")
    if not stream:
        chunks: list[bytes] = []
        sinks = [chunks.append if on else _discard for on in (stdout, stderr)]
        code = exec_in(store, config, opts, stdin=source, stdout=sinks[0], stderr=sinks[1])
        return ExecResult(code, b"".join(chunks))
    exec_spec(store, config, opts)  # bad input fails here, not in the iterator
    return ExecResult(None, _streamed(store, config, opts, source, stdout, stderr))


def _discard(_data: bytes) -> None:
    pass


def _streamed(store: Store, config: ContainerConfig, opts: ExecOptions, source: Source,
              stdout: bool, stderr: bool) -> Iterator[bytes]:
    import queue
    import threading

    chunks: queue.Queue[bytes | BaseException | None] = queue.Queue()
    sinks = [chunks.put if on else _discard for on in (stdout, stderr)]

    def run() -> None:
        try:
            exec_in(store, config, opts, stdin=source, stdout=sinks[0], stderr=sinks[1])
            chunks.put(None)
        except BaseException as err:  # noqa: B036 - handed to the reader
            chunks.put(err)

    threading.Thread(target=run, daemon=True, name="pybuild-exec").start()
    while True:
        item = chunks.get()
        if item is None:
            return
        if isinstance(item, BaseException):
            raise item
        yield item
