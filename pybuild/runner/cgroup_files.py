"""Which cgroup files carry which limit, for v1 and for v2: pure, no file is touched here.

``writes`` turns Resources into ordered (controller, file, value) writes for the version
each controller lives in; the conversions (shares to cpu.weight, blkio weight to io.weight,
memory+swap to v2's swap-only value) are runc's, so a limit means the same on both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pybuild.runner.spec import Resources

DEFAULT_CPU_PERIOD = 100_000            # docker's period for --cpus
V1_UNLIMITED = 9223372036854771712      # what v1 reads back for "no limit" (PAGE_COUNTER_MAX)

# A controller's version: "v1", "v2" or None (not available on this host).
VersionOf = Callable[[str], str | None]
# Reads an integer from a controller's file of the cgroup being changed (None if absent).
ReadInt = Callable[[str, str], int | None]


@dataclass(frozen=True)
class Write:
    controller: str
    file: str
    value: str
    # Best effort: a missing file or a refusal is skipped, not an error (kernel memory, where
    # the kernel dropped kmem limits; blkio weight, where no weight-aware scheduler runs).
    optional: bool = False


def _v1_limit_and_swap(res: Resources, read: ReadInt, update: bool) -> list[Write]:
    limit, swap = res.memory, res.memory_swap
    current_limit = read("memory", "memory.limit_in_bytes")
    current_swap = read("memory", "memory.memsw.limit_in_bytes")
    if limit is not None and swap is None and (not update or current_swap == current_limit):
        swap = limit  # no swap beyond the limit at creation; an update keeps it so
    memsw = [Write("memory", "memory.memsw.limit_in_bytes", str(swap), optional=True)]
    if limit is None:
        return memsw if swap is not None else []
    mem = [Write("memory", "memory.limit_in_bytes", str(limit))]
    if swap is None:
        return mem
    # The kernel keeps limit <= memsw at every moment: lower (or keep) the limit first while
    # it fits under the current memsw, else raise memsw first.
    if current_swap is None or limit <= current_swap:
        return mem + memsw
    return memsw + mem


def _v1_memory(res: Resources, read: ReadInt, update: bool) -> list[Write]:
    out = _v1_limit_and_swap(res, read, update)
    if res.memory_reservation is not None:
        out.append(Write("memory", "memory.soft_limit_in_bytes", str(res.memory_reservation)))
    if res.memory_swappiness is not None:
        out.append(Write("memory", "memory.swappiness", str(res.memory_swappiness)))
    if res.kernel_memory is not None:
        out.append(Write("memory", "memory.kmem.limit_in_bytes", str(res.kernel_memory),
                         optional=True))
    if res.oom_kill_disable is not None:
        out.append(Write("memory", "memory.oom_control", "1" if res.oom_kill_disable else "0"))
    return out


def _v2_memory(res: Resources, read: ReadInt, update: bool) -> list[Write]:
    out: list[Write] = []
    if res.memory is not None:
        out.append(Write("memory", "memory.max", str(res.memory)))
    swap = res.memory_swap
    if swap is None and res.memory is not None and not update:
        swap = res.memory  # no swap beyond the limit (swap.max is separate: updates keep it)
    if swap is not None:
        # v2's swap.max is swap alone; docker's value is memory + swap (runc's conversion).
        memory = res.memory if res.memory is not None else read("memory", "memory.max") or 0
        value = "max" if swap == -1 else str(max(swap - memory, 0))
        out.append(Write("memory", "memory.swap.max", value, optional=True))
    if res.memory_reservation is not None:
        out.append(Write("memory", "memory.low", str(res.memory_reservation)))
    return out  # swappiness, kernel memory, oom_kill_disable: v2 has no such files


def cpu_weight(shares: int) -> int:
    """v1 cpu.shares (2..262144) as v2 cpu.weight (1..10000), runc's formula."""
    return 1 + ((max(2, min(shares, 262144)) - 2) * 9999) // 262142


