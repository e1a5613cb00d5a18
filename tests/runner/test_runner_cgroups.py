"""cgroups: layout detection and both backends on fake trees; real limits on this host."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from support.runner import Box, make_box, processes_with, run_capture, skip_unless

from pybuild.errors import RunnerError
from pybuild.runner import Resources, cgroups, probe, run

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


def test_v2_backend_on_a_fake_tree(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (tmp_path / "pybuild").mkdir()
    (tmp_path / "pybuild/cgroup.controllers").write_text("cpu memory pids\n")
    layout = cgroups.Layout("v2", {}, tmp_path)
    cg = cgroups.open_cgroup("t1", layout)
    cg.create()
    cg.apply(Resources(memory=64 << 20, cpus=1.5, pids_limit=30))
    leaf = tmp_path / "pybuild/t1"
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+memory +cpu +pids"
    assert (leaf / "memory.max").read_text() == str(64 << 20)
    assert (leaf / "cpu.max").read_text() == "150000 100000"
    assert (leaf / "pids.max").read_text() == "30"
    (leaf / "memory.current").write_text("4096\n")
    (leaf / "cpu.stat").write_text("usage_usec 12\nuser_usec 10\n")
    stats = cg.stats()
    assert (stats.memory_current, stats.cpu_usage_ns, stats.pids_current) == (4096, 12000, None)


def test_v1_backend_on_a_fake_tree(tmp_path: Path) -> None:
    mounts = {c: tmp_path / c for c in ("memory", "cpu", "pids")}
    mounts["cpuacct"] = mounts["cpu"]
    cg = cgroups.open_cgroup("t2", cgroups.Layout("v1", mounts))
    cg.create()
    assert len(cg.paths()) == 3  # cpu and cpuacct share one directory
    cg.apply(Resources(memory=32 << 20, cpus=0.5, pids_limit=7))
    assert (tmp_path / "memory/pybuild/t2/memory.limit_in_bytes").read_text() == str(32 << 20)
    assert (tmp_path / "cpu/pybuild/t2/cpu.cfs_quota_us").read_text() == "50000"
    assert (tmp_path / "pids/pybuild/t2/pids.max").read_text() == "7"


def test_v1_missing_controller_is_an_error(tmp_path: Path) -> None:
    cg = cgroups.open_cgroup("t3", cgroups.Layout("v1", {"memory": tmp_path / "memory"}))
    cg.create()
    with pytest.raises(RunnerError, match="pids controller"):
        cg.apply(Resources(pids_limit=3))


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
