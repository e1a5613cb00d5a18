"""docker top and docker stats: what the container's cgroup and the host's /proc say.

``top`` lists the processes in the container's cgroup with ps -ef's columns, read from the
host's /proc (so PIDs are the host's, as docker shows them); other ps options run the host's
ps and keep its rows for those PIDs, as dockerd does. ``sample`` is one reading of the
cgroup in the shape of docker's stats API; CPU % needs two (``cpu_percent``).
"""

from __future__ import annotations

import datetime
import os
import pwd
import subprocess
import time
from typing import Any

from pybuild.containers.model import ContainerConfig
from pybuild.errors import ContainerError, RunnerError
from pybuild.runner.cgroup_files import flat_keyed

_TICKS = os.sysconf("SC_CLK_TCK")
_TITLES = ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]


def pids(config: ContainerConfig) -> list[int]:
    from pybuild.containers.ops import cgroup_of

    found: set[int] = set()
    for path in cgroup_of(config).paths():
        try:
            found.update(int(p) for p in (path / "cgroup.procs").read_text().split())
        except OSError:
            continue
    return sorted(found)


def top(config: ContainerConfig, running: bool, ps_args: str = "") -> dict[str, Any]:
    """docker-py's shape: {"Titles": [...], "Processes": [[...], ...]}."""
    if not running:
        raise ContainerError(f"Container {config.id} is not running")
    wanted = pids(config)
    if ps_args and ps_args != "-ef":
        return _host_ps(ps_args.split(), wanted)
    rows = [row for pid in wanted if (row := _ps_row(pid)) is not None]
    return {"Titles": list(_TITLES), "Processes": rows}


