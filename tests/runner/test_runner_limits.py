"""parse_limits: docker's flag parsing, checks, defaults and warnings, on fixed hosts."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pybuild.errors import UsageError
from pybuild.runner import Resources, cgroups
from pybuild.runner.limits import HostInfo, host_info, parse_cpus, parse_limits, ram_in_bytes

V1_HOST = HostInfo(ncpu=2, cpus="0-1", mems="0", kernel_memory=True, blkio_weight=True)
# what a cgroup v2 host offers: no swappiness, kernel memory or OOM-killer switch
V2_HOST = HostInfo(ncpu=2, cpus="0-1", mems="0", swappiness=False, oom_kill_disable=False,
                   blkio_weight=True)
BARE_HOST = HostInfo(ncpu=4, cpus="0-3", mems="0", kernel_memory=False, blkio_weight=False)
MB = 1 << 20


def limits(host: HostInfo = V1_HOST, **flags: object) -> tuple[Resources, tuple[str, ...]]:
    return parse_limits(host=host, **flags)  # type: ignore[arg-type]


def test_the_briefs_flags_as_the_cli_gives_them() -> None:
    res, warnings = limits(memory="32m", memory_swap="-1", cpu_shares=512, pids_limit=20,
                           blkio_weight=300, kernel_memory="64m", oom_kill_disable=True,
                           memory_reservation="16m", memory_swappiness=10, cpuset_cpus="0",
                           cpuset_mems="0")
    assert res == Resources(memory=32 * MB, memory_swap=-1, memory_reservation=16 * MB,
                            memory_swappiness=10, kernel_memory=64 * MB,
                            oom_kill_disable=True, cpu_shares=512, cpuset_cpus="0",
                            cpuset_mems="0", pids_limit=20, blkio_weight=300)
    assert warnings == ()
    assert limits(cpus="0.5")[0] == Resources(cpus=0.5)
    assert limits(cpus="3/2")[0].cpus == 1.5
    assert limits(cpu_period=50000, cpu_quota=25000)[0] == Resources(cpu_period=50000,
                                                                     cpu_quota=25000)


def test_docker_defaults() -> None:
    assert limits(memory="64m")[0].memory_swap == 128 * MB  # twice the memory
    assert limits(memory="64m", update=True)[0].memory_swap is None  # an update keeps it
    assert limits(memory="0", cpus="0", cpu_shares=0, blkio_weight=0)[0] == Resources()
    assert limits(memory_swappiness=-1)[0].memory_swappiness is None  # the CLI's "unset"
    assert limits(pids_limit=0)[0].pids_limit == -1 and limits(pids_limit="-1")[0].pids_limit == -1
    assert limits(cpu_shares=1)[0].cpu_shares == 2  # the kernel's floor


@pytest.mark.parametrize(("flags", "message"), [
    ({"memory": "1k"}, "--memory: Minimum memory limit allowed is 6MB"),
    ({"memory": "32m", "memory_swap": "16m"},
     "--memory-swap: Minimum memoryswap limit should be larger than memory limit, see usage"),
    ({"memory_swap": "64m"}, "--memory-swap: You should always set the Memory limit when"
                             " using Memoryswap limit, see usage"),
    ({"memory_reservation": "1m"},
     "--memory-reservation: Minimum memory reservation allowed is 6MB"),
    ({"memory": "32m", "memory_reservation": "64m"}, "--memory-reservation: Minimum memory"
     " limit can not be less than memory reservation limit, see usage"),
    ({"memory_swappiness": 101}, "--memory-swappiness: Invalid value: 101, valid memory"
                                 " swappiness range is 0-100"),
    ({"kernel_memory": "1m"}, "--kernel-memory: Minimum kernel memory limit allowed is 6MB"),
    ({"cpus": "0.5", "cpu_period": 50000},
     "--cpus: Conflicting options: Nano CPUs and CPU Period cannot both be set"),
    ({"cpus": "0.5", "cpu_quota": 25000},
     "--cpus: Conflicting options: Nano CPUs and CPU Quota cannot both be set"),
    ({"cpus": "3"}, "--cpus: range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs"
                    " available"),
    ({"cpus": "-1"}, "--cpus: range of CPUs is from 0.01 to 2.00"),
    ({"cpu_period": 999}, "--cpu-period: CPU cfs period can not be less than 1ms (i.e. 1000)"
                          " or larger than 1s (i.e. 1000000)"),
    ({"cpu_period": 1000001}, "--cpu-period: CPU cfs period can not be less than 1ms"),
    ({"cpu_quota": 999}, "--cpu-quota: CPU cfs quota can not be less than 1ms (i.e. 1000)"),
    ({"cpuset_cpus": "2"},
     "--cpuset-cpus: Requested CPUs are not available - requested 2, available: 0-1"),
    ({"cpuset_cpus": "1-0"},
     "--cpuset-cpus: Invalid value 1-0 for cpuset cpus: invalid format: 1-0"),
    ({"cpuset_cpus": "0-9999"}, "--cpuset-cpus: Invalid value 0-9999 for cpuset cpus: value"
                                " of out range, maximum is 8192"),
    ({"cpuset_mems": "1"},
     "--cpuset-mems: Requested memory nodes are not available - requested 1, available: 0"),
    ({"cpuset_mems": "a"}, "--cpuset-mems: Invalid value a for cpuset mems: invalid format: a"),
    ({"blkio_weight": 5}, "--blkio-weight: Range of blkio weight is from 10 to 1000"),
    ({"blkio_weight": 1001}, "--blkio-weight: Range of blkio weight is from 10 to 1000"),
    ({"memory": "32x"}, 'invalid argument "32x" for "--memory" flag: invalid suffix: \'x\''),
    ({"memory": "m"}, 'invalid argument "m" for "--memory" flag: invalid size: \'m\''),
    ({"memory_swap": "-2"}, 'invalid argument "-2" for "--memory-swap" flag: invalid size'),
    ({"cpus": "half"}, 'invalid argument "half" for "--cpus" flag: failed to parse half as a'
                       ' rational number'),
    ({"cpus": "0.0000000001"}, 'for "--cpus" flag: value is too precise'),
    ({"cpu_period": "5e4"}, 'invalid argument "5e4" for "--cpu-period" flag: strconv.ParseInt:'
                            ' parsing "5e4": invalid syntax'),
    ({"pids_limit": "many"}, 'for "--pids-limit" flag: strconv.ParseInt'),
    ({"cpu_shares": -5}, "--cpu-shares: invalid value -5"),
])
def test_docker_messages(flags: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError) as info:
        limits(**flags)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_a_bad_value_fails_even_where_the_host_lacks_the_feature() -> None:
    for flags in ({"memory_swappiness": 200}, {"blkio_weight": 2}, {"kernel_memory": "1k"}):
        with pytest.raises(UsageError):
            limits(BARE_HOST, **flags)


def test_warnings_where_the_host_lacks_a_feature() -> None:
    res, warnings = limits(V2_HOST, memory="32m", memory_swappiness=10, oom_kill_disable=True)
    assert res == Resources(memory=32 * MB, memory_swap=64 * MB)
    assert warnings == (
        "Your kernel does not support memory swappiness capabilities or the cgroup is not"
        " mounted. Memory swappiness discarded.",
        "Your kernel does not support OomKillDisable. OomKillDisable discarded.")
    res, warnings = limits(BARE_HOST, kernel_memory="64m", blkio_weight=300)
    assert res == Resources()
    assert warnings == (
        "Your kernel does not support kernel memory limit capabilities or the cgroup is not"
        " mounted. Limitation discarded.",
        "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight"
        " discarded.")
    no_swap = HostInfo(ncpu=1, swap=False)
    res, warnings = limits(no_swap, memory="32m")
    assert res.memory_swap == -1 and "Memory limited without swap." in warnings[0]
    # turning the OOM killer off where it cannot be: nothing to warn about
    assert limits(V2_HOST, oom_kill_disable=False) == (Resources(), ())


def test_oom_kill_disable_without_memory_warns() -> None:
    res, warnings = limits(oom_kill_disable=True)
    assert res.oom_kill_disable is True
    assert warnings == ("OOM killer is disabled for the container, but no memory limit is set,"
                        " this can result in the system running out of resources.",)
    assert limits(oom_kill_disable=True, memory="64m")[1] == ()


def test_this_hosts_info_matches_its_cgroups() -> None:
    info = host_info()
    assert info.ncpu == len(os.sched_getaffinity(0))
    where = cgroups.placement(cgroups.detect())
    assert info.memory == ("memory" in where) and info.pids == ("pids" in where)
    assert info.swappiness == (where.get("memory", ("",))[0] == "v1")
    if where.get("memory", ("",))[0] == "v1":
        kmem = (where["memory"][1] / "memory.kmem.limit_in_bytes").exists()
        assert info.kernel_memory <= kmem  # never claimed where the file is missing


# --- the size parser (go-units RAMInBytes) ----------------------------------------------------

UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
SUFFIXES = st.sampled_from(sorted(UNITS)).flatmap(
    lambda u: st.sampled_from([u] if u in ("", "b") else [u, u + "b", u + "ib"]))


@given(st.integers(0, 1 << 20), SUFFIXES, st.booleans(), st.booleans())
def test_sizes_in_every_spelling(n: int, suffix: str, upper: bool, space: bool) -> None:
    text = f"{n}{' ' if space and suffix else ''}{suffix.upper() if upper else suffix}"
    assert ram_in_bytes(text) == n * UNITS[suffix[:1]]
    if n * UNITS[suffix[:1]] >= 6 * MB:
        assert limits(memory=text, update=True)[0].memory == n * UNITS[suffix[:1]]


@given(st.integers(0, 1 << 30), st.integers(1, 999))
def test_fractional_sizes_truncate_to_bytes(n: int, frac: int) -> None:
    assert ram_in_bytes(f"{n}.{frac:03d}k") == int(float(f"{n}.{frac:03d}") * 1024)


@given(st.text(alphabet="0123456789.kmgbiKMGBI -xe+_", max_size=8))
def test_anything_else_is_a_one_line_usage_error(text: str) -> None:
    try:
        value = ram_in_bytes(text)
    except ValueError as e:
        assert "\n" not in str(e)
        with pytest.raises(UsageError, match='for "--memory" flag'):
            limits(memory=text)
    else:
        assert 0 <= value < 2**63


def test_size_edges() -> None:
    assert ram_in_bytes("1k") == 1024 and ram_in_bytes("1KiB") == 1024
    assert ram_in_bytes("1.5g") == 3 << 29 and ram_in_bytes("32 MB") == 32 * MB
    for bad in ("", "k", "1kk", "1kibb", "1x", "1.2.3m", "-1m", "1_0m", "99999999999p"):
        with pytest.raises(ValueError):
            ram_in_bytes(bad)
    assert parse_cpus("0.01") == 10_000_000 and parse_cpus("3/2") == 1_500_000_000
    with pytest.raises(ValueError, match="too precise"):
        parse_cpus("1/3")
