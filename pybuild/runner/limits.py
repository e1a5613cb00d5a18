"""docker's resource flags (``-m 32m --cpus 0.5 ...``) as Resources, checked as docker does.

Three steps, as docker's CLI and daemon: parse each flag's text (go-units sizes, --cpus as
a rational number), check the values against each other and against this host
(moby's verifyPlatformContainerResources, with its messages), then docker's default of
memory-swap = twice the memory. Features the host lacks are dropped with docker's warning
(returned, never printed: the library does not print). Unlike docker, a value out of range
is an error even where the host lacks the feature (docker drops it with a warning first).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from pybuild.errors import UsageError
from pybuild.runner import cgroups
from pybuild.runner.seccomp import kernel_version
from pybuild.runner.spec import Resources

MIN_MEMORY = 6 * 1024 * 1024             # moby's linuxMinMemory, "6MB"
_BINARY = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
# Go's strconv.ParseFloat, decimal form (go-units hands it the part before the suffix)
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_KMEM_GONE = (5, 16)                     # kernels from here refuse or ignore kmem limits


@dataclass(frozen=True)
class HostInfo:
    """What this host's cgroups can limit (moby's sysinfo), and its CPUs and memory nodes."""

    ncpu: int
    cpus: str = "0"              # online CPUs, as /sys/devices/system/cpu/online
    mems: str = "0"              # online memory nodes
    memory: bool = True
    swap: bool = True
    swappiness: bool = True
    kernel_memory: bool = False
    oom_kill_disable: bool = True
    cpu_cfs: bool = True
    cpu_shares: bool = True
    cpuset: bool = True
    pids: bool = True
    blkio_weight: bool = False


def _online(path: str, default: str) -> str:
    try:
        return Path(path).read_text().strip() or default
    except OSError:
        return default


def host_info(layout: cgroups.Layout | None = None) -> HostInfo:
    where = cgroups.placement(layout or cgroups.detect())

    def has(controller: str, *v1_files: str) -> bool:
        version, root = where.get(controller, (None, None))
        if version == "v2" or root is None:
            return version == "v2"
        return all((root / f).exists() for f in v1_files)

    def v1_has(controller: str, *files: str) -> bool:
        return where.get(controller, ("",))[0] == "v1" and has(controller, *files)

    v2_swap = where.get("memory", ("",))[0] == "v2" and any(
        where["memory"][1].glob("*/memory.swap.max"))
    weight = v1_has("blkio", "blkio.weight") or v1_has("blkio", "blkio.bfq.weight")
    return HostInfo(
        ncpu=len(os.sched_getaffinity(0)),
        cpus=_online("/sys/devices/system/cpu/online", "0"),
        mems=_online("/sys/devices/system/node/online", "0"),
        memory=has("memory"),
        swap=v1_has("memory", "memory.memsw.limit_in_bytes") or v2_swap,
        swappiness=v1_has("memory", "memory.swappiness"),
        kernel_memory=(v1_has("memory", "memory.kmem.limit_in_bytes")
                       and kernel_version() < _KMEM_GONE),
        oom_kill_disable=v1_has("memory", "memory.oom_control"),
        cpu_cfs=has("cpu", "cpu.cfs_quota_us"),
        cpu_shares=has("cpu", "cpu.shares"),
        cpuset=has("cpuset"),
        pids=has("pids"),
        blkio_weight=weight or where.get("blkio", ("",))[0] == "v2",
    )


# --- the CLI's parsing of one flag ---------------------------------------------------------

def ram_in_bytes(text: str) -> int:
    """go-units' RAMInBytes: "32m", "1.5g", "1 KiB", "512" (bytes); binary units."""
    sep = max(text.rfind(c) for c in "0123456789. ")
    if sep == -1:
        raise ValueError(f"invalid size: '{text}'")
    num, suffix = (text[:sep + 1], text[sep + 1:]) if text[sep] != " " else \
        (text[:sep], text[sep + 1:])
    if not _FLOAT.fullmatch(num):
        raise ValueError(f'strconv.ParseFloat: parsing "{num}": invalid syntax')
    size = float(num)
    if size < 0:
        raise ValueError(f"invalid size: '{text}'")
    low = suffix.lower()
    if low and low != "b":
        if len(low) > 3 or low[0] not in _BINARY or low[1:] not in ("", "b", "ib"):
            raise ValueError(f"invalid suffix: '{low}'")
        size *= _BINARY[low[0]]
    elif len(suffix) > 1:
        raise ValueError(f"invalid suffix: '{low}'")
    if size >= 2**63:
        raise ValueError(f"invalid size: '{text}'")
    return int(size)


