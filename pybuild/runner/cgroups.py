"""Resource limits through cgroups: one interface over v1 and v2.

``detect()`` reads /proc/self/mountinfo and names the layout: ``v2`` (unified only),
``v1``, ``hybrid`` (v1 controllers plus a cgroup2 tree, as systemd's hybrid mode) or
``none``. Limits go wherever the memory/cpu/pids controllers actually live: the v1
hierarchies on v1 and hybrid hosts, the unified tree on v2 hosts.

Each sandbox gets ``pybuild/<id>`` in every hierarchy it uses; the sandbox's first process
joins it before unsharing, so everything it starts is accounted. ``remove()`` is idempotent
and retries briefly, since v1 refuses to remove a cgroup until its last zombie is reaped.
"""

from __future__ import annotations

import errno
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pybuild.errors import RunnerError
from pybuild.runner.spec import Resources

V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids")
V2_CONTROLLERS = ("memory", "cpu", "pids")


@dataclass(frozen=True)
class Layout:
    kind: str                                             # "v1" | "v2" | "hybrid" | "none"
    v1: dict[str, Path] = field(default_factory=dict)     # controller -> mount point
    v2: Path | None = None                                # the cgroup2 mount point
    # every v1 hierarchy: (mount point, its controllers as mount data, e.g. "cpu,cpuacct")
    hierarchies: tuple[tuple[Path, str], ...] = ()


@dataclass(frozen=True)
class Stats:
    memory_current: int | None = None
    memory_peak: int | None = None
    pids_current: int | None = None
    cpu_usage_ns: int | None = None


class Cgroup(Protocol):
    name: str

    def paths(self) -> tuple[Path, ...]: ...
    def apply(self, resources: Resources) -> None: ...
    def add(self, pid: int) -> None: ...
    def stats(self) -> Stats: ...
    def remove(self) -> None: ...


_GENERIC_OPTIONS = {"rw", "ro", "xattr", "noprefix", "clone_children", "cpuset_v2_mode"}


def parse_mountinfo(text: str) -> Layout:
    v1: dict[str, Path] = {}
    v2: Path | None = None
    hierarchies: list[tuple[Path, str]] = []
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        fields, extra = left.split(), right.split()
        if len(fields) < 5 or len(extra) < 3:
            continue
        point = Path(fields[4].replace("\\040", " "))
        if extra[0] == "cgroup2":
            v2 = v2 or point
        elif extra[0] == "cgroup":
            opts = [o for o in extra[2].split(",")
                    if o not in _GENERIC_OPTIONS and not o.startswith("release_agent=")]
            hierarchies.append((point, ",".join(opts)))
            for opt in opts:
                if opt in V1_CONTROLLERS:
                    v1.setdefault(opt, point)
    if v1:
        return Layout("hybrid" if v2 else "v1", v1, v2, tuple(hierarchies))
    return Layout("v2" if v2 else "none", {}, v2)


def detect() -> Layout:
    try:
        return parse_mountinfo(Path("/proc/self/mountinfo").read_text())
    except OSError:
        return Layout("none")


def _write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError as e:
        raise RunnerError(f"cgroup: cannot write {value!r} to {path}: {e.strerror}") from e


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _rmdir(path: Path, attempts: int = 50) -> None:
    for _ in range(attempts):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno != errno.EBUSY:
                raise
            time.sleep(0.01)
    raise RunnerError(f"cgroup {path} is still busy")


class V1Cgroup:
    def __init__(self, mounts: dict[str, Path], name: str):
        self.name = name
        self._dirs = {c: mounts[c] / "pybuild" / name for c in V1_CONTROLLERS if c in mounts}

    def paths(self) -> tuple[Path, ...]:
        return tuple(dict.fromkeys(self._dirs.values()))

    def create(self) -> None:
        for path in self.paths():
            path.mkdir(parents=True, exist_ok=True)

    def apply(self, resources: Resources) -> None:
        need = {"memory": resources.memory, "cpu": resources.cpus, "pids": resources.pids_limit}
        for controller, value in need.items():
            if value is not None and controller not in self._dirs:
                raise RunnerError(f"cgroup v1: the {controller} controller is not mounted")
        if resources.memory is not None:
            mem = self._dirs["memory"]
            _write(mem / "memory.limit_in_bytes", str(resources.memory))
            if (mem / "memory.memsw.limit_in_bytes").exists():  # no swap beyond the limit
                _write(mem / "memory.memsw.limit_in_bytes", str(resources.memory))
        if resources.cpus is not None:
            cpu = self._dirs["cpu"]
            _write(cpu / "cpu.cfs_period_us", str(resources.cpu_period))
            _write(cpu / "cpu.cfs_quota_us", str(int(resources.cpus * resources.cpu_period)))
        if resources.pids_limit is not None:
            _write(self._dirs["pids"] / "pids.max", str(resources.pids_limit))

    def add(self, pid: int) -> None:
        for path in self.paths():
            _write(path / "cgroup.procs", str(pid))

    def stats(self) -> Stats:
        def read(controller: str, file: str) -> int | None:
            d = self._dirs.get(controller)
            return None if d is None else _read_int(d / file)

        return Stats(read("memory", "memory.usage_in_bytes"),
                     read("memory", "memory.max_usage_in_bytes"),
                     read("pids", "pids.current"), read("cpuacct", "cpuacct.usage"))

    def remove(self) -> None:
        for path in self.paths():
            _rmdir(path)


