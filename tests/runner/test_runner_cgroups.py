"""cgroups: layout detection and both backends on fake trees; real limits on this host."""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support.runner import Box, make_box, processes_with, run_capture, skip_unless

from pybuild.errors import RunnerError
from pybuild.runner import Mount, Resources, RunSpec, cgroup_files, cgroups, probe, run

V1_MOUNTINFO = """\
25 1 0:22 / / rw - ext4 /dev/sda1 rw
30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
32 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
33 30 0:29 / /sys/fs/cgroup/pids rw,nosuid - cgroup cgroup rw,pids
34 30 0:30 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
"""
HYBRID_EXTRA = "35 30 0:31 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
V2_MOUNTINFO = """\
25 1 0:22 / / rw - ext4 /dev/sda1 rw
30 25 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
"""


def test_layout_detection() -> None:
    v1 = cgroups.parse_mountinfo(V1_MOUNTINFO)
    assert v1.kind == "v1"
    assert v1.v1["cpu"] == v1.v1["cpuacct"] == Path("/sys/fs/cgroup/cpu,cpuacct")
    assert "systemd" not in v1.v1 and "name=systemd" not in v1.v1
    hybrid = cgroups.parse_mountinfo(V1_MOUNTINFO + HYBRID_EXTRA)
    assert (hybrid.kind, hybrid.v2) == ("hybrid", Path("/sys/fs/cgroup/unified"))
    v2 = cgroups.parse_mountinfo(V2_MOUNTINFO)
    assert (v2.kind, v2.v1, v2.v2) == ("v2", {}, Path("/sys/fs/cgroup"))
    assert cgroups.parse_mountinfo("25 1 0:22 / / rw - ext4 /dev/sda1 rw\n").kind == "none"


def test_this_host_matches_the_probe() -> None:
    assert cgroups.detect().kind == probe().cgroup_layout


def test_placement_follows_where_each_controller_lives(tmp_path: Path) -> None:
    v1 = cgroups.parse_mountinfo(V1_MOUNTINFO + HYBRID_EXTRA)
    # this host's kind of hybrid: the unified tree offers nothing we use
    where = cgroups.placement(cgroups.Layout("hybrid", v1.v1, v1.v2,
                                             v2_controllers=frozenset({"hugetlb"})))
    assert {c: v for c, (v, _) in where.items()} == {
        "memory": "v1", "cpu": "v1", "cpuacct": "v1", "pids": "v1", "freezer": "v2"}
    # a hybrid host whose v2 root offers cpu and pids: those go to v2, memory stays v1
    mixed = cgroups.Layout("hybrid", {"memory": tmp_path / "memory"}, tmp_path / "unified",
                           v2_controllers=frozenset({"cpu", "pids", "io"}))
    got = {c: v for c, (v, _) in cgroups.placement(mixed).items()}
    assert got == {"memory": "v1", "cpu": "v2", "cpuacct": "v2", "pids": "v2", "blkio": "v2",
                   "freezer": "v2"}
    assert cgroups.placement(cgroups.Layout("none")) == {}


def _fake_v2(root: Path) -> cgroups.Cgroup:
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (root / "pybuild").mkdir()
    (root / "pybuild/cgroup.controllers").write_text("cpu memory pids\n")
    cg = cgroups.open_cgroup("t1", cgroups.Layout("v2", {}, root))
    cg.create()
    leaf = root / "pybuild/t1"
    for name in ("memory.swap.max", "io.weight"):  # optional files the kernel would have
        (leaf / name).write_text("")
    return cg