def io_weight(blkio_weight: int) -> int:
    """v1 blkio.weight (10..1000) as v2 io.weight (1..10000), runc's formula."""
    return 1 + (blkio_weight - 10) * 9999 // 990


def _quota(res: Resources) -> tuple[int | None, int | None]:
    """(quota, period) in microseconds: ``cpus`` is quota = cpus * period, as docker."""
    period = res.cpu_period
    if res.cpus is not None:
        period = period or DEFAULT_CPU_PERIOD
        return round(res.cpus * period), period
    return res.cpu_quota, period


def _cpu(res: Resources, version: str | None) -> list[Write]:
    out: list[Write] = []
    quota, period = _quota(res)
    if version == "v1":
        if res.cpu_shares is not None:
            out.append(Write("cpu", "cpu.shares", str(res.cpu_shares)))
        if period is not None:
            out.append(Write("cpu", "cpu.cfs_period_us", str(period)))
        if quota is not None:
            out.append(Write("cpu", "cpu.cfs_quota_us", str(quota)))
    elif version == "v2":
        if res.cpu_shares is not None:
            out.append(Write("cpu", "cpu.weight", str(cpu_weight(res.cpu_shares))))
        if quota is not None or period is not None:
            value = "max" if quota is None or quota == -1 else str(quota)
            out.append(Write("cpu", "cpu.max", f"{value} {period}" if period else value))
    return out


def writes(res: Resources, version_of: VersionOf, read: ReadInt,
           update: bool = False) -> list[Write]:
    """The writes that apply ``res``, in an order the kernel accepts."""
    out: list[Write] = []
    memory = version_of("memory")
    if memory == "v1":
        out += _v1_memory(res, read, update)
    elif memory == "v2":
        out += _v2_memory(res, read, update)
    out += _cpu(res, version_of("cpu"))
    if res.cpuset_cpus is not None:
        out.append(Write("cpuset", "cpuset.cpus", res.cpuset_cpus))
    if res.cpuset_mems is not None:
        out.append(Write("cpuset", "cpuset.mems", res.cpuset_mems))
    if res.pids_limit is not None:
        out.append(Write("pids", "pids.max", "max" if res.pids_limit == -1 else
                         str(res.pids_limit)))
    if res.blkio_weight is not None:
        out += _blkio(res.blkio_weight, version_of("blkio"))
    return out


def _blkio(weight: int, version: str | None) -> list[Write]:
    # BFQ takes docker's 10..1000 scale as is; the other files exist only with CFQ (v1) or
    # an io.weight-aware policy (v2). Whichever exists is written; none is not an error.
    if version == "v1":
        return [Write("blkio", "blkio.weight", str(weight), optional=True),
                Write("blkio", "blkio.bfq.weight", str(weight), optional=True)]
    if version == "v2":
        return [Write("blkio", "io.bfq.weight", str(weight), optional=True),
                Write("blkio", "io.weight", f"default {io_weight(weight)}", optional=True)]
    return []


def needed_controllers(res: Resources) -> set[str]:
    """Controllers without which ``res`` cannot be applied (a missing one is an error)."""
    need = set()
    if res.memory is not None or res.memory_reservation is not None:
        need.add("memory")
    if any(v is not None for v in (res.cpus, res.cpu_shares, res.cpu_period, res.cpu_quota)):
        need.add("cpu")
    if res.cpuset_cpus is not None or res.cpuset_mems is not None:
        need.add("cpuset")
    if res.pids_limit is not None:
        need.add("pids")
    return need


def flat_keyed(text: str) -> dict[str, int]:
    """``key value`` lines (memory.events, cpu.stat, memory.oom_control) as a dict."""
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            out[key] = int(value)
    return out


def limit_value(text: str) -> int | None:
    """A limit file's content as bytes; None for no limit (v2 "max", v1's huge number)."""
    text = text.strip()
    if not text.isdigit():
        return None
    value = int(text)
    return None if value >= V1_UNLIMITED else value
