"""docker's limits enforced on real sandboxes of the busybox image, read back through the
live cgroup operations (open, stats, oom_killed, update, freeze/thaw), from the host and, where
the container can see its cgroup files (mounted read-only inside), from inside too."""

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
from pybuild.runner import Mount, Resources, RunSpec, cgroup_files, cgroups, run


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
