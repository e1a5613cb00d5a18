"""``pybuild exec`` and ``Container.exec_run`` against real running containers: what the
exec'd process sees and is confined by (the container's namespaces, cgroup, capabilities,
seccomp, user, env), docker's exit codes, and what must not reach the container: host fds,
a host cwd, or a way to write the runtime's binary through /proc/PID/exe (CVE-2019-5736)."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from pybuild.client import Client
from pybuild.containers.exec import ExecResult
from pybuild.runner import caps, devices, libc

DEFAULT_CAPEFF = 0xA80425FB  # docker's default 14 capabilities
MKNOD = 1 << caps.CAPABILITIES["MKNOD"]
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def ctr(cli, image):
    """A running container (sleep 100), removed afterwards."""
    made = []

    def start(*args: str, command: tuple[str, ...] = ("sleep", "100")) -> str:
        res = cli("run", "-d", *args, image, *command, check=True)
        made.append(res.stdout.strip())
        return made[-1]

    yield start
    if made:
        cli("rm", "-f", *made)


def status(text: str, key: str) -> str:
    return next(line.split(":", 1)[1].strip() for line in text.splitlines()
                if line.startswith(key + ":"))


def test_exec_joins_the_containers_namespaces(cli, ctr):
    cid = ctr("-h", "exec-host", command=("sh", "-c", "echo seen > /tmp/mark; sleep 100"))
    time.sleep(0.2)
    res = cli("exec", cid, "sh", "-c",
              "hostname; echo $$; cat /tmp/mark; ps -o pid,args | sed -n 2p; cat /proc/1/cmdline",
              check=True)
    host, pid, mark, ps1, cmdline = res.stdout.splitlines()
    assert host == "exec-host"
    assert int(pid) != 1  # PID 1 is the container's own, not the exec'd shell
    assert mark == "seen"
    assert ps1.split()[0] == "1" and "sleep 100" in ps1
    assert cmdline == "sleep\x00100\x00"  # busybox sh execs its last command
    # the mount, uts, ipc, net, pid and cgroup namespaces are the container's
    pid1 = int(cli("inspect", "--format", "{{.State.Pid}}", cid, check=True).stdout)
    inside = cli("exec", cid, "sh", "-c",
                 "for n in mnt uts ipc net pid cgroup; do readlink /proc/self/ns/$n; done",
                 check=True).stdout.split()
    assert inside == [os.readlink(f"/proc/{pid1}/ns/{n}")
                      for n in ("mnt", "uts", "ipc", "net", "pid", "cgroup")]


def test_env_user_and_workdir(cli, ctr):
    cid = ctr("-e", "FROM_RUN=1", "-w", "/tmp")
    res = cli("exec", cid, "sh", "-c", 'echo "$FROM_RUN $EXTRA $PWD $(id -u):$(id -g) $HOME"',
              check=True)
    assert res.stdout == "1  /tmp 0:0 /root\n"
    res = cli("exec", "-e", "EXTRA=two words", "-e", "FROM_RUN=over", "-w", "/etc",
              "-u", "nobody", cid, "sh", "-c",
              'echo "$FROM_RUN $EXTRA $PWD $(id -un):$(id -g) $HOME"', check=True)
    assert res.stdout == "over two words /etc nobody:65534 /nonexistent\n"
    res = cli("exec", "-u", "4242:4343", cid, "id", check=True)
    assert res.stdout.startswith("uid=4242 gid=4343")
    bad = cli("exec", "-u", "nosuchuser", cid, "true")
    assert bad.returncode != 0 and "unable to find user nosuchuser" in bad.stderr
    assert len(bad.stderr.splitlines()) == 1


def test_confinement_is_the_containers(cli, ctr):
    cid = ctr()
    res = cli("exec", cid, "sh", "-c", "cat /proc/self/status; cat /proc/self/cgroup",
              check=True)
    # PID 1's sets, as the host sees them: docker's 14, less MKNOD where no devices cgroup
    # confines the container (cgroup v2), for the exec'd process as for PID 1
    with open(f"/proc/{_pid1(cli, cid)}/status") as f:
        pid1 = f.read()
    assert int(status(pid1, "CapEff"), 16) & ~MKNOD == DEFAULT_CAPEFF & ~MKNOD
    for key in ("CapEff", "CapBnd", "CapPrm"):
        assert status(res.stdout, key) == status(pid1, key), key
    assert status(res.stdout, "NoNewPrivs") == "1"
    assert status(res.stdout, "Seccomp") == "2"
    # its cgroup namespace is rooted at the container's cgroup, and it sits in it
    assert res.stdout.splitlines()[-1].endswith("::/")
    pid = int(cli("exec", "-d", cid, "sleep", "30", check=True).stdout or 0) or None
    assert pid is None  # -d prints nothing
    found = [p for p in os.listdir("/proc") if p.isdigit() and _cmdline(p) == "sleep\x0030"]
    assert len(found) == 1
    with open(f"/proc/{found[0]}/cgroup") as f:
        joined = f.read()
    assert f"/pybuild/ctr-{cid[:16]}\n" in joined
    assert joined == _cgroups_of_pid1(cli, cid)  # every hierarchy's, the device cgroup too
    # seccomp is enforced: the default profile refuses unshare without SYS_ADMIN
    blocked = cli("exec", cid, "unshare", "-n", "true")
    assert blocked.returncode != 0
    privileged = cli("exec", "--privileged", cid, "grep", "CapEff", "/proc/self/status",
                     check=True)
    with open("/proc/self/status") as f:  # all there are: what this host lets us hand on
        bounding = int(status(f.read(), "CapBnd"), 16)
    if devices.hierarchy() is None:  # ... but MKNOD only under a devices cgroup
        bounding &= ~MKNOD
    assert int(privileged.stdout.split()[1], 16) == bounding
    # ...under the container's seccomp filter still (runc's, compiled for its capabilities)
    assert cli("exec", "--privileged", cid, "unshare", "-n", "true").returncode != 0
    assert "Seccomp:\t2" in cli("exec", "--privileged", cid, "cat", "/proc/self/status").stdout


def _pid1(cli, cid: str) -> int:
    return int(cli("inspect", "--format", "{{.State.Pid}}", cid, check=True).stdout)


def _cgroups_of_pid1(cli, cid: str) -> str:
    with open(f"/proc/{_pid1(cli, cid)}/cgroup") as f:
        return f.read()


@pytest.mark.skipif(shutil.which("runc") is None, reason="runc is not installed")
def test_exec_into_a_runc_container(cli, ctr):
    """The same setns path joins a container runc runs (its own cgroups, devices too)."""
    cid = ctr("--runtime", "runc", "-h", "runc-host")
    res = cli("exec", cid, "sh", "-c", "hostname; grep -E 'CapEff|Seccomp:' /proc/self/status;"
              " ps -o pid,args | sed -n 2p", check=True)
    host, cap, seccomp_mode, ps1 = res.stdout.splitlines()
    assert host == "runc-host" and ps1.split()[:2] == ["1", "sleep"]
    assert int(cap.split()[1], 16) == DEFAULT_CAPEFF and seccomp_mode.split()[1] == "2"
    cli("exec", "-d", cid, "sleep", "31", check=True)
    found = [p for p in os.listdir("/proc") if p.isdigit() and _cmdline(p) == "sleep\x0031"]
    assert len(found) == 1
    with open(f"/proc/{found[0]}/cgroup") as f:
        assert f.read() == _cgroups_of_pid1(cli, cid)


def test_capabilities_follow_the_container(cli, ctr):
    cid = ctr("--cap-drop", "ALL", "--cap-add", "CHOWN")
    res = cli("exec", cid, "grep", "CapEff", "/proc/self/status", check=True)
    assert int(res.stdout.split()[1], 16) == 1


def _cmdline(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline") as f:
            return f.read().rstrip("\0")
    except OSError:
        return ""


def test_exit_codes_as_docker(cli, ctr):
    cid = ctr()
    assert cli("exec", cid, "sh", "-c", "exit 3").returncode == 3
    missing = cli("exec", cid, "nosuchcommand")
    assert missing.returncode == 127
    assert 'exec failed: "nosuchcommand": executable file not found in $PATH' in missing.stderr
    cli("exec", cid, "sh", "-c", "echo 'echo hi' > /tmp/noexec", check=True)
    denied = cli("exec", cid, "/tmp/noexec")
    assert denied.returncode == 126 and "permission denied" in denied.stderr
    killed = cli("exec", cid, "sh", "-c", "kill -9 $$")
    assert killed.returncode == 128 + signal.SIGKILL
    detached = cli("exec", "-d", cid, "nosuchcommand")
    assert detached.returncode == 127 and "executable file not found" in detached.stderr


def test_detach_leaves_the_process_in_the_container(cli, ctr):
    cid = ctr()
    res = cli("exec", "-d", cid, "sh", "-c", "sleep 1; echo late > /tmp/late; sleep 100",
              check=True)
    assert res.stdout == "" and res.stderr == ""
    time.sleep(1.5)
    assert cli("exec", cid, "cat", "/tmp/late", check=True).stdout == "late\n"
    ps = cli("exec", cid, "ps", "-o", "pid,ppid,args", check=True).stdout
    line = next(ln for ln in ps.splitlines() if "sleep 100" in ln and ln.split()[0] != "1")
    assert line.split()[1] == "0"  # its parent is outside, as under docker (the shim)
    cli("stop", "-t", "1", cid, check=True)  # ...and gone with it
    assert not [p for p in os.listdir("/proc") if p.isdigit() and _in_cgroup(p, cid)]


def _in_cgroup(pid: str, cid: str) -> bool:
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            return f"/ctr-{cid[:16]}" in f.read()
    except OSError:
        return False


def test_tty_is_a_pty_of_the_containers_sized_as_the_callers(store, cli, ctr):
    import fcntl
    import struct
    import termios

    cid = ctr()
    plain = cli("exec", "-t", cid, "sh", "-c", "tty; echo $TERM", check=True)
    assert plain.stdout.replace("\r\n", "\n").split() == ["/dev/pts/0", "xterm"]
    assert cli("exec", cid, "tty").stdout.strip() == "not a tty"
    master, slave = os.openpty()  # the caller on a terminal of 33 rows, 101 columns
    try:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
        res = subprocess.run([sys.executable, "-m", "pybuild", "--root", str(store.root),
                              "exec", "-t", cid, "stty", "size"], stdout=slave,
                             stderr=subprocess.PIPE, timeout=60)
        assert res.returncode == 0, res.stderr
        assert os.read(master, 1024).split() == [b"33", b"101"]
    finally:
        os.close(master)
        os.close(slave)


def test_exec_into_a_stopped_container_fails(cli, ctr):
    cid = ctr(command=("true",))
    cli("wait", cid, check=True)
    res = cli("exec", cid, "true")
    assert res.returncode != 0
    assert res.stderr.strip().endswith(f"Container {cid} is not running")
    assert "No such container" in cli("exec", "no-such-ctr", "true").stderr


def test_no_host_fd_or_cwd_leaks_in(cli, ctr, tmp_path):
    cid = ctr()
    res = cli("exec", cid, "sh", "-c", "ls /proc/self/fd; readlink /proc/self/cwd; "
              "readlink /proc/self/root; cd ..; cd ..; pwd; ls /", check=True, cwd=tmp_path)
    lines = res.stdout.splitlines()
    fds = lines[:lines.index("/")]
    assert sorted(int(fd) for fd in fds) == [0, 1, 2, 3]  # 3: ls's own /proc/self/fd
    cwd, root, pwd, *listing = lines[len(fds):]
    assert (cwd, root, pwd) == ("/", "/", "/")
    assert "bin" in listing and tmp_path.name not in listing
    # an fd of the caller's that is not close-on-exec does not reach the container either
    with open(tmp_path / "host-file", "w") as f:
        os.set_inheritable(f.fileno(), True)
        leak = cli("exec", cid, "ls", "/proc/self/fd", check=True, pass_fds=(f.fileno(),))
    assert sorted(int(fd) for fd in leak.stdout.split()) == [0, 1, 2, 3]


def test_exec_run_in_the_library(store, ctr):
    cid = ctr()
    container = Client(store.root).containers.get(cid)
    result = container.exec_run("sh -c 'echo out; echo err >&2; exit 4'")
    assert isinstance(result, ExecResult)
    assert result.exit_code == 4 and sorted(result.output.split()) == [b"err", b"out"]
    only = container.exec_run(["sh", "-c", "echo out; echo err >&2"], stderr=False,
                              environment={"A": "b"}, workdir="/tmp", user="nobody")
    assert only == (0, b"out\n")
    env = container.exec_run("sh -c 'echo $A $PWD $(id -un)'", environment=["A=b"],
                             workdir="/tmp", user="nobody")
    assert env.output == b"b /tmp nobody\n"
    streamed = container.exec_run("sh -c 'echo 1; sleep 0.2; echo 2'", stream=True)
    assert streamed.exit_code is None and b"".join(streamed.output) == b"1\n2\n"
    tty = container.exec_run("sh -c 'tty; echo $TERM'", tty=True)
    assert tty.exit_code == 0 and tty.output.split()[0].startswith(b"/dev/pts/")
    assert tty.output.split()[1] == b"xterm"
    assert container.exec_run("sleep 30", detach=True) == (None, b"")


# --- CVE-2019-5736: the runtime's binary must not be writable from inside ---------------


def _try_open_exe(pid: int, flags: int) -> int:
    """In a child with the container's capabilities (no CAP_SYS_PTRACE): 0 if the open of
    /proc/PID/exe worked, else its errno."""
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            keep = caps.mask(caps.DOCKER_DEFAULT_CAPS)
            libc.capset(keep, keep, 0)
            try:
                os.close(os.open(f"/proc/{pid}/exe", flags))
                result = 0
            except OSError as e:
                result = e.errno
            os.write(w, str(result).encode())
        finally:
            os._exit(0)
    os.close(w)
    os.waitpid(child, 0)
    with os.fdopen(r) as f:
        return int(f.read())


def test_a_non_dumpable_helper_hides_its_exe(tmp_path):
    """The mechanism: runc's (and our helper's) PR_SET_DUMPABLE 0 makes /proc/PID/exe
    unopenable for a process without CAP_SYS_PTRACE, even O_PATH (the CVE's first step),
    while it is openable from a dumpable process of the same interpreter (a copy)."""
    python = tmp_path / "python3-copy"
    shutil.copy2(os.path.realpath(sys.executable), python)
    # the target holds the attacker's capabilities, as the exec'd process does: else the
    # kernel's capability check alone refuses the open
    code = ("import sys, time\n"
            "from pybuild.runner import caps, libc\n"
            "keep = caps.mask(caps.DOCKER_DEFAULT_CAPS)\n"
            "libc.capset(keep, keep, 0)\n"
            "if sys.argv[1] == 'hide': libc.prctl(libc.PR_SET_DUMPABLE, 0)\n"
            "print('ready', flush=True); time.sleep(30)\n")
    env = {**os.environ, "PYTHONPATH": REPO}
    procs = {}
    try:
        for mode in ("show", "hide"):
            procs[mode] = subprocess.Popen([str(python), "-c", code, mode],
                                           stdout=subprocess.PIPE, text=True, env=env)
            assert procs[mode].stdout.readline() == "ready\n"
        assert _try_open_exe(procs["show"].pid, os.O_PATH) == 0  # the vector exists
        assert _try_open_exe(procs["hide"].pid, os.O_PATH) == errno.EACCES
        assert _try_open_exe(procs["hide"].pid, os.O_WRONLY) == errno.EACCES
    finally:
        for proc in procs.values():
            proc.kill()
            proc.wait()


def test_execs_cannot_overwrite_the_host_interpreter(cli, ctr):
    """The attack from inside: a container process opening every /proc/N/exe for append
    while execs come and go; none may succeed, and the interpreter stays as it was."""
    python = os.path.realpath(sys.executable)
    before = hashlib.sha256(open(python, "rb").read()).hexdigest()
    attack = ("while true; do for f in /proc/[0-9]*/exe; do "
              "if (readlink $f | grep -q python) 2>/dev/null; then echo $f >> /tmp/seen; fi; "
              "(echo x >> $f) 2>/dev/null && echo $f >> /tmp/written; done; done")
    cid = ctr(command=("sh", "-c", attack))
    for _ in range(25):
        assert cli("exec", cid, "true").returncode == 0
    res = cli("exec", cid, "sh", "-c", "cat /tmp/written /tmp/seen 2>/dev/null; true",
              check=True)
    assert res.stdout == ""  # no exe of python ever named, none written
    assert hashlib.sha256(open(python, "rb").read()).hexdigest() == before


_SELF_EXE = """#!/proc/self/exe
import os
print(os.readlink("/proc/self/exe"), flush=True)
fd = os.open("/proc/self/exe", os.O_RDONLY)
os.set_inheritable(fd, True)
# (later, when no helper runs it any more) reopen it for writing
os.execv("/bin/sh", ["sh", "-c", f"(sleep 1; echo x >> /proc/self/fd/{fd} && echo WROTE || "
                     f"echo refused) >/tmp/verdict 2>&1 &"])
"""


def _loader_dirs() -> list[str]:
    """Where the interpreter's loader, libraries and stdlib are: bound into the container,
    an image could carry them just as well (the CVE's attacker brings their own)."""
    if shutil.which("ldd") is None:
        pytest.skip("no ldd to find the interpreter's libraries")
    out = subprocess.run(["ldd", os.path.realpath(sys.executable)], capture_output=True,
                         text=True).stdout
    paths = [word for word in out.split() if word.startswith("/")]
    dirs = sorted({os.path.dirname(p) for p in paths} | {os.path.dirname(os.__file__)})
    return [d for d in dirs if not any(d.startswith(o + "/") for o in dirs)]


def test_a_self_exe_script_reaches_only_the_sealed_copy(store, cli, ctr, tmp_path, image):
    """``#!/proc/self/exe`` makes the kernel exec the helper's own binary inside the
    container. That must be the sealed memfd copy, and writing it must fail. The CLI runs
    from a copy of the interpreter here, so a regression could only hit that copy."""
    python = tmp_path / "python3-copy"
    shutil.copy2(os.path.realpath(sys.executable), python)
    before = hashlib.sha256(python.read_bytes()).hexdigest()
    binds = [arg for d in _loader_dirs() for arg in ("-v", f"{d}:{d}:ro")]
    cid = ctr(*binds)
    script = tmp_path / "self-exe"
    script.write_text(_SELF_EXE)
    with open(script) as f:
        cli("exec", "-i", cid, "sh", "-c", "cat > /tmp/evil; chmod +x /tmp/evil", stdin=f,
            check=True)
    res = subprocess.run([str(python), "-m", "pybuild", "--root", str(store.root), "exec",
                          cid, "/tmp/evil"], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": REPO})
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("/memfd:pybuild-python")
    time.sleep(1.5)
    verdict = cli("exec", cid, "cat", "/tmp/verdict", check=True).stdout
    # it opens (nothing runs it any more), but the seal refuses the write
    assert verdict.splitlines() == ["sh: write error: Operation not permitted", "refused"]
    assert hashlib.sha256(python.read_bytes()).hexdigest() == before
