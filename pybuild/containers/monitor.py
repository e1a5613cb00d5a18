"""The per-container monitor: forked off the caller by ``lifecycle.start`` (``run_forked``),
or as ``python -m pybuild.containers.monitor ROOT ID READY_FD``.

Detached (its own session, no terminal, stdio on /dev/null) so it outlives the CLI, as
conmon does. It runs the sandbox, appends the output to the json-file log, records the
pid, exit code, times and an OOM kill in state.json, applies the restart policy (docker's
backoff: 100 ms, doubled each time) and removes an ``--rm`` container after its last run.
``READY_FD`` gets one line once the container is running (``running PID``) or could not start
(``error MESSAGE``), then is closed: what ``pybuild run`` and ``start`` wait for.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path

from pybuild.containers.create import now
from pybuild.containers.logs import LogWriter
from pybuild.containers.model import ContainerConfig
from pybuild.containers.records import ContainerDirs
from pybuild.errors import PybuildError, RunnerError
from pybuild.store import Store

SETUP_FAILED = 125  # docker's exit code when the container could not be started


def cgroup_name(container_id: str) -> str:
    return f"ctr-{container_id[:16]}"


def _tee(fd: int, log_sink, *, reader_may_go: bool = False):
    """Output to the caller's fd and to the log, as docker logs an attached container too.
    With ``reader_may_go``, a reader gone (EPIPE) ends the passing on, not the run."""
    gone = False

    def write(data: bytes) -> None:
        nonlocal gone
        view = memoryview(data)
        try:
            while view and not gone:
                view = view[os.write(fd, view):]
        except BrokenPipeError:
            if not reader_may_go:
                raise
            gone = True
        log_sink(data)
    return write


class Monitor:
    """``attached``: the caller's own process runs the container (``run -i``/``-t``) with
    ``stdin`` (an fd, or None for none), its output to the caller's fds 1 and 2 as well.
    ``passed``: fds the first run's stdout and stderr go to as well (``pybuild run`` without
    ``-d``, see ``attach``); the ready fd then stays open until the monitor is done with that
    run (an ``--rm`` container removed)."""

    def __init__(self, store: Store, container_id: str, ready_fd: int | None, *,
                 attached: bool = False, stdin: int | None = None,
                 passed: tuple[int, int] | None = None):
        self.attached = attached
        self.passed = passed
        self.stdin = stdin
        self.store = store
        self.dirs = ContainerDirs(store.root / "containers", store.tmp)
        self.id = container_id
        self.dir = self.dirs.path(container_id)
        self.config: ContainerConfig = self.dirs.config(container_id)
        self.ready_fd = ready_fd
        self.oom = False
        self.began = False  # this run's workload was started (then it has an exit code)
        self.last_code = 0

    def _ready(self, line: str) -> None:
        if self.ready_fd is not None:
            try:
                os.write(self.ready_fd, line.encode() + b"\n")
            except OSError:
                pass
            if self.passed is None:
                self._release()

    def _release(self) -> None:
        """Done with what an attached caller waits for: its pipes reach EOF."""
        for fd in (self.ready_fd, *(self.passed or ())):
            if fd is not None:
                os.close(fd)
        self.ready_fd = None
        self.passed = None

    def _started(self, pid: int) -> None:
        self.began = True
        state = self.dirs.state(self.id)
        self.dirs.write_state(self.id, state.update(
            status="running", pid=pid, monitor_pid=os.getpid(), started_at=now(),
            finished_at="", exit_code=0, oom_killed=False, error=""))
        self._ready(f"running {pid}")
        self._start_health()
        self._watch_state_dir(pid)

    def _watch_state_dir(self, pid: int) -> None:
        """A container whose state dir is gone (its store removed under it) has nobody to
        stop it or read its output: it is killed, so no monitor runs on for nothing."""
        import threading

        def watch() -> None:
            while os.path.isdir(self.dir):
                time.sleep(1)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

        threading.Thread(target=watch, name="pybuild-state-watch", daemon=True).start()

    def _start_health(self) -> None:
        """HEALTHCHECK's loop beside the run, a fresh one for each start (as docker)."""
        import threading

        from pybuild.containers import health

        if self.config.healthcheck is None:
            return
        self._health_stop = threading.Event()
        self._health = threading.Thread(
            target=health.loop, name="pybuild-health", daemon=True,
            args=(self.config.healthcheck, health.exec_runner(self.store, self.config),
                  health.writer(self.dir, self.store.tmp), self._health_stop))
        self._health.start()

    def _stop_health(self) -> None:
        stop, thread = getattr(self, "_health_stop", None), getattr(self, "_health", None)
        if stop is not None and thread is not None:
            stop.set()
            thread.join(timeout=10)

    def _exited(self, cgroup) -> None:
        self.oom = cgroup.oom_killed()

    def run_once(self, log: LogWriter) -> tuple[int, str]:
        from pybuild.containers import networking
        from pybuild.containers.runspec import run_spec
        from pybuild.containers.volumes import volume_path
        from pybuild.runner.sandbox import run

        self.oom = False
        self.began = False
        out, err = log.sink("stdout"), log.sink("stderr")
        if self.attached:
            out, err = _tee(1, out), _tee(2, err)
        elif self.passed is not None:
            out = _tee(self.passed[0], out, reader_may_go=True)
            err = _tee(self.passed[1], err, reader_may_go=True)
        try:
            spec = run_spec(self.config, self.dir, volume_path(self.store, self.config))
            spec, plugs = networking.prepare(self.store, self.config, self.dir, spec)
            held = None
            if not self.attached and self.config.open_stdin:
                # -d -i: stdin stays open with nobody writing, so a shell waits, as docker's
                held = os.pipe()
                self.stdin = held[0]
            try:
                if self.config.runtime == "runc":
                    return self._run_runc(spec, out, err, plugs.plug if plugs else None), ""
                from pybuild.runner.bundle import write_config

                # the same spec as an OCI bundle beside it: what runc would run
                write_config(self.dir / "bundle", spec,
                             cgroups_path=f"/pybuild/{cgroup_name(self.id)}")
                code = run(spec, stdout=out, stderr=err, stdin=self.stdin,
                           cgroup_name=cgroup_name(self.id), on_start=self._started,
                           on_exit=self._exited, prepare=plugs.plug if plugs else None)
                return code, ""
            finally:
                self._stop_health()
                networking.release(self.store, self.config, self.dir)
                if held is not None:
                    self.stdin = None
                    for fd in held:
                        os.close(fd)
        except PybuildError as e:
            message = f"pybuild: {e}\n".encode()
            # once it began, its setup failing is its output (exit 125, as docker); before,
            # the caller says it could not start
            if self.began:
                err(message)
            else:
                log.write("stderr", message)
            return SETUP_FAILED, str(e)

    def _run_runc(self, spec, out, err, prepare) -> int:
        """The same RunSpec as an OCI bundle in the state dir, run by runc in runc's cgroup
        ``/pybuild/<cgroup_name>``: where ``cgroups.open(cgroup_name(id))`` finds it (runc
        takes a relative cgroupsPath as relative to its own cgroup, the monitor's)."""
        from pybuild.runner import cgroups
        from pybuild.runner.bundle import remove_bundle, write_bundle
        from pybuild.runner.runc_supervise import supervise

        name = cgroup_name(self.id)

        def exited(code: int) -> None:
            with contextlib.suppress(RunnerError):  # runc made none: nothing was killed
                self.oom = cgroups.open(name).oom_killed(code)

        bundle = write_bundle(self.dir / "bundle", spec, cgroups_path=f"/pybuild/{name}")
        try:
            return supervise(bundle, self.id, stdout=out, stderr=err, stdin=self.stdin,
                             on_start=self._started, on_exit=exited, prepare=prepare)
        finally:
            remove_bundle(bundle)

    def main(self) -> int:
        log = LogWriter(self.dir / f"{self.id}-json.log")
        restarts = self.dirs.state(self.id).restart_count
        try:
            while True:
                code, error = self.run_once(log)
                self.last_code = code
                state = self.dirs.state(self.id)
                self.dirs.write_state(self.id, state.update(
                    status="exited", pid=0, exit_code=code, oom_killed=self.oom, error=error,
                    finished_at=now(), restart_count=restarts))
                self._ready(f"error {error}" if error and not self.began else f"exited {code}")
                if not self.config.auto_remove:
                    self._release()
                stop = (self.dir / "stop").exists()
                if stop or not self.config.restart.should_restart(code, restarts):
                    break
                time.sleep(min(0.1 * 2 ** restarts, 60))
                if (self.dir / "stop").exists():
                    break
                restarts += 1
                self.dirs.write_state(self.id, self.dirs.state(self.id).update(
                    status="restarting", restart_count=restarts))
        finally:
            log.close()
            state = self.dirs.state(self.id)
            self.dirs.write_state(self.id, state.update(monitor_pid=0))
        if self.config.auto_remove:
            from pybuild.containers.lifecycle import remove_files

            remove_files(self.store, self.config, volumes=True)
        self._release()
        return 0


def _detach_signals() -> None:
    # The caller's handlers are no use here (a forked monitor inherits them): a hangup or
    # Ctrl-C of the terminal it came from must not end it, nor a reader gone away.
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_IGN)
    for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)


def run_forked(root: Path, container_id: str, ready_fd: int,
               passed: tuple[int, int] | None = None) -> None:
    """The monitor in a process forked from the caller (``lifecycle.start``); never
    returns. The caller's Store (whose lock waits may print through click) is not reused."""
    code = 1
    try:
        _detach_signals()
        code = Monitor(Store(Path(root)), container_id, ready_fd, passed=passed).main()
    except BaseException:
        import traceback

        traceback.print_exc()  # to monitor.log
    finally:
        os._exit(code)


def main(argv: list[str]) -> int:
    root, container_id = argv[1], argv[2]
    ready_fd = int(argv[3]) if len(argv) > 3 else None
    _detach_signals()
    store = Store(Path(root))
    return Monitor(store, container_id, ready_fd).main()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
