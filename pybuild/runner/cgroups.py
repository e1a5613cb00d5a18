"""Resource limits through cgroups: one interface over v1 and v2.

``detect()`` reads /proc/self/mountinfo and names the layout: ``v2`` (unified only),
``v1``, ``hybrid`` (v1 controllers plus a cgroup2 tree, as systemd's hybrid mode) or
``none``. Each controller is used where it actually lives: in the unified tree when the v2
root offers it (cgroup.controllers), else in its v1 hierarchy. On this kind of hybrid host
the controllers are bound to v1 and the unified tree offers none, so everything is v1.
``cgroup_files`` says which file carries which limit in each version.

Each sandbox gets ``pybuild/<name>`` in every hierarchy it uses; the sandbox's first process
joins it before unsharing, so everything it starts is accounted. Another process (the
container monitor, the CLI) gets the same object back with ``open(name)``. ``remove()`` is
idempotent and retries briefly, since v1 refuses to remove a cgroup until its last zombie is
reaped.
"""

from __future__ import annotations

import errno
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from pybuild.errors import RunnerError
from pybuild.runner import cgroup_files
from pybuild.runner.cgroup_files import flat_keyed, limit_value
from pybuild.runner.spec import Resources, _check_resources

# Controllers by their v1 names. cpuacct and freezer are no controllers in v2 (cpu.stat and
# cgroup.freeze are in every v2 cgroup), and v1's blkio is v2's io.
V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "cpuset", "pids", "blkio", "freezer")
_V2_NAME = {"blkio": "io"}
_V2_CORE = ("cpuacct", "freezer")


@dataclass(frozen=True)
class Layout:
    kind: str                                             # "v1" | "v2" | "hybrid" | "none"
    v1: dict[str, Path] = field(default_factory=dict)     # controller -> mount point
    v2: Path | None = None                                # the cgroup2 mount point
    # every v1 hierarchy: (mount point, its controllers as mount data, e.g. "cpu,cpuacct")
    hierarchies: tuple[tuple[Path, str], ...] = ()
    # what the v2 root offers (its cgroup.controllers); None: read it when needed
    v2_controllers: frozenset[str] | None = None


@dataclass(frozen=True)
class CgroupStats:
    cpu_usage_ns: int | None = None     # total CPU time of every process ever in it
    memory_usage: int | None = None     # bytes charged now (page cache and tmpfs included)
    memory_limit: int | None = None     # bytes; None for no limit
    pids_current: int | None = None
    oom_kills: int | None = None        # None where the kernel has no such counter


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


def placement(layout: Layout) -> dict[str, tuple[str, Path]]:
    """controller (v1 name) -> (version, hierarchy root) for what this host has."""
    offered = layout.v2_controllers
    if offered is None and layout.v2 is not None:
        try:
            offered = frozenset((layout.v2 / "cgroup.controllers").read_text().split())
        except OSError:
            offered = frozenset()
    out: dict[str, tuple[str, Path]] = {}
    for c in V1_CONTROLLERS:
        in_v2 = layout.v2 is not None and (
            _V2_NAME.get(c, c) in (offered or ()) or (c in _V2_CORE and c not in layout.v1))
        if in_v2 and layout.v2 is not None:
            out[c] = ("v2", layout.v2)
        elif c in layout.v1:
            out[c] = ("v1", layout.v1[c])
    return out


def _write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError as e:
        raise RunnerError(f"cgroup: cannot write {value!r} to {path}: {e.strerror}") from e


def join(path: Path, version: str) -> None:
    """Move the calling process into the cgroup at ``path``; it must have one thread, as a
    process just forked has. On v1 that is 0 written to ``tasks``: a thread moving itself
    takes no threadgroup lock, where a pid written to ``cgroup.procs`` (or ``tasks``) waits
    for an RCU grace period first (5-15 ms measured on this kernel: once for every container
    start and exec). v2 offers ``cgroup.procs`` only."""
    _write(path / ("tasks" if version == "v1" else "cgroup.procs"), "0")


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _read_int(path: Path) -> int | None:
    text = _read(path)
    return int(text) if text.lstrip("-").isdigit() else None


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


