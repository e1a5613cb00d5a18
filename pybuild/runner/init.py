"""The code that runs in the forked sandbox processes; it never returns to the caller.

Two processes, as runc's nsexec + init:

* ``intermediate`` is forked by the caller. It unshares the namespaces and forks again,
  because a new PID namespace only applies to children: the grandchild is PID 1. It then
  waits and exits with the grandchild's status (128+n for signal n).
* ``container_init`` is that PID 1. It builds the filesystem and drops privileges in the
  fixed order of ``container_init`` below, then execs the workload.

Both talk to the caller over a status pipe (close-on-exec, so EOF means "exec happened"):
``P <pid>`` the grandchild's host pid, ``M <path>`` a mount point we had to create (to be
removed again), ``K <path>`` one made for a path of the spec's ``kept_mount_points`` (to be
left as runc leaves it), ``E <message>`` a setup failure. The caller answers on the sync
pipe once its prepare step ran on PID 1; EOF there means the caller is gone. Only the
modules imported here are used after fork.
"""

from __future__ import annotations

import errno
import fcntl
import os
import resource
import signal
import socket
import struct
import termios
from dataclasses import dataclass

from pybuild.errors import RunnerError
from pybuild.runner import caps, cgroups, devices, libc, mounts, seccomp
from pybuild.runner.spec import DEFAULT_PATH, RLIMITS, RunSpec

SETUP_FAILED = 125
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1