def parse_cpus(text: str) -> int:
    """docker's --cpus as nano-CPUs: a decimal or a fraction ("0.5", "3/2")."""
    from fractions import Fraction  # here: it loads decimal, which a run without --cpus skips

    try:
        if text != text.strip():
            raise ValueError(text)
        value = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"failed to parse {text} as a rational number") from None
    nano = value * 10**9
    if nano.denominator != 1:
        raise ValueError("value is too precise")
    return int(nano)


def _flag(name: str, value: object, parse: Callable[[str], int]) -> int:
    """One flag's value as the CLI parses it; ints pass through."""
    if isinstance(value, bool):
        value = str(value)
    if isinstance(value, int):
        return value
    try:
        return parse(str(value))
    except ValueError as e:
        raise UsageError(f'invalid argument "{value}" for "--{name}" flag: {e}') from None


def _int(text: str) -> int:
    if not re.fullmatch(r"[+-]?\d+", text):
        raise ValueError(f'strconv.ParseInt: parsing "{text}": invalid syntax')
    return int(text)


def _swap(text: str) -> int:
    return -1 if text == "-1" else ram_in_bytes(text)


def _size(name: str, value: object) -> int:
    return _flag(name, value, _swap if name == "memory-swap" else ram_in_bytes)


# --- docker's checks -------------------------------------------------------------------

def _bad(flag: str, message: str) -> UsageError:
    return UsageError(f"--{flag}: {message}")


def _cpu_list(value: str, flag: str, what: str) -> set[int]:
    """moby's parseUintList ("0-2,4"), capped at 8192 (CVE-2018-20699)."""
    out: set[int] = set()
    for part in value.split(","):
        low, dash, high = part.partition("-")
        if not low.isdigit() or (dash and not high.isdigit()) or (dash and int(high) < int(low)):
            raise _bad(flag, f"Invalid value {value} for {what}: invalid format: {value}")
        top = int(high) if dash else int(low)
        if top > 8192:
            raise _bad(flag, f"Invalid value {value} for {what}: value of out range, maximum is"
                             " 8192")
        out.update(range(int(low), top + 1))
    return out


def _check_cpuset(value: str | None, online: str, flag: str, what: str, noun: str) -> None:
    if value is None:
        return
    if not _cpu_list(value, flag, what) <= _cpu_list(online, flag, what):
        raise _bad(flag, f"Requested {noun} are not available - requested {value},"
                         f" available: {online}")