def test_v2_backend_on_a_fake_tree(tmp_path: Path) -> None:
    cg = _fake_v2(tmp_path)
    cg.apply(Resources(memory=64 << 20, memory_swap=96 << 20, memory_reservation=32 << 20,
                       memory_swappiness=10, kernel_memory=64 << 20, oom_kill_disable=True,
                       cpus=1.5, cpu_shares=512, cpuset_cpus="0", cpuset_mems="0",
                       pids_limit=30, blkio_weight=300))
    leaf = tmp_path / "pybuild/t1"
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+memory +cpu +cpuset +pids +io"
    assert (tmp_path / "pybuild/cgroup.subtree_control").read_text() == "+memory +cpu +pids"
    files = {f.name: f.read_text() for f in leaf.iterdir()}
    assert files == {"memory.max": str(64 << 20), "memory.swap.max": str(32 << 20),
                     "memory.low": str(32 << 20), "cpu.weight": "20", "cpu.max": "150000 100000",
                     "cpuset.cpus": "0", "cpuset.mems": "0", "pids.max": "30",
                     "io.weight": "default 2930"}  # v1-only limits write nothing on v2
    (leaf / "memory.current").write_text("4096\n")
    (leaf / "cpu.stat").write_text("usage_usec 12\nuser_usec 10\n")
    (leaf / "memory.events").write_text("low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n")
    assert cg.stats() == cgroups.CgroupStats(12000, 4096, 64 << 20, None, 1)
    assert cg.oom_killed()
    cg.update(Resources(memory_swap=-1, pids_limit=-1, cpu_quota=-1))
    assert (leaf / "memory.swap.max").read_text() == "max"
    assert (leaf / "pids.max").read_text() == "max" and (leaf / "cpu.max").read_text() == "max"


def _fake_v1(root: Path) -> cgroups.Cgroup:
    mounts = {c: root / c for c in ("memory", "cpu", "pids", "cpuset", "freezer")}
    mounts["cpuacct"] = mounts["cpu"]
    for f in ("cpuset.cpus", "cpuset.mems"):
        (root / "cpuset").mkdir(exist_ok=True)
        (root / "cpuset" / f).write_text("0-1\n")
        (root / "cpuset/pybuild").mkdir(exist_ok=True)
        (root / "cpuset/pybuild" / f).write_text("")
    cg = cgroups.open_cgroup("t2", cgroups.Layout("v1", mounts))
    cg.create()
    (root / "memory/pybuild/t2/memory.memsw.limit_in_bytes").write_text(str(1 << 62))
    return cg