class ExecError(Exception):
    """The workload could not be executed; carries docker's exit code (126 or 127)."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


def _report(fd: int, kind: str, text: str) -> None:
    os.write(fd, f"{kind} {text}\n".encode(errors="surrogateescape"))


def status_of(wait_status: int) -> int:
    if os.WIFSIGNALED(wait_status):
        return 128 + os.WTERMSIG(wait_status)
    return os.waitstatus_to_exitcode(wait_status)


def namespace_flags(spec: RunSpec) -> int:
    # No CLONE_NEWCGROUP here: PID 1 unshares it itself once it sits in its cgroup, so that
    # cgroup (not the caller's) becomes the root of the container's cgroup view.
    # "container" joins another netns before this (intermediate), "host" keeps the caller's
    flags = libc.CLONE_NEWNS | libc.CLONE_NEWUTS | libc.CLONE_NEWIPC | libc.CLONE_NEWPID
    return flags | (libc.CLONE_NEWNET if spec.network in ("none", "bridge") else 0)


@dataclass(frozen=True)
class Fds:
    status: int                    # write end of the status pipe
    stdio: tuple[int, int, int]    # becomes the workload's 0, 1, 2
    sync: int | None = None        # read end: one byte once the caller's prepare step ran
    console: int | None = None     # a socket to send the terminal's master end over

    def optional(self) -> list[int]:
        return [fd for fd in (self.sync, self.console) if fd is not None]


def intermediate(spec: RunSpec, root: str, layout: cgroups.Layout, fds: Fds,
                 caller: int, cgroup: cgroups.Cgroup | None = None) -> None:
    """``layout`` is the caller's detection, the one every step uses: no process of the
    sandbox reads mountinfo again (after pivot_root it would show the container's)."""
    code = SETUP_FAILED
    confined: devices.Confined | None = None
    try:
        # Die with the caller: a SIGKILLed pybuild must not leave a sandbox behind.
        libc.prctl(libc.PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != caller:
            os._exit(code)
        # Drop every fd inherited from the caller (other threads' pipes, a stdin pipe's write
        # end) so pipes see EOF when the workload, not this process, closes them.
        close_fds_except({fds.status, *fds.stdio, *fds.optional()})
        # PID 1 is forked into the devices cgroup (devices.py), so it never runs outside it.
        confined = devices.confine(spec.devices, layout)
        if devices.granted_caps(spec.capabilities, confined is not None) != spec.capabilities:
            # the caller drops it (sandbox.run): a node made with it could open any device
            raise RunnerError("CAP_MKNOD without a devices cgroup to confine it")
        if spec.network == "container":
            _join_netns(spec.netns)
        libc.unshare(namespace_flags(spec))
        alive_r, alive_w = os.pipe()  # EOF for PID 1 once this process is gone
        pid = os.fork()
        if pid == 0:
            os.close(alive_w)
            container_init(spec, root, layout, fds, alive_r, cgroup)
        os.close(alive_r)
        if confined is not None:
            confined.leave()
        # The caller puts PID 1 (only: this process stays out of the limits) in its cgroups.
        _report(fds.status, "P", str(pid))
        for fd in {fds.status, *fds.stdio, *fds.optional()}:
            if fd > 2:
                os.close(fd)
        code = status_of(os.waitpid(pid, 0)[1])
    except BaseException as e:  # noqa: B036 - nothing may escape a forked child
        _report_error(fds.status, e)
    finally:
        try:
            if confined is not None:
                confined.remove()
        finally:
            os._exit(code)


def _join_netns(path: str) -> None:
    """``--network container:X``: X's network namespace, so PID 1 is forked into it."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        libc.setns(fd, libc.CLONE_NEWNET)
    finally:
        os.close(fd)


def close_fds_except(keep: set[int]) -> None:
    low = 0
    for fd in sorted(keep):
        if fd > low:
            os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 20)


def _report_error(status_fd: int, e: BaseException) -> None:
    try:
        if isinstance(e, OSError) and e.strerror:
            message = f"{e.strerror}: {e.filename}" if e.filename else e.strerror
        else:
            message = f"{type(e).__name__}: {e}"
        _report(status_fd, "E", message.replace("\n", " "))
    except BaseException:  # noqa: B036
        pass


def container_init(spec: RunSpec, root: str, layout: cgroups.Layout, fds: Fds,
                   alive: int, cgroup: cgroups.Cgroup | None = None) -> None:
    """PID 1 of the sandbox: the setup as one ordered list (runc's standard init order).

    Steps 1-4, 10, 11, 16 and 17 here; 5-9 in ``_setup_filesystem``; 12-15 in
    ``drop_privileges``.
    """
    code = SETUP_FAILED
    made = mounts.MadePoints(frozenset(spec.kept_mount_points))
    try:
        # 1. Die with the intermediate (and so with the caller). If it died before the
        #    prctl took effect, the alive pipe is at EOF already: stop here.
        libc.prctl(libc.PR_SET_PDEATHSIG, signal.SIGKILL)
        if not _parent_alive(alive):
            os._exit(SETUP_FAILED)
        # 2. Wait until the caller's prepare step (a bridge's veth) is done, move into the
        #    cgroups (if any) and take the cgroup namespace: everything from here on is
        #    accounted and limited. PID 1 moves itself, one thread as it is, which costs no
        #    RCU grace period (cgroups.join), unlike a move by the caller.
        if fds.sync is not None and os.read(fds.sync, 1) != b"1":
            os._exit(SETUP_FAILED)
        if cgroup is not None:
            cgroup.join()
        libc.unshare(libc.CLONE_NEWCGROUP)
        # 3. Own session, so the caller's terminal signals reach us only through the caller.
        #    A fixed umask, as docker's 0022: files a RUN creates must not depend on the caller.
        os.setsid()
        _setup_stdio(fds.stdio)
        os.umask(0o022)
        # 4. Network: a fresh namespace has only a down loopback; bring it up (runc does too).
        #    A bridge's veth is in already: the caller's prepare step ran before step 2 ended.
        if spec.network in ("none", "bridge"):
            _loopback_up()
        _setup_filesystem(spec, root, layout, fds.status, made)
        # 10. A terminal comes from the container's own devpts (it exists only now) and
        #     becomes stdio and the controlling tty; the caller gets the master end.
        if fds.console is not None:
            setup_console(fds.console, spec.process.uid)
        # 11. Hostname needs CAP_SYS_ADMIN in the UTS namespace: before dropping caps.
        socket.sethostname(spec.hostname)
        drop_privileges(spec)
        # 16. The seccomp filter last: nothing of our own setup has to pass it. validate()
        #     parsed and compiled the profile before fork (its file is out of reach now);
        #     this loads the compiled program.
        profile = seccomp.prepared(spec.seccomp)
        if profile is not None:
            seccomp.install(profile, spec.capabilities)
        # 17. Exec with the container's PATH; only stdio and the status pipe (CLOEXEC) remain.
        _exec(spec, fds.status)
    except ExecError as e:
        code = e.code
        _write_stderr(f"pybuild: exec: {e}\n")
    except BaseException as e:  # noqa: B036 - nothing may escape a forked child
        _report_made(fds.status, made)
        _report_error(fds.status, e)
    finally:
        os._exit(code)


def _report_made(status_fd: int, made: mounts.MadePoints) -> None:
    for path in made.removed:
        _report(status_fd, "M", path)
    for path in made.kept:
        _report(status_fd, "K", path)
    made.removed.clear()
    made.kept.clear()


def _setup_filesystem(spec: RunSpec, root: str, layout: cgroups.Layout, status_fd: int,
                      made: mounts.MadePoints) -> None:
    # 5. Stop mount events from propagating to the host before mounting anything.
    libc.mount(None, "/", None, libc.MS_REC | libc.MS_PRIVATE)
    # 6. The image's filesystem on a private mount point, then the kernel filesystems,
    #    then etc files and the spec's mounts on top (they may land inside /dev etc.).
    mounts.mount_rootfs(spec.rootfs, root)
    mounts.mount_standard(root, made)
    mounts.make_devices(root, spec.devices)
    mounts.mount_cgroups(root, layout)
    mounts.mount_etc_files(root, spec.etc_files, made)
    mounts.mount_spec(root, spec.mounts, made)
    # 7. Report created mount points now (the caller cleans them up after the run).
    _report_made(status_fd, made)
    # 8. Switch root; the host's tree is detached and unreachable from here on.
    mounts.pivot(root)
    # 9. Mask and write-protect kernel files; needs the final /proc, before caps go. The
    #    read-only rootfs remount comes last, after every mount point exists.
    mounts.mask_paths(spec.masked_paths)
    mounts.readonly_paths(spec.readonly_paths)
    if spec.rootfs.readonly:
        libc.mount(None, "/", None, libc.MS_BIND | libc.MS_REMOUNT | libc.MS_RDONLY)


def drop_privileges(spec: RunSpec) -> None:
    """Steps 12-15, for PID 1 and for every process ``exec`` adds (enter.py), which so end
    up with the same limits and privileges."""
    # 12. Limits, clamped to the hard values we have (root lacks CAP_SYS_RESOURCE here).
    _set_rlimits(spec)
    # 13. cwd while still root (it may be reachable by root only), as runc; retried below.
    cwd_done = _try_chdir(spec.process.cwd)
    # 14. Privileges: bounding set (needs CAP_SETPCAP), user switch, final cap sets.
    #     The set is final: the caller took MKNOD out where no devices cgroup confines us.
    keep = caps.mask(spec.capabilities)
    caps.drop_bounding(keep)
    caps.change_user(keep, lambda: _switch_user(spec))
    # 15. no_new_privs: setuid binaries can no longer gain privileges, and step 16 may
    #     install seccomp without CAP_SYS_ADMIN. A cwd only the user could reach: now.
    if spec.no_new_privs:
        libc.prctl(libc.PR_SET_NO_NEW_PRIVS, 1)
    if not cwd_done:
        _chdir(spec.process.cwd)


def _parent_alive(alive: int) -> bool:
    os.set_blocking(alive, False)
    try:
        return os.read(alive, 1) != b""
    except BlockingIOError:
        return True
    finally:
        os.close(alive)


def _setup_stdio(stdio: tuple[int, int, int]) -> None:
    for target, fd in enumerate(stdio):
        if fd != target:
            os.dup2(fd, target)


def setup_console(sock_fd: int, uid: int, size: tuple[int, int] | None = None,
                  dev_console: bool = True) -> None:
    """A pty from the container's devpts as stdio and controlling terminal; the caller gets
    the master over ``sock_fd``. PID 1's is bind-mounted on /dev/console; a process exec
    adds (``dev_console`` False) leaves that alone and gets the caller's ``size``."""
    master, slave = os.openpty()  # /dev/ptmx is the container's devpts now
    with socket.socket(fileno=sock_fd) as sock:
        socket.send_fds(sock, [b"pty"], [master])
    os.close(master)
    if uid != 0:
        os.fchown(slave, uid, -1)
    if size is not None:  # (rows, columns), as docker exec -t sets it
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))
    if dev_console:
        os.close(os.open("/dev/console", os.O_CREAT | os.O_WRONLY, 0o600))
        libc.mount(os.ttyname(slave), "/dev/console", None, libc.MS_BIND)
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    _setup_stdio((slave, slave, slave))
    os.close(slave)


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s.fileno(), _SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s.fileno(), _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))