def _host_ps(args: list[str], wanted: list[int]) -> dict[str, Any]:
    try:
        res = subprocess.run(["ps", *args], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise ContainerError("ps is not installed on the host") from None
    if res.returncode != 0:
        raise ContainerError(f"Error running ps: {res.stderr.strip() or res.returncode}")
    lines = res.stdout.splitlines()
    titles = lines[0].split() if lines else []
    if "PID" not in titles:
        raise ContainerError(f"Couldn't find PID field in ps output: {' '.join(titles)}")
    col = titles.index("PID")
    rows = []
    for line in lines[1:]:
        fields = line.split(None, len(titles) - 1)
        if len(fields) > col and fields[col].isdigit() and int(fields[col]) in wanted:
            rows.append(fields)
    return {"Titles": titles, "Processes": rows}


def _ps_row(pid: int) -> list[str] | None:
    try:
        status = flat_status(open(f"/proc/{pid}/status").read())
        stat_line = open(f"/proc/{pid}/stat").read()
        cmdline = open(f"/proc/{pid}/cmdline", "rb").read()
    except OSError:
        return None  # gone meanwhile
    # the command name may hold spaces and parentheses: the fields start after the last ")"
    comm = stat_line[stat_line.index("(") + 1:stat_line.rindex(")")]
    fields = stat_line[stat_line.rindex(")") + 2:].split()
    tty_nr, utime, stime, start = int(fields[4]), int(fields[11]), int(fields[12]), int(fields[19])
    uid = int(status["Uid"].split()[0])
    started = _boot_time() + start / _TICKS
    cpu = (utime + stime) / _TICKS
    elapsed = max(time.time() - started, 1e-9)
    cmd = b" ".join(cmdline.rstrip(b"\0").split(b"\0")).decode(errors="replace")
    return [_user(uid), str(pid), status["PPid"], str(int(cpu * 100 / elapsed)),
            _stime(started), _tty(tty_nr), _cputime(cpu), cmd or f"[{comm}]"]


def flat_status(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def _boot_time() -> float:
    for line in open("/proc/stat"):
        if line.startswith("btime "):
            return float(line.split()[1])
    return 0.0


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _stime(started: float) -> str:
    when = datetime.datetime.fromtimestamp(started)
    now = datetime.datetime.now()
    if when.date() == now.date():
        return when.strftime("%H:%M")
    return when.strftime("%b%d") if when.year == now.year else when.strftime("%Y")


def _tty(tty_nr: int) -> str:
    if tty_nr == 0:
        return "?"
    major, minor = os.major(tty_nr), os.minor(tty_nr)
    if 136 <= major <= 143:
        return f"pts/{(major - 136) * 256 + minor}"
    return f"tty{minor}" if major == 4 else f"{major}:{minor}"


def _cputime(seconds: float) -> str:
    total = int(seconds)
    days, rest = divmod(total, 86400)
    text = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}-{text}" if days else text


# stats ------------------------------------------------------------------------------------
def system_cpu_ns() -> int:
    """All CPU time of the host (the first line of /proc/stat), as docker's stats takes it."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:8]  # user nice system idle iowait irq softirq
    return sum(int(v) for v in fields) * 1_000_000_000 // _TICKS


def online_cpus() -> int:
    return len(os.sched_getaffinity(0)) or os.cpu_count() or 1


def _host_memory() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def sample(config: ContainerConfig, running: bool) -> dict[str, Any]:
    """One reading in docker's stats shape (cpu_stats, memory_stats, pids_stats,
    blkio_stats); zeros for a container that does not run."""
    from pybuild.containers.ops import cgroup_of

    usage = mem = mem_limit = pids_now = None
    mem_stat: dict[str, int] = {}
    io = (0, 0)
    if running:
        try:
            cgroup = cgroup_of(config)
            s = cgroup.stats()
            usage, mem, mem_limit, pids_now = (s.cpu_usage_ns, s.memory_usage, s.memory_limit,
                                               s.pids_current)
            mem_stat = _memory_stat(cgroup)
            io = _block_io(cgroup)
        except (RunnerError, OSError):
            pass
    return {
        "read": datetime.datetime.now(datetime.UTC).isoformat(),
        "id": config.id, "name": "/" + config.name,
        "cpu_stats": {"cpu_usage": {"total_usage": usage or 0},
                      "system_cpu_usage": system_cpu_ns(), "online_cpus": online_cpus()},
        "memory_stats": {"usage": mem or 0, "limit": mem_limit or _host_memory(),
                         "stats": mem_stat} if running else {},
        "pids_stats": {"current": pids_now or 0} if running else {},
        "blkio_stats": {"io_service_bytes_recursive": [
            {"op": "read", "value": io[0]}, {"op": "write", "value": io[1]}]},
        "networks": {},
    }


def _memory_stat(cgroup) -> dict[str, int]:
    d = cgroup.dir("memory")
    if d is None:
        return {}
    return flat_keyed((d / "memory.stat").read_text())


def _block_io(cgroup) -> tuple[int, int]:
    d = cgroup.dir("blkio")
    if d is None:
        return 0, 0
    read = write = 0
    if cgroup.version("blkio") == "v1":
        for name in ("blkio.throttle.io_service_bytes_recursive",
                     "blkio.throttle.io_service_bytes"):
            if (d / name).exists():
                for line in (d / name).read_text().splitlines():
                    parts = line.split()
                    if len(parts) == 3 and parts[1] in ("Read", "Write"):
                        read += int(parts[2]) if parts[1] == "Read" else 0
                        write += int(parts[2]) if parts[1] == "Write" else 0
                break
        return read, write
    for line in (d / "io.stat").read_text().splitlines():
        for item in line.split()[1:]:
            key, _, value = item.partition("=")
            read += int(value) if key == "rbytes" else 0
            write += int(value) if key == "wbytes" else 0
    return read, write


def cpu_percent(pre: dict[str, Any], now: dict[str, Any]) -> float:
    """docker's: the container's share of all CPU time between two samples, times CPUs."""
    cpu = now["cpu_stats"]["cpu_usage"]["total_usage"] - pre["cpu_stats"]["cpu_usage"][
        "total_usage"]
    system = now["cpu_stats"]["system_cpu_usage"] - pre["cpu_stats"]["system_cpu_usage"]
    if cpu <= 0 or system <= 0:
        return 0.0
    return cpu / system * now["cpu_stats"]["online_cpus"] * 100.0


def memory_used(stats: dict[str, Any]) -> int:
    """docker's CLI figure: usage without the inactive page cache (v1 total_inactive_file,
    v2 inactive_file)."""
    mem = stats.get("memory_stats") or {}
    extra = mem.get("stats") or {}
    cache = extra.get("total_inactive_file", extra.get("inactive_file", 0))
    usage = mem.get("usage", 0)
    return usage - cache if cache < usage else usage