class V2Cgroup:
    def __init__(self, root: Path, name: str):
        self.name = name
        self._root = root
        self._dir = root / "pybuild" / name

    def paths(self) -> tuple[Path, ...]:
        return (self._dir,)

    def create(self) -> None:
        # Controllers must be enabled in every ancestor's subtree_control; pybuild/ itself
        # holds no processes, so v2's "no internal processes" rule is kept.
        self._dir.mkdir(parents=True, exist_ok=True)
        for parent in (self._root, self._root / "pybuild"):
            available = (parent / "cgroup.controllers").read_text().split()
            wanted = [c for c in V2_CONTROLLERS if c in available]
            if wanted:
                _write(parent / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))

    def apply(self, resources: Resources) -> None:
        d = self._dir
        if resources.memory is not None:
            _write(d / "memory.max", str(resources.memory))
            if (d / "memory.swap.max").exists():
                _write(d / "memory.swap.max", "0")
        if resources.cpus is not None:
            quota = int(resources.cpus * resources.cpu_period)
            _write(d / "cpu.max", f"{quota} {resources.cpu_period}")
        if resources.pids_limit is not None:
            _write(d / "pids.max", str(resources.pids_limit))

    def add(self, pid: int) -> None:
        _write(self._dir / "cgroup.procs", str(pid))

    def stats(self) -> Stats:
        usage = None
        try:
            for line in (self._dir / "cpu.stat").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "usage_usec":
                    usage = int(value) * 1000
        except OSError:
            pass
        return Stats(_read_int(self._dir / "memory.current"),
                     _read_int(self._dir / "memory.peak"),
                     _read_int(self._dir / "pids.current"), usage)

    def remove(self) -> None:
        _rmdir(self._dir)


def open_cgroup(name: str, layout: Layout | None = None) -> V1Cgroup | V2Cgroup:
    """The cgroup object for ``pybuild/<name>`` (not created yet)."""
    layout = layout or detect()
    if layout.kind in ("v1", "hybrid") and "memory" in layout.v1:
        return V1Cgroup(layout.v1, name)
    if layout.v2 is not None:
        return V2Cgroup(layout.v2, name)
    raise RunnerError("cgroups: no usable cgroup hierarchy is mounted")


def create(name: str, resources: Resources, layout: Layout | None = None) -> Cgroup:
    """Create ``pybuild/<name>`` with ``resources`` applied; removed again if that fails."""
    cgroup = open_cgroup(name, layout)
    for path in cgroup.paths():
        reap_stale(path.parent)
    try:
        cgroup.create()
        cgroup.apply(resources)
    except BaseException as e:
        cgroup.remove()
        if isinstance(e, OSError):
            raise RunnerError(f"cgroup {name}: {e}") from e
        raise
    return cgroup


def default_name() -> str:
    """``<caller pid>-<random>``: lets ``reap_stale`` tell whose cgroup it is."""
    return f"{os.getpid()}-{os.urandom(4).hex()}"


def reap_stale(parent: Path) -> None:
    """Remove empty ``pybuild/<pid>-*`` cgroups whose creating process is gone.

    A caller killed by SIGKILL (or SIGTERM without a handler) cannot remove its cgroup; its
    sandbox died with it (parent-death signals), so the cgroup is empty and can go.
    """
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return
    for entry in entries:
        pid, sep, _ = entry.name.partition("-")
        if not (sep and pid.isdigit() and entry.is_dir()) or os.path.exists(f"/proc/{pid}"):
            continue
        try:
            os.rmdir(entry.path)
        except OSError:  # still has processes, or someone else got it first
            pass
