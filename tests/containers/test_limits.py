"""docker's limit flags on ``pybuild run``: what the container gets, measured from its cgroup
on the host, and seen from inside."""

from __future__ import annotations

import json
import time

from pybuild.containers.monitor import cgroup_name
from pybuild.runner import cgroups


def _cgroup(cli, name: str):
    cid = json.loads(cli("inspect", name, check=True).stdout)[0]["Id"]
    return cgroups.open(cgroup_name(cid))


def _cpu_share(cli, name: str, seconds: float = 3.0) -> float:
    group = _cgroup(cli, name)
    start, t0 = group.stats().cpu_usage_ns, time.monotonic()
    time.sleep(seconds)
    used, elapsed = group.stats().cpu_usage_ns - start, time.monotonic() - t0
    return used / (elapsed * 1e9)


def test_cpus_half_and_period_quota_hold_a_busy_loop_to_half_a_cpu(cli, image):
    busy = ("sh", "-c", "while :; do :; done")
    try:
        cli("run", "-d", "--name", "half", "--cpus", "0.5", image, *busy, check=True)
        cli("run", "-d", "--name", "quota", "--cpu-period=50000", "--cpu-quota=25000",
            image, *busy, check=True)
        for name in ("half", "quota"):
            share = _cpu_share(cli, name)
            assert 0.3 < share <= 0.55, f"{name}: {share:.2f} of a CPU"
    finally:
        cli("rm", "-f", "half", "quota")


def test_cpuset_shows_inside(cli, image):
    res = cli("run", "--rm", "--cpuset-cpus", "0", image, "grep", "Cpus_allowed_list",
              "/proc/self/status", check=True)
    assert res.stdout.split() == ["Cpus_allowed_list:", "0"]


def test_pids_limit_stops_a_fork_bomb(cli, image):
    bomb = "bomb() { bomb | bomb & }; bomb; sleep 2; echo survived"
    started = time.monotonic()
    res = cli("run", "--rm", "--pids-limit", "20", image, "sh", "-c", bomb, timeout=60)
    assert time.monotonic() - started < 30
    assert "survived" in res.stdout or res.returncode != 0
    assert cli("run", "--rm", image, "true").returncode == 0  # the host can still fork


def test_memory_limit_is_seen_from_the_host_and_bad_values_fail_first(cli, image):
    try:
        cli("run", "-d", "--name", "capped", "-m", "48m", image, "sleep", "30", check=True)
        assert _cgroup(cli, "capped").stats().memory_limit == 48 << 20
        data = json.loads(cli("inspect", "capped").stdout)[0]
        assert data["HostConfig"]["Memory"] == 48 << 20
    finally:
        cli("rm", "-f", "capped")
    for args, words in ((("-m", "1k"), "Minimum memory limit allowed is 6MB"),
                        (("--cpu-period", "10"), "cpu-period"),
                        (("--cpus", "0.5", "--cpu-period", "50000"), "Conflicting options")):
        res = cli("run", "--rm", *args, image, "true")
        assert res.returncode != 0 and words in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1
    assert cli("ps", "-a", "-q").stdout == ""