def test_v1_backend_on_a_fake_tree(tmp_path: Path) -> None:
    cg = _fake_v1(tmp_path)
    assert len(cg.paths()) == 5  # cpu and cpuacct share one directory
    # an empty cpuset was filled from its parent before any process could join
    assert (tmp_path / "cpuset/pybuild/cpuset.cpus").read_text() == "0-1"
    assert (tmp_path / "cpuset/pybuild/t2/cpuset.mems").read_text() == "0-1"
    cg.apply(Resources(memory=32 << 20, memory_reservation=16 << 20, memory_swappiness=10,
                       oom_kill_disable=True, cpu_shares=512, cpu_period=50000,
                       cpu_quota=25000, cpuset_cpus="1", pids_limit=7))
    mem = tmp_path / "memory/pybuild/t2"
    assert (mem / "memory.limit_in_bytes").read_text() == str(32 << 20)
    assert (mem / "memory.memsw.limit_in_bytes").read_text() == str(32 << 20)  # no swap
    assert (mem / "memory.soft_limit_in_bytes").read_text() == str(16 << 20)
    assert (mem / "memory.swappiness").read_text() == "10"
    assert (mem / "memory.oom_control").read_text() == "1"
    assert not (mem / "memory.kmem.limit_in_bytes").exists()  # optional, absent: skipped
    cpu = tmp_path / "cpu/pybuild/t2"
    assert [(cpu / f).read_text() for f in ("cpu.shares", "cpu.cfs_period_us",
                                            "cpu.cfs_quota_us")] == ["512", "50000", "25000"]
    assert (tmp_path / "cpuset/pybuild/t2/cpuset.cpus").read_text() == "1"
    assert (tmp_path / "pids/pybuild/t2/pids.max").read_text() == "7"
    (mem / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\n")  # old kernel
    (mem / "memory.failcnt").write_text("3\n")
    assert cg.stats().oom_kills is None
    assert cg.oom_killed(137) and not cg.oom_killed(0)  # failcnt + SIGKILL, no counter


def test_v1_memory_writes_keep_limit_under_memsw() -> None:
    def reader(limit: int, memsw: int) -> cgroup_files.ReadInt:
        values = {"memory.limit_in_bytes": limit, "memory.memsw.limit_in_bytes": memsw}
        return lambda _c, f: values.get(f)

    def order(res: Resources, limit: int, memsw: int, update: bool = False) -> list[str]:
        return [f"{w.file}={w.value}" for w in cgroup_files.writes(
            res, lambda _c: "v1", reader(limit, memsw), update)]

    big = cgroup_files.V1_UNLIMITED
    assert order(Resources(memory=64), big, big) == [
        "memory.limit_in_bytes=64", "memory.memsw.limit_in_bytes=64"]
    # raising past the current memsw: memsw first, else the kernel refuses the limit
    assert order(Resources(memory=128), 64, 64, update=True) == [
        "memory.memsw.limit_in_bytes=128", "memory.limit_in_bytes=128"]
    # a cgroup with swap allowed keeps its memsw when only the limit changes
    assert order(Resources(memory=100), 64, 256, update=True) == ["memory.limit_in_bytes=100"]
    assert order(Resources(memory=64, memory_swap=-1), 32, 32) == [
        "memory.memsw.limit_in_bytes=-1", "memory.limit_in_bytes=64"]


def test_weight_conversions_match_runc() -> None:
    assert [cgroup_files.cpu_weight(s) for s in (2, 1024, 262144)] == [1, 39, 10000]
    assert [cgroup_files.io_weight(w) for w in (10, 500, 1000)] == [1, 4950, 10000]


def test_missing_controller_is_an_error(tmp_path: Path) -> None:
    cg = cgroups.open_cgroup("t3", cgroups.Layout("v1", {"memory": tmp_path / "memory"}))
    cg.create()
    with pytest.raises(RunnerError, match="pids controller"):
        cg.apply(Resources(pids_limit=3))
    with pytest.raises(RunnerError, match="no freezer"):
        cg.freeze()


def test_open_needs_an_existing_cgroup(tmp_path: Path) -> None:
    layout = cgroups.Layout("v1", {"memory": tmp_path / "memory"})
    with pytest.raises(RunnerError, match="pybuild/gone does not exist"):
        cgroups.open("gone", layout)
    cgroups.create("there", Resources(memory=8 << 20), layout)
    assert cgroups.open("there", layout).paths() == (tmp_path / "memory/pybuild/there",)
    with pytest.raises(RunnerError, match="one path component"):
        cgroups.open("../x", layout)


# --- real cgroups on this host ------------------------------------------------------------

@pytest.fixture
def box(tmp_path: Path) -> Box:
    skip_unless("cgroups")
    return make_box(tmp_path)


def _name() -> str:
    return f"{os.getpid()}-test{os.urandom(3).hex()}"


def _limit_files(cg: cgroups.Cgroup) -> dict[str, str]:
    found = {}
    for path in cg.paths():
        for name in ("memory.limit_in_bytes", "memory.max", "pids.max", "cpu.cfs_quota_us",
                     "cpu.max"):
            if (path / name).exists():
                found[name] = (path / name).read_text().strip()
    return found


@pytest.mark.root
def test_limits_are_set_while_running_and_removed_after(box: Box) -> None:
    name, marker = _name(), "4721.5"
    cg = cgroups.open_cgroup(name)
    resources = Resources(memory=64 << 20, cpus=0.5, pids_limit=20)
    spec = box.spec(f"exec sleep {marker}", resources=resources)
    cancel = threading.Event()
    thread = threading.Thread(target=run, args=(spec,),
                              kwargs={"cancel": cancel, "cgroup_name": name})
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not processes_with(f"sleep {marker}") and time.monotonic() < deadline:
            time.sleep(0.02)
        limits = _limit_files(cg)
        if "memory.max" in limits:
            assert limits["memory.max"] == str(64 << 20) and limits["pids.max"] == "20"
            assert limits["cpu.max"] == "50000 100000"
        else:
            assert limits["memory.limit_in_bytes"] == str(64 << 20)
            assert limits["pids.max"] == "20" and limits["cpu.cfs_quota_us"] == "50000"
        (pid,) = processes_with(f"sleep {marker}")
        for path in cg.paths():
            assert str(pid) in (path / "cgroup.procs").read_text().split()
        assert cg.stats().pids_current == 1
    finally:
        cancel.set()
        thread.join(10)
    assert not any(p.exists() for p in cg.paths())


@pytest.mark.root
def test_pids_limit_is_enforced(box: Box) -> None:
    script = "for i in 1 2 3 4 5 6 7 8; do sleep 5 & done 2>&1; echo spawned; kill $(jobs -p)"
    result = run_capture(box.spec(script, resources=Resources(pids_limit=4)))
    assert "can't fork" in result.out + result.err or "Resource" in result.out + result.err


@pytest.mark.root
def test_memory_limit_is_enforced(box: Box) -> None:
    spec = box.spec("dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; echo $?",
                    resources=Resources(memory=16 << 20))
    result = run_capture(spec)
    assert result.out.strip() == "137"  # dd was OOM-killed


@pytest.mark.root
def test_container_sees_its_cgroup_as_root(box: Box) -> None:
    result = run_capture(box.spec("cat /proc/self/cgroup", resources=Resources(pids_limit=50)))
    memory_lines = [line for line in result.out.splitlines() if ":memory:" in line]
    assert all(line.endswith(":/") for line in memory_lines), result.out


@pytest.mark.root
def test_container_reads_its_own_limits(box: Box) -> None:
    script = ("cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null ||"
              " cat /sys/fs/cgroup/memory.max; touch /sys/fs/cgroup/x 2>/dev/null || echo ro")
    result = run_capture(box.spec(script, resources=Resources(memory=48 << 20)))
    assert result.out.split() == [str(48 << 20), "ro"]


# --- docker's limits, enforced on real sandboxes --------------------------------------------

def _wait(cond: Callable[[], object], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@dataclass
class Live:
    """A sandbox running in a thread; ``gate()`` sends one line to its stdin."""

    name: str
    out: list[bytes] = field(default_factory=list)
    result: dict[str, object] = field(default_factory=dict)
    stdin_w: int = -1

    def lines(self) -> list[str]:
        return b"".join(self.out).decode().splitlines()

    def gate(self) -> None:
        os.write(self.stdin_w, b"go\n")

    def cgroup(self) -> cgroups.Cgroup:
        return cgroups.open(self.name)  # by name, as the CLI or the monitor would

    def code(self, timeout: float = 20) -> object:
        assert _wait(lambda: "code" in self.result or "error" in self.result, timeout)
        return self.result.get("code", self.result.get("error"))


@contextlib.contextmanager
def _running(spec: RunSpec) -> Iterator[Live]:
    """Run ``spec``; killed (and its cgroup removed) on the way out, whatever happened."""
    live, cancel = Live(_name()), threading.Event()
    stdin_r, live.stdin_w = os.pipe()

    def target() -> None:
        try:
            live.result["code"] = run(spec, stdout=live.out.append, stdin=stdin_r,
                                      cancel=cancel, cgroup_name=live.name)
        except BaseException as e:  # noqa: B036 - reported by code()
            live.result["error"] = e

    thread = threading.Thread(target=target)
    thread.start()
    try:
        yield live
    finally:
        with contextlib.suppress(Exception):
            cgroups.open(live.name).thaw()
        cancel.set()
        thread.join(30)
        os.close(stdin_r)
        os.close(live.stdin_w)
    assert not any(p.exists() for p in cgroups.open_cgroup(live.name).paths())


def _marker(kind: str) -> str:
    return f"{kind}-{os.urandom(4).hex()}"


def _busy(box: Box, marker: str, resources: Resources) -> RunSpec:
    return box.spec(f"exec sh -c 'while :; do :; done' {marker}", resources=resources)


_TMPFS = (Mount("tmpfs", "tmpfs", "/work"),)
_WRITE_64M = ("dd if=/dev/zero of=/work/x bs=1M count=64 2>/dev/null; c=$?; rm -f /work/x;"
              " echo $c; read go; exit $c")


@pytest.mark.root
@pytest.mark.parametrize(("memory", "code"), [(32 << 20, 137), (128 << 20, 0)])
def test_memory_limit_oom_kills_a_tmpfs_writer(box: Box, memory: int, code: int) -> None:
    # tmpfs pages count toward the memory cgroup, so 64 MB written there needs 64 MB of it
    spec = box.spec(_WRITE_64M, resources=Resources(memory=memory), mounts=_TMPFS)
    with _running(spec) as live:
        assert _wait(live.lines), live.result
        cg = live.cgroup()
        killed, stats = cg.oom_killed(), cg.stats()
        live.gate()
        assert live.code() == code
    assert live.lines() == [str(code)]
    assert killed is (code == 137)
    assert stats.memory_limit == memory and stats.oom_kills == (code == 137)


@pytest.mark.root
@pytest.mark.parametrize("resources", [Resources(cpus=0.5),
                                       Resources(cpu_period=50000, cpu_quota=25000)],
                         ids=["cpus", "period-quota"])
def test_cpu_quota_holds_a_busy_loop_to_half_a_cpu(box: Box, resources: Resources) -> None:
    marker = _marker("busy")
    with _running(_busy(box, marker, resources)) as live:
        assert _wait(lambda: processes_with(marker)), live.result
        cg = live.cgroup()
        start, t0 = cg.stats().cpu_usage_ns or 0, time.monotonic()
        time.sleep(3)
        used = (cg.stats().cpu_usage_ns or 0) - start
        share = used / ((time.monotonic() - t0) * 1e9)
    assert 0.3 < share <= 0.55, share  # busy, but held to half a CPU by the cgroup's counter
    assert live.code() == 137


@pytest.mark.root
def test_cpuset_shows_in_the_containers_allowed_cpus(box: Box) -> None:
    result = run_capture(box.spec("grep Cpus_allowed_list /proc/self/status",
                                  resources=Resources(cpuset_cpus="0")))
    assert result.out.split() == ["Cpus_allowed_list:", "0"], result


@pytest.mark.root
def test_pids_limit_stops_a_fork_bomb(box: Box) -> None:
    marker = f"{1000 + int.from_bytes(os.urandom(2), 'big')}.25"  # a sleep no one else runs
    spec = box.spec(f"b() {{ b | b & }}; b; exec sleep {marker}",
                    resources=Resources(pids_limit=20))
    with _running(spec) as live:
        assert _wait(lambda: processes_with(marker)), live.result
        cg = live.cgroup()
        seen = []
        for _ in range(40):
            seen.append(cg.stats().pids_current or 0)
            time.sleep(0.05)
        refused = cgroup_files.flat_keyed((cg.dir("pids") / "pids.events").read_text())
        assert subprocess.run(["true"], timeout=10).returncode == 0  # the host still forks
    assert max(seen) <= 20 and refused.get("max", 0) > 0, (seen, refused)
    assert live.code() == 137  # ended by the cancel; _running checked the cgroup is gone


_ALL = Resources(memory=48 << 20, memory_reservation=24 << 20, memory_swappiness=10,
                 oom_kill_disable=True, kernel_memory=64 << 20, cpu_shares=512,
                 cpu_period=50000, cpu_quota=25000, cpuset_cpus="0", pids_limit=20,
                 blkio_weight=300)
_FILES = {  # controller -> version -> file -> what _ALL puts there
    "memory": {"v1": {"memory.limit_in_bytes": str(48 << 20), "memory.swappiness": "10",
                      "memory.memsw.limit_in_bytes": str(48 << 20),
                      "memory.soft_limit_in_bytes": str(24 << 20)},
               "v2": {"memory.max": str(48 << 20), "memory.low": str(24 << 20),
                      "memory.swap.max": "0"}},
    "cpu": {"v1": {"cpu.shares": "512", "cpu.cfs_period_us": "50000",
                   "cpu.cfs_quota_us": "25000"},
            "v2": {"cpu.weight": "20", "cpu.max": "25000 50000"}},
    "cpuset": {"v1": {"cpuset.cpus": "0"}, "v2": {"cpuset.cpus": "0"}},
    "pids": {"v1": {"pids.max": "20"}, "v2": {"pids.max": "20"}},
}


def _inside(cg: cgroups.Cgroup, controller: str, file: str) -> str:
    """Where the container sees a file of its own cgroup (mounts.mount_cgroups)."""
    mount = cg.dir(controller).parent.parent  # type: ignore[union-attr]
    top = "/sys/fs/cgroup" if mount == Path("/sys/fs/cgroup") else f"/sys/fs/cgroup/{mount.name}"
    return f"{top}/{file}"


@pytest.mark.root
def test_limits_as_the_container_and_the_host_see_them(box: Box) -> None:
    cg = cgroups.open_cgroup("probe")
    expected = {(c, f): v for c, by in _FILES.items() for f, v in by[cg.version(c)].items()}
    paths = [_inside(cg, c, f) for c, f in expected]
    script = "".join(f'echo "$(cat {p} 2>&1)"; ' for p in paths) + "read go"
    with _running(box.spec(script, resources=_ALL)) as live:
        assert _wait(lambda: len(live.lines()) == len(paths)), live.result
        cg = live.cgroup()
        host = {(c, f): (cg.dir(c) / f).read_text().strip() for c, f in expected}
        oom_control = (cg.dir("memory") / "memory.oom_control").read_text()
        live.gate()
        assert live.code() == 0
    assert dict(zip(expected, live.lines(), strict=True)) == expected  # inside, read-only
    assert host == expected
    assert cg.version("memory") != "v1" or "oom_kill_disable 1" in oom_control


@pytest.mark.root
def test_update_changes_a_running_containers_limits(box: Box) -> None:
    cg = cgroups.open_cgroup("probe")
    limit = _inside(cg, "memory", "memory.limit_in_bytes" if cg.version("memory") == "v1"
                    else "memory.max")
    script = f"cat {limit}; read go; cat {limit}; read go"
    with _running(box.spec(script, resources=Resources(memory=64 << 20, pids_limit=20))) as live:
        assert _wait(live.lines), live.result
        cg = live.cgroup()
        before = cg.stats()
        cg.update(Resources(memory=96 << 20, pids_limit=30))
        after = cg.stats()
        live.gate()
        assert _wait(lambda: len(live.lines()) == 2)
        with pytest.raises(RunnerError, match="6 MiB"):
            cg.update(Resources(memory=1 << 20))
        live.gate()
        assert live.code() == 0
    assert live.lines() == [str(64 << 20), str(96 << 20)]
    assert before.memory_limit == 64 << 20 and after.memory_limit == 96 << 20
    assert 0 < before.memory_usage < 64 << 20 and before.pids_current == 1  # type: ignore
    assert before.cpu_usage_ns > 0 and before.oom_kills == 0  # type: ignore[operator]


@pytest.mark.root
def test_freeze_stops_a_busy_loop_and_thaw_resumes_it(box: Box) -> None:
    marker = _marker("frozen")
    with _running(_busy(box, marker, Resources())) as live:
        assert _wait(lambda: processes_with(marker)), live.result
        cg = live.cgroup()
        cg.freeze()
        frozen_at = cg.stats().cpu_usage_ns or 0
        time.sleep(0.5)
        while_frozen = (cg.stats().cpu_usage_ns or 0) - frozen_at
        cg.thaw()
        thawed_at = cg.stats().cpu_usage_ns or 0
        time.sleep(0.5)
        after_thaw = (cg.stats().cpu_usage_ns or 0) - thawed_at
    assert while_frozen < 5_000_000 and after_thaw > 200_000_000, (while_frozen, after_thaw)