class Cgroup:
    """``pybuild/<name>`` in every hierarchy that has one of its controllers."""

    def __init__(self, name: str, where: dict[str, tuple[str, Path]]):
        if not name or "/" in name or name in (".", ".."):
            raise RunnerError(f"cgroup name {name!r} must be one path component")
        self.name = name
        self._where = {c: (v, root / "pybuild" / name) for c, (v, root) in where.items()}

    def version(self, controller: str) -> str | None:
        """"v1", "v2", or None where this host lacks ``controller`` (v1 names)."""
        return self._where.get(controller, (None, None))[0]

    def dir(self, controller: str) -> Path | None:
        return self._where.get(controller, (None, None))[1]

    def paths(self) -> tuple[Path, ...]:
        return tuple(dict.fromkeys(d for _, d in self._where.values()))

    def create(self) -> None:
        for version, path in dict.fromkeys(self._where.values()):
            if version == "v1":
                path.mkdir(parents=True, exist_ok=True)
        cpuset = self.dir("cpuset")
        if self.version("cpuset") == "v1" and cpuset is not None:
            # A new v1 cpuset is empty and takes no process until it has CPUs and nodes.
            for d in (cpuset.parent, cpuset):
                for f in ("cpuset.cpus", "cpuset.mems"):
                    if not _read(d / f):
                        _write(d / f, _read(d.parent / f))
        v2 = [c for c, (v, _) in self._where.items() if v == "v2"]
        if v2:
            self._create_v2(self._where[v2[0]][1], [c for c in v2 if c not in _V2_CORE])

    def _create_v2(self, leaf: Path, controllers: list[str]) -> None:
        # Controllers must be enabled in every ancestor's subtree_control; pybuild/ itself
        # holds no processes, so v2's "no internal processes" rule is kept.
        leaf.mkdir(parents=True, exist_ok=True)
        names = [_V2_NAME.get(c, c) for c in controllers]
        for parent in (leaf.parent.parent, leaf.parent):
            available = (parent / "cgroup.controllers").read_text().split()
            wanted = [c for c in names if c in available]
            if wanted:
                _write(parent / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))

    def apply(self, resources: Resources) -> None:
        """Set the limits of a new cgroup (``memory`` without ``memory_swap``: no swap)."""
        self._apply(resources, update=False)

    def update(self, resources: Resources) -> None:
        """Change the limits of a live cgroup: the fields that are set, nothing else."""
        _check_resources(resources)
        self._check_swap_room(resources)
        self._apply(resources, update=True)

    def _check_swap_room(self, res: Resources) -> None:
        mem = self.dir("memory")
        if self.version("memory") != "v1" or mem is None or res.memory is None:
            return
        limit = _read_int(mem / "memory.limit_in_bytes")
        swap = _read_int(mem / "memory.memsw.limit_in_bytes")
        if res.memory_swap is None and swap is not None and swap != limit and res.memory > swap:
            raise RunnerError(f"cgroup {self.name}: Memory limit should be smaller than already"
                              " set memoryswap limit, update the memoryswap at the same time")

    def _apply(self, resources: Resources, update: bool) -> None:
        for controller in sorted(cgroup_files.needed_controllers(resources)):
            if controller not in self._where:
                raise RunnerError(f"cgroup: the {controller} controller is not available"
                                  " (no v1 hierarchy has it, and cgroup v2 does not offer it)")

        def read(controller: str, file: str) -> int | None:
            d = self.dir(controller)
            return None if d is None else _read_int(d / file)

        for w in cgroup_files.writes(resources, self.version, read, update):
            d = self.dir(w.controller)
            if d is None or (w.optional and not (d / w.file).exists()):
                continue
            try:
                _write(d / w.file, w.value)
            except RunnerError:
                if not w.optional:
                    raise

    def join(self) -> None:
        """Move the calling single-threaded process in (see ``join``)."""
        for version, path in dict.fromkeys(self._where.values()):
            join(path, version)

    def stats(self) -> CgroupStats:
        memory, mem_v = self.dir("memory"), self.version("memory")
        usage = limit = kills = None
        if memory is not None:
            v1 = mem_v == "v1"
            usage = _read_int(memory / ("memory.usage_in_bytes" if v1 else "memory.current"))
            limit = limit_value(_read(memory / ("memory.limit_in_bytes" if v1 else "memory.max")))
            kills = self._memory_events().get("oom_kill")
        pids = self.dir("pids")
        return CgroupStats(self._cpu_usage(), usage, limit,
                           None if pids is None else _read_int(pids / "pids.current"), kills)

    def _memory_events(self) -> dict[str, int]:
        memory = self.dir("memory")
        if memory is None:
            return {}
        v1 = self.version("memory") == "v1"
        return flat_keyed(_read(memory / ("memory.oom_control" if v1 else "memory.events")))

    def _cpu_usage(self) -> int | None:
        d = self.dir("cpuacct")
        if d is None:
            return None
        if self.version("cpuacct") == "v1":
            return _read_int(d / "cpuacct.usage")
        usec = flat_keyed(_read(d / "cpu.stat")).get("usage_usec")
        return None if usec is None else usec * 1000

    def oom_killed(self, exit_code: int | None = None) -> bool:
        """Whether the OOM killer killed a process in here. Where the kernel counts no
        OOM kills, a workload that died of SIGKILL (``exit_code`` 137) after the memory
        limit was hit (v1 memory.failcnt, v2 memory.events max) counts as one."""
        kills = self.stats().oom_kills
        if kills is not None:
            return kills > 0
        memory = self.dir("memory")
        if memory is None:
            return False
        if self.version("memory") == "v1":
            hits = _read_int(memory / "memory.failcnt")
        else:
            hits = self._memory_events().get("max")
        return bool(hits) and exit_code == 128 + signal.SIGKILL

    def freeze(self) -> None:
        """Stop every process in here (docker pause); returns once they are stopped."""
        self._freezer(frozen=True)

    def thaw(self) -> None:
        self._freezer(frozen=False)

    def _freezer(self, frozen: bool, timeout: float = 10.0) -> None:
        d = self.dir("freezer")
        if d is None:
            raise RunnerError("cgroup: no freezer (no v1 freezer hierarchy, no cgroup v2)")
        if self.version("freezer") == "v1":
            state, want = d / "freezer.state", "FROZEN" if frozen else "THAWED"

            def done() -> bool:
                return _read(state) == want
        else:
            state, want = d / "cgroup.freeze", "1" if frozen else "0"

            def done() -> bool:
                return flat_keyed(_read(d / "cgroup.events")).get("frozen") == int(frozen)
        deadline = time.monotonic() + timeout
        while True:
            # v1 may stay FREEZING while a task is busy in the kernel: write it again.
            _write(state, want)
            if done():
                return
            if time.monotonic() > deadline:
                raise RunnerError(f"cgroup {self.name}: still not {want} after {timeout:g}s")
            time.sleep(0.01)

    def remove(self) -> None:
        freezer = self.dir("freezer")
        if freezer is not None and freezer.exists():
            try:  # a frozen v1 cgroup would keep its killed processes forever
                self.thaw()
            except RunnerError:
                pass
        for path in self.paths():
            _rmdir(path)


def open_cgroup(name: str, layout: Layout | None = None) -> Cgroup:
    """The cgroup object for ``pybuild/<name>`` (not created yet)."""
    where = placement(layout or detect())
    if not where:
        raise RunnerError("cgroups: no usable cgroup hierarchy is mounted")
    return Cgroup(name, where)


def open(name: str, layout: Layout | None = None) -> Cgroup:
    """Re-open the existing ``pybuild/<name>`` (made by another process, say)."""
    cgroup = open_cgroup(name, layout)
    if not any(p.is_dir() for p in cgroup.paths()):
        raise RunnerError(f"cgroup pybuild/{name} does not exist")
    return cgroup


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
