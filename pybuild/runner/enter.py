"""Run one more process inside a running sandbox: ``enter(pid, spec) -> Entered``.

What runc's ``exec`` (nsexec's setns path plus ``linux_setns_init``) does, as two processes:

* the *helper*, this module's ``main``, started by the caller from a sealed memfd copy of
  the interpreter (``selfclone``), makes itself non-dumpable, joins the container's cgroup,
  opens every namespace of the container's PID 1 through one ``/proc/PID`` dir fd (so a
  recycled pid cannot swap them), ``setns`` into ipc, uts, net, cgroup, pid and mnt, then
  takes PID 1's root with ``fchdir`` + ``chroot(".")`` and forks: a joined pid namespace
  applies to children only. It waits and exits with the workload's status; with ``detach``
  it exits at once and the workload, whose parent is then outside the container (as under
  docker's shim), dies with the container's pid namespace.
* the *workload* process sets up stdio (a pty from the container's own devpts for a
  terminal), rlimits, cwd, capabilities, no_new_privs and seccomp in ``init``'s order and
  execs the command, holding only fds 0-2.

CVE-2019-5736: both processes are python while inside the container. ``PR_SET_DUMPABLE 0``
before the first setns means no container process can open their ``/proc/PID/exe``,
``fd/`` or ``mem`` (the kernel's ptrace access check fails without CAP_SYS_PTRACE); the
helper never enters the container's pid namespace; and since their exe is the sealed copy,
an image's ``#!/proc/self/exe`` (which makes the kernel exec the caller's own binary inside
the container, where it is dumpable again) reaches a file no one can write, not the
host's interpreter. CVE-2024-21626: every namespace and root fd is opened close-on-exec
and closed before the exec, and the cwd is set inside the new root.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from dataclasses import asdict, dataclass, field

from pybuild.errors import RunnerError
from pybuild.runner import caps, cgroups, init, libc, sandbox, seccomp, selfclone, stdio
from pybuild.runner.spec import Process, Rlimit, Rootfs, RunSpec
from pybuild.runner.stdio import Sink, Source

# In runc's order: the mount namespace last, once nothing more is needed from the host's
# /proc. The cgroup is joined before the cgroup namespace, which then shows it as "/".
NAMESPACES = (("ipc", libc.CLONE_NEWIPC), ("uts", libc.CLONE_NEWUTS),
              ("net", libc.CLONE_NEWNET), ("cgroup", libc.CLONE_NEWCGROUP),
              ("pid", libc.CLONE_NEWPID), ("mnt", libc.CLONE_NEWNS))
_EXEC_FAILED = "exec-failed"  # the status line's prefix for a 126/127 of the workload


@dataclass(frozen=True)
class ExecSpec:
    """The process to add and the confinement it gets (the container's, usually)."""

    process: Process
    cgroup: str | None = None          # the last part of PID 1's cgroup: it is the container
    capabilities: tuple[str, ...] = caps.DOCKER_DEFAULT_CAPS
    no_new_privs: bool = True
    seccomp: str | None = "default"
    rlimits: tuple[Rlimit, ...] = field(default=())
    console_size: tuple[int, int] | None = None  # (rows, columns) of a terminal
    # The seccomp filter's rules follow these (the container's: a privileged exec keeps
    # the filter its container has, as runc applies the container's to every process).
    seccomp_capabilities: tuple[str, ...] | None = None

    @property
    def filter_capabilities(self) -> tuple[str, ...]:
        if self.seccomp_capabilities is None:
            return self.capabilities
        return self.seccomp_capabilities

    @classmethod
    def from_dict(cls, raw: dict) -> ExecSpec:
        p = raw["process"]
        process = Process(**{**p, **{k: tuple(p[k]) for k in ("args", "env",
                                                              "additional_gids")}})
        return cls(process=process, cgroup=raw["cgroup"],
                   capabilities=tuple(raw["capabilities"]), no_new_privs=raw["no_new_privs"],
                   seccomp=raw["seccomp"], rlimits=tuple(Rlimit(**r) for r in raw["rlimits"]),
                   console_size=tuple(raw["console_size"]) if raw["console_size"] else None,
                   seccomp_capabilities=None if raw["seccomp_capabilities"] is None
                   else tuple(raw["seccomp_capabilities"]))

    def run_spec(self) -> RunSpec:
        """The same, in the shape ``init``'s per-process steps read (no rootfs of its own)."""
        return RunSpec(rootfs=Rootfs(), process=self.process, capabilities=self.capabilities,
                       no_new_privs=self.no_new_privs, seccomp=self.seccomp,
                       rlimits=self.rlimits)


@dataclass(frozen=True)
class Entered:
    exit_code: int       # the workload's (128+n for signal n); 0 once started with detach
    pid: int             # its host pid
    exec_error: str = ""  # why it could not be executed (exit_code 126 or 127)


def enter(pid: int, spec: ExecSpec, *, stdin: Source = None, stdout: Sink = None,
          stderr: Sink = None, detach: bool = False,
          cancel: threading.Event | None = None) -> Entered:
    """Run ``spec.process`` in the namespaces, cgroup and root of host process ``pid``.

    Streams as ``sandbox.run``'s. With ``detach`` the call returns once the command was
    executed (or failed to be). Setting ``cancel`` kills it (137), as a health check's
    timeout does. RunnerError when the process cannot be joined.
    """
    if os.geteuid() != 0:
        raise RunnerError("exec needs root (rootless mode is not implemented)")
    # Parsed and compiled once, here (a bad profile fails readably); the helper is a fresh
    # interpreter, so the program travels with the spec.
    profile = seccomp.prepare(spec.seccomp, spec.filter_capabilities)
    program = None if profile is None else seccomp.program(profile, spec.filter_capabilities)
    interpreter = selfclone.sealed_interpreter()
    child = sandbox._Child()
    io = stdio.open_io(stdin, stdout, stderr, spec.process.terminal)
    status_r, status_w = os.pipe()
    io.child_owned.append(status_w)
    io.parent_owned.append(status_r)
    spec_fd = _spec_file(spec, program)
    io.child_owned.append(spec_fd)
    fds = init.Fds(status_w, (io.child[0], io.child[1], io.child[2]),
                   console=io.console_child)
    try:
        child.pid = _spawn(interpreter, pid, spec_fd, fds, detach)
        for fd in io.child_owned:
            os.close(fd)
        io.child_owned.clear()
        code = sandbox._supervise(child, io, status_r, cancel)
    finally:
        stdio.close(io)
    return _outcome(child, code, pid)


def _spec_file(spec: ExecSpec, program: bytes | None) -> int:
    fd = os.memfd_create("pybuild-exec-spec", os.MFD_CLOEXEC)
    data = {"spec": asdict(spec), "seccomp_program": program.hex() if program else None}
    os.write(fd, json.dumps(data).encode())
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _spawn(interpreter: int, pid: int, spec_fd: int, fds: init.Fds, detach: bool) -> int:
    """The helper: this module's ``main`` in the sealed copy of the interpreter."""
    passed = [spec_fd, fds.status, *fds.stdio, *fds.optional()]
    argv = [selfclone.interpreter_path(), "-P", "-m", __name__, str(pid), str(os.getpid()),
            "detach" if detach else "attach", ",".join(map(str, passed))]
    env = {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "PYTHONNOUSERSITE": "1",
           "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    helper = os.fork()
    if helper == 0:
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # the caller decides what happens
            init.close_fds_except({*passed, interpreter})  # the interpreter's: close-on-exec
            for fd in passed:
                os.set_inheritable(fd, True)
            os.execve(interpreter, argv, env)
        finally:
            os._exit(init.SETUP_FAILED)
    return helper


def main(argv: list[str]) -> None:
    """The helper's entry: ``PID CALLER attach|detach SPEC,STATUS,IN,OUT,ERR[,CONSOLE]``."""
    pid, caller, mode, numbers = int(argv[1]), int(argv[2]), argv[3], argv[4]
    spec_fd, status, stdin, stdout, stderr, *console = (int(n) for n in numbers.split(","))
    fds = init.Fds(status, (stdin, stdout, stderr), console=console[0] if console else None)
    # EOF on the status pipe must still mean "the command was executed"
    os.set_inheritable(status, False)
    try:
        with os.fdopen(spec_fd, "rb") as f:
            raw = json.loads(f.read())
        spec = ExecSpec.from_dict(raw["spec"])
        program = bytes.fromhex(raw["seccomp_program"]) if raw["seccomp_program"] else None
        if program is None:
            # none, or one with flags that libseccomp loads itself: parsed while the
            # profile's file is reachable, so the workload finds it
            seccomp.prepare(spec.seccomp, spec.filter_capabilities)
        layout = cgroups.detect()
    except BaseException as e:  # noqa: B036 - reported, as every failure of the helper
        init._report_error(status, e)
        os._exit(init.SETUP_FAILED)
    _helper(pid, (spec, program), (spec.cgroup, layout), fds, caller, mode == "detach")


def _outcome(child: sandbox._Child, code: int, pid: int) -> Entered:
    workload = child.grandchild or 0
    for error in child.errors:
        kind, _, rest = error.partition(" ")
        if kind == _EXEC_FAILED:
            number, _, message = rest.partition(" ")
            return Entered(int(number), workload, message)
    if child.errors:
        raise RunnerError(f"exec into process {pid} failed: {child.errors[-1]}")
    return Entered(code, workload)


def _helper(pid: int, exec_spec: tuple[ExecSpec, bytes | None],
            cgroup: tuple[str | None, cgroups.Layout], fds: init.Fds, caller: int,
            detach: bool) -> None:
    """``exec_spec``: the spec and, when the caller compiled it, its seccomp program."""
    code = init.SETUP_FAILED
    try:
        libc.prctl(libc.PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != caller:
            os._exit(code)
        # Before anything of the container can see us: no /proc/PID/exe, fd/ or mem.
        libc.prctl(libc.PR_SET_DUMPABLE, 0)
        init.close_fds_except({fds.status, *fds.stdio, *fds.optional()})
        _join(pid, cgroup)
        workload = os.fork()
        if workload == 0:
            _workload(*exec_spec, fds, detach)
        init._report(fds.status, "P", str(workload))
        for fd in {fds.status, *fds.stdio, *fds.optional()}:
            if fd > 2:
                os.close(fd)
        code = 0 if detach else init.status_of(os.waitpid(workload, 0)[1])
    except BaseException as e:  # noqa: B036 - nothing may escape a forked child
        init._report_error(fds.status, e)
    finally:
        os._exit(code)


def _join(pid: int, cgroup: tuple[str | None, cgroups.Layout]) -> None:
    proc = os.open(f"/proc/{pid}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _join_cgroups(_read_at(proc, "cgroup"), pid, *cgroup)
        namespaces = [(os.open(f"ns/{name}", os.O_RDONLY | os.O_CLOEXEC, dir_fd=proc), flag)
                      for name, flag in NAMESPACES]
        root = os.open("root", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=proc)
    finally:
        os.close(proc)
    for fd, flag in namespaces:
        libc.setns(fd, flag)
        os.close(fd)
    # setns(mnt) leaves root and cwd on the namespace's root mount; PID 1's root is the one
    # its processes see (after pivot_root), and no path of the host stays reachable.
    os.fchdir(root)
    os.close(root)
    os.chroot(".")
    os.chdir("/")


def _read_at(dir_fd: int, name: str) -> str:
    fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        return os.read(fd, 1 << 16).decode(errors="replace")
    finally:
        os.close(fd)


def _join_cgroups(text: str, pid: int, name: str | None, layout: cgroups.Layout) -> None:
    """Into every cgroup PID 1 is in, each hierarchy's (runc's device cgroup too, where runc
    runs it): accounted, limited and frozen with it. A recycled pid must not be joined: the
    container's PID 1 sits in its named cgroup."""
    entries = [line.split(":", 2) for line in text.splitlines() if line.count(":") >= 2]
    if name is not None and not any(path.rstrip().endswith(f"/{name}")
                                    for _, _, path in entries):
        raise RunnerError(f"process {pid} is not in cgroup {name}: the container is gone")
    mounts = {frozenset(opts.split(",")): point for point, opts in layout.hierarchies}
    for number, controllers, path in entries:
        base = layout.v2 if number == "0" else mounts.get(frozenset(controllers.split(",")))
        if base is None or path.startswith("/.."):  # not mounted here, or out of our view
            continue
        cgroups.join(base / path.lstrip("/"), "v2" if number == "0" else "v1")


def _workload(exec_spec: ExecSpec, program: bytes | None, fds: init.Fds,
              detach: bool) -> None:
    """The exec'd process: ``init.container_init``'s per-process steps, in its order."""
    code = init.SETUP_FAILED
    spec = exec_spec.run_spec()
    try:
        if not detach:  # a foreground exec dies with its helper (and so with the caller)
            libc.prctl(libc.PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != 0:  # the helper is outside our pid namespace: ppid reads 0
                os._exit(code)
        os.setsid()
        init._setup_stdio(fds.stdio)
        os.umask(0o022)
        if fds.console is not None:
            init.setup_console(fds.console, spec.process.uid, exec_spec.console_size,
                               dev_console=False)
        # The caller decided the set as for PID 1 (MKNOD only under a devices cgroup).
        init.drop_privileges(spec)
        if program is not None:
            seccomp.load_program(program)
        elif (profile := seccomp.prepared(spec.seccomp)) is not None:
            seccomp.install(profile, exec_spec.filter_capabilities)
        init._exec(spec, fds.status)
    except init.ExecError as e:
        code = e.code
        if not detach:
            init._write_stderr(f"pybuild: exec failed: {e}\n")
        init._report(fds.status, "E", f"{_EXEC_FAILED} {e.code} {e}")
    except BaseException as e:  # noqa: B036 - nothing may escape a forked child
        init._report_error(fds.status, e)
    finally:
        os._exit(code)


if __name__ == "__main__":
    main(sys.argv)