def _set_rlimits(spec: RunSpec) -> None:
    inf = resource.RLIM_INFINITY
    for r in spec.rlimits:
        which = RLIMITS[r.name]
        _, max_hard = resource.getrlimit(which)
        hard = r.hard if max_hard == inf or (r.hard != inf and r.hard <= max_hard) else max_hard
        soft = r.soft if hard == inf or (r.soft != inf and r.soft <= hard) else hard
        resource.setrlimit(which, (soft, hard))


def _switch_user(spec: RunSpec) -> None:
    p = spec.process
    os.setgroups(list(p.additional_gids))
    os.setgid(p.gid)
    os.setuid(p.uid)


def _try_chdir(cwd: str) -> bool:
    try:
        os.chdir(cwd)
        return True
    except OSError:
        return False


def _chdir(cwd: str) -> None:
    try:
        os.chdir(cwd)
    except OSError as e:
        raise OSError(e.errno, f"cannot change to working directory {cwd}: {e.strerror}") from e


def _write_stderr(text: str) -> None:
    try:
        os.write(2, text.encode(errors="surrogateescape"))
    except OSError:
        pass


def _lookup(name: str, env: dict[str, str]) -> str:
    """Docker/runc's lookup: names with a slash as they are, others along the container PATH."""
    if "/" in name:
        return name
    for directory in env.get("PATH", DEFAULT_PATH).split(":"):
        candidate = os.path.join(directory or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise ExecError(127, f'"{name}": executable file not found in $PATH')


def _exec(spec: RunSpec, status_fd: int) -> None:
    env = dict(item.split("=", 1) for item in spec.process.env)
    path = _lookup(spec.process.args[0], env)
    # Only stdio and the close-on-exec status pipe survive into the workload.
    close_fds_except({0, 1, 2, status_fd})
    for signum in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT):  # Python's, not ours
        signal.signal(signum, signal.SIG_DFL)
    try:
        os.execve(path, list(spec.process.args), env)
    except OSError as e:
        code = 127 if e.errno in (errno.ENOENT, errno.ENOTDIR) else 126
        raise ExecError(code, f'"{path}": {e.strerror.lower()}') from e