def _memory(r: Resources, host: HostInfo, update: bool, warn: list[str]) -> Resources:
    if r.memory is not None and r.memory < MIN_MEMORY:
        raise _bad("memory", "Minimum memory limit allowed is 6MB")
    if r.memory is not None and not host.memory:
        warn.append("Your kernel does not support memory limit capabilities or the cgroup is"
                    " not mounted. Limitation discarded.")
        r = replace(r, memory=None, memory_swap=-1)
    if r.memory is not None and r.memory_swap != -1 and not host.swap:
        warn.append("Your kernel does not support swap limit capabilities or the cgroup is not"
                    " mounted. Memory limited without swap.")
        r = replace(r, memory_swap=-1)
    swap = r.memory_swap
    if r.memory is not None and swap not in (None, -1) and swap < r.memory:
        raise _bad("memory-swap", "Minimum memoryswap limit should be larger than memory"
                                  " limit, see usage")
    if r.memory is None and swap not in (None, -1) and not update:
        raise _bad("memory-swap", "You should always set the Memory limit when using"
                                  " Memoryswap limit, see usage")
    if r.memory_swappiness is not None and not 0 <= r.memory_swappiness <= 100:
        raise _bad("memory-swappiness", f"Invalid value: {r.memory_swappiness}, valid memory"
                                        " swappiness range is 0-100")
    if r.memory_swappiness is not None and not host.swappiness:
        warn.append("Your kernel does not support memory swappiness capabilities or the cgroup"
                    " is not mounted. Memory swappiness discarded.")
        r = replace(r, memory_swappiness=None)
    res = r.memory_reservation
    if res is not None and not host.memory:
        warn.append("Your kernel does not support memory soft limit capabilities or the cgroup"
                    " is not mounted. Limitation discarded.")
        r, res = replace(r, memory_reservation=None), None
    if res is not None and res < MIN_MEMORY:
        raise _bad("memory-reservation", "Minimum memory reservation allowed is 6MB")
    if r.memory is not None and res is not None and r.memory < res:
        raise _bad("memory-reservation", "Minimum memory limit can not be less than memory"
                                         " reservation limit, see usage")
    return _kernel_and_oom(r, host, warn)


def _kernel_and_oom(r: Resources, host: HostInfo, warn: list[str]) -> Resources:
    if r.kernel_memory is not None and r.kernel_memory < MIN_MEMORY:
        raise _bad("kernel-memory", "Minimum kernel memory limit allowed is 6MB")
    if r.kernel_memory is not None and not host.kernel_memory:
        warn.append("Your kernel does not support kernel memory limit capabilities or the"
                    " cgroup is not mounted. Limitation discarded.")
        r = replace(r, kernel_memory=None)
    if r.oom_kill_disable is not None and not host.oom_kill_disable:
        if r.oom_kill_disable:  # no point warning that an OOM killer left on stays on
            warn.append("Your kernel does not support OomKillDisable. OomKillDisable"
                        " discarded.")
        r = replace(r, oom_kill_disable=None)
    if r.oom_kill_disable and r.memory is None:
        warn.append("OOM killer is disabled for the container, but no memory limit is set,"
                    " this can result in the system running out of resources.")
    if r.pids_limit is not None and not host.pids:
        if r.pids_limit > 0:
            warn.append("Your kernel does not support PIDs limit capabilities or the cgroup is"
                        " not mounted. PIDs limit discarded.")
        r = replace(r, pids_limit=None)
    return r


