"""One RunSpec, two executors: pybuild's sandbox and runc through an OCI bundle.

Each test runs the same busybox probe under ``pybuild.runner.run`` and under ``run_runc``
(each on a fresh copy of the image) and compares what the two containers saw. Where runc
does something the mapping cannot change, the difference is named in ``KNOWN_MOUNT_DIFFS``
or in the test, with the reason; everything else must be equal.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from support.runner import Box, Result, make_box, run_capture, running

from pybuild.errors import RunnerError
from pybuild.runner import Mount, Process, Resources, RunSpec, cgroups
from pybuild.runner.bundle import mounts_under, remove_bundle, run_runc, write_bundle
from pybuild.runner.runc import Runc

pytestmark = pytest.mark.root

# Mount points where runc 1.1 gives another container than the sandbox on a v1 or hybrid
# host (on a v2 host both mount one read-only cgroup2), and why:
KNOWN_MOUNT_DIFFS = {
    # runc mounts the v1 hierarchies on a tmpfs it leaves writable; the sandbox remounts
    # that tmpfs read-only (mounts.mount_cgroups). OCI has no option for it.
    "/sys/fs/cgroup",
    # runc 1.1 mounts only the v1 controllers on a hybrid host, not the cgroup2 tree
    # (systemd's "unified"); the sandbox mounts every hierarchy the host has.
    "/sys/fs/cgroup/unified",
}


@pytest.fixture
def runc_root(tmp_path: Path) -> Path:
    if shutil.which("runc") is None:
        pytest.skip("runc is not installed")
    return tmp_path / "runc-state"


@pytest.fixture
def boxes(tmp_path: Path, runc_root: Path) -> tuple[Box, Box]:
    """Two fresh copies of busybox: one per executor, so neither sees the other's writes."""
    return make_box(tmp_path / "sandbox"), make_box(tmp_path / "oci")


def _capture_fds() -> tuple[int, int]:
    return (os.open(tempfile.gettempdir(), os.O_TMPFILE | os.O_RDWR),
            os.open(tempfile.gettempdir(), os.O_TMPFILE | os.O_RDWR))


def _read_all(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks).decode()


def run_oci(spec: RunSpec, bundle: Path, root: Path, *, cgroups_path: str | None = None,
            cancel: threading.Event | None = None) -> Result:
    out, err = _capture_fds()
    write_bundle(bundle, spec, cgroups_path=cgroups_path)
    try:
        code = run_runc(bundle, bundle.parent.name + "-" + os.urandom(3).hex(),
                        stdout=out, stderr=err, root=root, cancel=cancel)
    finally:
        remove_bundle(bundle)
        text_out, text_err = _read_all(out), _read_all(err)
    return Result(code, text_out, text_err)


def both(boxes: tuple[Box, Box], runc_root: Path, script: str,
         change: Callable[[RunSpec], RunSpec] = lambda s: s) -> tuple[Result, Result]:
    sandbox_box, oci_box = boxes
    ours = run_capture(change(sandbox_box.spec(script)))
    theirs = run_oci(change(oci_box.spec(script)), oci_box.lower.parent / "bundle", runc_root)
    return ours, theirs


