"""cgroups: layout detection, placement and both backends on fake trees (real sandboxes:
test_runner_cgroups_enforced.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pybuild.errors import RunnerError
from pybuild.runner import Resources, cgroup_files, cgroups, probe

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