def _cpu(r: Resources, nano: int, host: HostInfo, warn: list[str]) -> Resources:
    if nano and r.cpu_period is not None:
        raise _bad("cpus", "Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if nano and r.cpu_quota is not None and r.cpu_quota > 0:
        raise _bad("cpus", "Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    if nano and not host.cpu_cfs:
        raise _bad("cpus", "NanoCPUs can not be set, as your kernel does not support CPU CFS"
                           " scheduler or the cgroup is not mounted")
    if nano < 0 or nano > host.ncpu * 10**9:
        raise _bad("cpus", f"range of CPUs is from 0.01 to {host.ncpu}.00, as there are only"
                           f" {host.ncpu} CPUs available")
    if r.cpu_shares is not None and not host.cpu_shares:
        warn.append("Your kernel does not support CPU shares or the cgroup is not mounted."
                    " Shares discarded.")
        r = replace(r, cpu_shares=None)
    if (r.cpu_period is not None or r.cpu_quota is not None) and not host.cpu_cfs:
        warn.append("Your kernel does not support CPU CFS scheduler. CPU period/quota"
                    " discarded.")
        r = replace(r, cpu_period=None, cpu_quota=None)
    if r.cpu_period is not None and not 1000 <= r.cpu_period <= 1_000_000:
        raise _bad("cpu-period", "CPU cfs period can not be less than 1ms (i.e. 1000) or larger"
                                 " than 1s (i.e. 1000000)")
    if r.cpu_quota is not None and 0 < r.cpu_quota < 1000:
        raise _bad("cpu-quota", "CPU cfs quota can not be less than 1ms (i.e. 1000)")
    if (r.cpuset_cpus or r.cpuset_mems) and not host.cpuset:
        warn.append("Your kernel does not support cpuset or the cgroup is not mounted. Cpuset"
                    " discarded.")
        return replace(r, cpuset_cpus=None, cpuset_mems=None)
    _check_cpuset(r.cpuset_cpus, host.cpus, "cpuset-cpus", "cpuset cpus", "CPUs")
    _check_cpuset(r.cpuset_mems, host.mems, "cpuset-mems", "cpuset mems", "memory nodes")
    return replace(r, cpus=nano / 10**9 if nano else None)


def _blkio(r: Resources, host: HostInfo, warn: list[str]) -> Resources:
    if r.blkio_weight is not None and not 10 <= r.blkio_weight <= 1000:
        raise _bad("blkio-weight", "Range of blkio weight is from 10 to 1000")
    if r.blkio_weight is not None and not host.blkio_weight:
        warn.append("Your kernel does not support Block I/O weight or the cgroup is not"
                    " mounted. Weight discarded.")
        r = replace(r, blkio_weight=None)
    return r


def _set(value: int) -> int | None:
    return value or None  # docker's 0: not set


def parse_limits(*, memory: str | int | None = None, memory_swap: str | int | None = None,
                 memory_reservation: str | int | None = None,
                 memory_swappiness: str | int | None = None,
                 kernel_memory: str | int | None = None, oom_kill_disable: bool | None = None,
                 cpus: str | float | None = None, cpu_shares: str | int | None = None,
                 cpu_period: str | int | None = None, cpu_quota: str | int | None = None,
                 cpuset_cpus: str | None = None, cpuset_mems: str | None = None,
                 pids_limit: str | int | None = None, blkio_weight: str | int | None = None,
                 host: HostInfo | None = None,
                 update: bool = False) -> tuple[Resources, tuple[str, ...]]:
    """docker run's (or, with ``update``, docker update's) limit flags as Resources, plus
    the warnings docker would print. Raises UsageError naming the flag for a bad value."""
    host = host or host_info()

    def num(name: str, value: object) -> int | None:
        return None if value is None else _flag(name, value, _int)

    def size(name: str, value: object) -> int | None:
        return None if value is None else _set(_size(name, value))

    swappiness = num("memory-swappiness", memory_swappiness)
    pids, quota, shares = (num("pids-limit", pids_limit), num("cpu-quota", cpu_quota),
                           num("cpu-shares", cpu_shares))
    if shares is not None and shares < 0:
        raise _bad("cpu-shares", f"invalid value {shares} (a relative weight, 2 or more)")
    nano = 0 if cpus is None else _flag("cpus", str(cpus), parse_cpus)
    r = Resources(
        memory=size("memory", memory), memory_swap=size("memory-swap", memory_swap),
        memory_reservation=size("memory-reservation", memory_reservation),
        memory_swappiness=None if swappiness == -1 else swappiness,  # docker's -1: unset
        kernel_memory=size("kernel-memory", kernel_memory), oom_kill_disable=oom_kill_disable,
        cpu_shares=None if not shares else max(shares, 2),  # the kernel's minimum is 2
        cpu_period=_set(num("cpu-period", cpu_period) or 0),
        cpu_quota=None if not quota else max(quota, -1),
        cpuset_cpus=cpuset_cpus or None, cpuset_mems=cpuset_mems or None,
        pids_limit=None if pids is None else (pids if pids > 0 else -1),  # <= 0: unlimited
        blkio_weight=_set(num("blkio-weight", blkio_weight) or 0))
    warnings: list[str] = []
    r = _memory(r, host, update, warnings)
    r = _cpu(r, nano, host, warnings)
    r = _blkio(r, host, warnings)
    if not update and r.memory is not None and r.memory_swap is None:
        r = replace(r, memory_swap=2 * r.memory)  # docker: swap defaults to twice the memory
    return r, tuple(warnings)