def sections(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in text.split("\n## ")[1:]:
        name, _, body = part.partition("\n")
        found[name.strip()] = body
    return found


# Section marks come from printf escapes: the script text (in /proc/1/cmdline) has none.
PROBE = r"""
s() { printf '\n\043\043 %s\n' "$1"; }
s hostname; hostname
s ids; id -u; id -g; id -G
s status; grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' /proc/self/status
s pid; echo $$; tr '\0' ' ' < /proc/1/cmdline; echo
s env; env | sort
s cwd; pwd
s umask; umask
s limits; ulimit -n; ulimit -Hn
s mounts; cat /proc/self/mountinfo
"""


def _user_spec(spec: RunSpec) -> RunSpec:
    process = replace(spec.process, uid=1000, gid=1001, additional_gids=(1001, 27),
                      cwd="/tmp", env=(*spec.process.env, "HOME=/home/probe", "FOO=a b"))
    return replace(spec, process=process, hostname="probe-host")


@pytest.mark.parametrize("change", [lambda s: s, _user_spec], ids=["root", "user"])
def test_the_probe_sees_the_same_container(boxes: tuple[Box, Box], runc_root: Path,
                                           change: Callable[[RunSpec], RunSpec]) -> None:
    ours, theirs = both(boxes, runc_root, PROBE, change)
    assert (ours.code, theirs.code) == (0, 0), (ours.err, theirs.err)
    a, b = sections(ours.out), sections(theirs.out)
    for name in ("hostname", "ids", "status", "pid", "cwd", "umask", "limits"):
        assert a[name] == b[name], name
    assert a["pid"].split()[0] == "1"
    assert _env(a["env"], b["env"]) == (set(), set())
    assert _mount_diffs(a["mounts"], b["mounts"]) <= KNOWN_MOUNT_DIFFS


def _env(ours: str, theirs: str) -> tuple[set[str], set[str]]:
    """Entries only one side has; runc adds HOME (from the image's /etc/passwd) when the
    spec has none, which the sandbox (like the spec) leaves out."""
    a, b = set(ours.splitlines()), set(theirs.splitlines())
    if not any(e.startswith("HOME=") for e in a):
        b = {e for e in b if not e.startswith("HOME=")}
    return a - b, b - a


_FLAGS = {"ro", "rw", "nosuid", "nodev", "noexec"}


def _mount_table(text: str) -> dict[str, tuple[str, frozenset[str]]]:
    """mount point -> (fstype, per-mount flags that matter), the topmost mount winning."""
    table = {}
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        fields = left.split()
        if not right or len(fields) < 6:  # not a mountinfo line
            continue
        flags = frozenset(o for o in fields[5].split(",") if o in _FLAGS)
        table[fields[4]] = (right.split()[0], flags)
    return table


def _mount_diffs(ours: str, theirs: str) -> set[str]:
    a, b = _mount_table(ours), _mount_table(theirs)
    return {p for p in a.keys() | b.keys() if a.get(p) != b.get(p)}


def test_masked_and_readonly_paths(boxes: tuple[Box, Box], runc_root: Path) -> None:
    spec = boxes[0].spec("")
    script = "".join(
        f"if [ -d {p} ]; then echo {p} $(ls -A {p} | wc -l); "
        f"elif [ -e {p} ]; then echo {p} $(cat {p} 2>/dev/null | wc -c); fi\n"
        for p in spec.masked_paths)
    # Each read-only path's own mount and its flag; then a real write (busybox's [ -w ] says
    # yes to root even on a read-only mount).
    script += "".join(f"awk '$5 == \"{p}\" {{print $5, substr($6, 1, 2)}}' /proc/self/mountinfo\n"
                      for p in spec.readonly_paths)
    script += "touch /proc/sys/kernel/hostname 2>&1 | grep -q Read-only && echo hostname ro\n"
    ours, theirs = both(boxes, runc_root, script)
    assert ours.out == theirs.out
    lines = ours.out.splitlines()
    assert {"hostname ro", "/proc/keys 0", "/proc/sys ro"} <= set(lines)
    for line in lines:
        assert line.split()[1] in ("0", "ro"), line  # masked: empty; read-only: not writable


def test_binds_tmpfs_and_etc_files(boxes: tuple[Box, Box], runc_root: Path,
                                   tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "hello").write_text("from the host\n")
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost probe\n")

    def change(spec: RunSpec) -> RunSpec:
        return replace(spec, etc_files=(("/etc/hosts", hosts),), mounts=(
            Mount("bind", str(data), "/data", readonly=True),
            Mount("tmpfs", "", "/scratch", options=("size=1m", "mode=1777")),
            Mount("tmpfs", "", "/scratch/ro", readonly=True),
        ))

    script = ("cat /data/hello /etc/hosts; touch /data/x 2>/dev/null || echo data ro; "
              "touch /scratch/x && echo scratch rw; stat -c %a /scratch; "
              "touch /scratch/ro/x 2>/dev/null || echo scratch/ro ro; "
              "grep -E ' /(data|scratch|scratch/ro|etc/hosts) ' /proc/self/mountinfo")
    ours, theirs = both(boxes, runc_root, script, change)
    lines = [ln for ln in ours.out.splitlines() if " - " not in ln]
    assert lines == ["from the host", "127.0.0.1 localhost probe", "data ro", "scratch rw",
                     "1777", "scratch/ro ro"]
    assert lines == [ln for ln in theirs.out.splitlines() if " - " not in ln]
    assert _mount_diffs(ours.out, theirs.out) == set()
    assert len(_mount_table(ours.out)) == 4


def test_missing_executable_is_127_under_both(boxes: tuple[Box, Box], runc_root: Path) -> None:
    def change(spec: RunSpec) -> RunSpec:
        return replace(spec, process=Process(args=("no-such-tool",)))

    ours, theirs = both(boxes, runc_root, "", change)
    assert ours.code == theirs.code == 127
    for result in (ours, theirs):
        assert 'exec: "no-such-tool": executable file not found in $PATH' in result.err


def test_exit_code_and_cancel(boxes: tuple[Box, Box], runc_root: Path) -> None:
    ours, theirs = both(boxes, runc_root, "echo out; echo err >&2; exit 3")
    assert (ours.code, ours.out, ours.err) == (theirs.code, theirs.out, theirs.err) == \
        (3, "out\n", "err\n")
    box = boxes[1]
    cancel = threading.Event()
    timer = threading.Timer(1.0, cancel.set)
    timer.start()
    try:
        result = run_oci(box.spec("sleep 30"), box.lower.parent / "bundle", runc_root,
                         cancel=cancel)
    finally:
        timer.cancel()
    assert result.code == 137


def _cgroup_dir(pid: int, controller: str) -> Path:
    layout = cgroups.detect()
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, names, path = line.split(":", 2)
        if controller in names.split(",") and controller in layout.v1:
            return layout.v1[controller] / path.lstrip("/")
        if names == "" and layout.kind == "v2" and layout.v2 is not None:
            return layout.v2 / path.lstrip("/")
    raise AssertionError(f"pid {pid} has no {controller} cgroup")


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:  # gone already (a child that exec'd and exited)
        return None
    return int(stat.rpartition(")")[2].split()[1])


def _host_limits(command: str) -> dict[str, str]:
    """The memory and pids limits of the container running ``command``, read from the
    host's cgroup files (wherever /proc/PID/cgroup says it is)."""
    deadline = time.monotonic() + 20
    while not running(command) and time.monotonic() < deadline:
        time.sleep(0.02)
    # the shell's children share its command line until they exec (sleep): the shell is
    # the one whose parent is not among them
    pids = running(command)
    (pid,) = [p for p in pids if (parent := _parent(p)) is not None and parent not in pids]
    limits = {}
    for controller in ("memory", "pids"):
        d = _cgroup_dir(pid, controller)
        for name in ("memory.limit_in_bytes", "memory.max", "pids.max"):
            if (d / name).exists():
                limits[name] = (d / name).read_text().strip()
    return limits


def test_limits_visible_from_the_host(boxes: tuple[Box, Box], runc_root: Path,
                                      tmp_path: Path) -> None:
    if cgroups.detect().kind == "none":
        pytest.skip("no cgroup hierarchy is mounted")
    seen = {}
    for name, box in zip(("sandbox", "oci"), boxes, strict=True):
        shared = tmp_path / f"shared-{name}"
        shared.mkdir()
        script = f"while [ ! -e /shared/go ]; do sleep 0.05; done; : {name}"
        spec = box.spec(script, resources=Resources(memory=64 << 20, pids_limit=37),
                        mounts=(Mount("bind", str(shared), "/shared"),))
        codes: list[int] = []
        if name == "sandbox":
            def start(spec: RunSpec = spec, codes: list[int] = codes) -> None:
                codes.append(run_capture(spec).code)
        else:
            cg_path = f"/pybuild/oci-test-{os.getpid()}-{os.urandom(3).hex()}"

            def start(spec: RunSpec = spec, box: Box = box, cg: str = cg_path,
                      codes: list[int] = codes) -> None:
                codes.append(run_oci(spec, box.lower.parent / "bundle", runc_root,
                                     cgroups_path=cg).code)
        thread = threading.Thread(target=start)
        thread.start()
        try:
            seen[name] = _host_limits(f"/bin/sh -c {script}")
        finally:
            (shared / "go").touch()
            thread.join(30)
        assert codes == [0]
    assert seen["sandbox"] == seen["oci"]
    assert str(64 << 20) in seen["oci"].values() and "37" in seen["oci"].values()


def test_cleanup_leaves_no_mount_and_no_container(boxes: tuple[Box, Box], runc_root: Path,
                                                  tmp_path: Path) -> None:
    box = boxes[1]
    bundle = tmp_path / "bundle"
    cg_path = f"/pybuild/oci-test-{os.getpid()}-{os.urandom(3).hex()}"
    cg_dirs = [p / cg_path.lstrip("/") for p in (*cgroups.detect().v1.values(),)]
    plain = box.spec("exit 0")
    gone = tmp_path / "gone"
    gone.mkdir()
    vanishing = replace(plain, mounts=(Mount("bind", str(gone), "/gone"),))
    for spec, expected in ((plain, 0), (replace(plain, process=Process(args=("nope",))), 127),
                           (vanishing, None)):
        write_bundle(bundle, spec, cgroups_path=cg_path)
        if spec is vanishing:  # a bind source removed after the bundle was written
            gone.rmdir()
        assert mounts_under(bundle)  # the rootfs is mounted while the bundle exists
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            if expected is None:  # runc cannot set the container up: an error, not a code
                with pytest.raises(RunnerError, match="runc: .*gone"):
                    run_runc(bundle, "oci-cleanup", stdout=devnull, stderr=devnull,
                             root=runc_root)
            else:
                assert run_runc(bundle, "oci-cleanup", stdout=devnull, stderr=devnull,
                                root=runc_root) == expected
        finally:
            os.close(devnull)
        assert mounts_under(bundle) == []
        assert Runc(runc_root).list() == []
        assert not any(d.exists() for d in cg_dirs)
        remove_bundle(bundle)
        assert not bundle.exists()


@pytest.mark.parametrize("extra_caps", [(), ("SYS_ADMIN",)], ids=["default", "sys_admin"])
def test_seccomp_follows_the_capabilities_in_both(boxes: tuple[Box, Box], runc_root: Path,
                                                  extra_caps: tuple[str, ...]) -> None:
    """Docker's profile allows unshare only with CAP_SYS_ADMIN (an ``includes.caps`` rule):
    both executors must resolve it the same way."""
    def change(spec: RunSpec) -> RunSpec:
        return replace(spec, capabilities=(*spec.capabilities, *extra_caps))

    script = "unshare -U true 2>/dev/null; echo $?; grep ^Seccomp: /proc/self/status"
    ours, theirs = both(boxes, runc_root, script, change)
    assert ours.out == theirs.out
    assert ours.out.split()[0] == ("0" if extra_caps else "1")
