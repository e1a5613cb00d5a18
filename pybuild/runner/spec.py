"""What to run and how to confine it: plain frozen data, checked in one place (validate).

The builder fills a RunSpec per RUN step; ``pybuild run`` will fill the same spec with a
network, volumes and resources. Nothing here touches the system.
"""

from __future__ import annotations

import re
import resource
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from pybuild.errors import RunnerError
from pybuild.image.config import DEFAULT_PATH
from pybuild.runner import seccomp
from pybuild.runner.caps import CAPABILITIES, DOCKER_DEFAULT_CAPS, normalize

# Docker's defaults (moby oci/defaults.go): files get /dev/null bound over them, directories
# a read-only empty tmpfs. Paths missing on this kernel are skipped.
DOCKER_MASKED_PATHS: tuple[str, ...] = (
    "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
    "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
)
DOCKER_READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
)

# none: a fresh netns with only lo; bridge: a fresh one the caller plugs interfaces into (the
# run's ``prepare`` step, while PID 1 waits); host: the caller's; container: the netns at
# ``RunSpec.netns`` (another container's), joined
NETWORK_MODES = ("none", "host", "bridge", "container")
MOUNT_TYPES = ("bind", "tmpfs")
RLIMITS = {
    name[len("RLIMIT_"):].lower(): getattr(resource, name)
    for name in dir(resource) if name.startswith("RLIMIT_")
}


@dataclass(frozen=True)
class Rootfs:
    """An overlay (lowerdirs top first, as overlay's lowerdir= wants) or a plain directory."""

    lowerdirs: tuple[Path, ...] = ()
    upperdir: Path | None = None
    workdir: Path | None = None
    path: Path | None = None
    readonly: bool = False


@dataclass(frozen=True)
class Mount:
    type: str
    source: str
    target: str
    readonly: bool = False
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Process:
    args: tuple[str, ...]
    env: tuple[str, ...] = (f"PATH={DEFAULT_PATH}",)
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    additional_gids: tuple[int, ...] = ()
    terminal: bool = False


@dataclass(frozen=True)
class Resources:
    """Docker's resource limits in docker's units; None leaves the kernel's default.

    ``cgroups`` maps them onto v1 or v2 files; ``limits.parse_limits`` turns docker's flags
    into this (with docker's defaults and warnings). With ``memory`` set and ``memory_swap``
    None the sandbox allows no swap beyond the limit (docker's CLI default, twice the memory,
    comes from parse_limits).
    """

    memory: int | None = None              # bytes (v1 memory.limit_in_bytes, v2 memory.max)
    memory_swap: int | None = None         # bytes of memory + swap; -1 unlimited
    memory_reservation: int | None = None  # bytes, a soft limit (v2 memory.low)
    memory_swappiness: int | None = None   # 0..100, v1 only
    kernel_memory: int | None = None       # bytes, v1 only; ignored where the kernel has none
    oom_kill_disable: bool | None = None   # v1 only
    cpus: float | None = None              # like docker --cpus: quota = cpus * period
    cpu_shares: int | None = None          # relative weight (v2 cpu.weight, converted)
    cpu_period: int | None = None          # microseconds; 100000 when only cpus is given
    cpu_quota: int | None = None           # microseconds per period; -1 unlimited
    cpuset_cpus: str | None = None         # "0-2,4"
    cpuset_mems: str | None = None
    pids_limit: int | None = None          # -1 unlimited
    blkio_weight: int | None = None        # 10..1000


@dataclass(frozen=True)
class Rlimit:
    name: str                          # "nofile", "nproc", ... (RLIMIT_ without prefix)
    soft: int
    hard: int


@dataclass(frozen=True)
class Device:
    """A host device node made in the container (docker's --device HOST:CONTAINER:PERMS)
    and allowed in its devices cgroup with ``permissions`` (a subset of "rwm")."""

    path: str                          # the host node (bind-mounted where mknod is refused)
    type: str                          # "c" or "b"
    major: int
    minor: int
    permissions: str = "rwm"
    container_path: str = ""           # under /dev; "" for the same path as on the host
    mode: int = 0o666                  # the node's permission bits, as the host's node
    uid: int = 0
    gid: int = 0

    @property
    def target(self) -> str:
        return self.container_path or self.path


@dataclass(frozen=True)
class RunSpec:
    rootfs: Rootfs
    process: Process
    hostname: str = "pybuild"
    network: str = "none"
    netns: str = ""  # with network "container": the namespace to join (/proc/PID/ns/net)
    mounts: tuple[Mount, ...] = ()
    # (container path, host file) pairs bind-mounted read-write over e.g. /etc/hosts; they are
    # never copied into the upper dir, and a mount point the run had to create is removed.
    etc_files: tuple[tuple[str, Path], ...] = ()
    # Container paths (of etc files, mounts, or /proc, /dev and /sys) whose mount points, when
    # the setup has to create them, are left as runc and BuildKit 20.10 leave them: the
    # directories made for them stay; a file made for one is removed when still empty, and the
    # directory it was made in keeps that change. Other created mount points are removed
    # together with the directories only copied up for them.
    kept_mount_points: tuple[str, ...] = ()
    capabilities: tuple[str, ...] = DOCKER_DEFAULT_CAPS
    no_new_privs: bool = True
    seccomp: str | None = "default"    # docker's profile, a profile path, or None (unconfined)
    masked_paths: tuple[str, ...] = DOCKER_MASKED_PATHS
    readonly_paths: tuple[str, ...] = DOCKER_READONLY_PATHS
    resources: Resources | None = None
    rlimits: tuple[Rlimit, ...] = field(default=())
    devices: tuple[Device, ...] = ()


def _fail(message: str) -> None:
    raise RunnerError(f"invalid run spec: {message}")


def _check_container_path(path: str, what: str) -> None:
    if not path.startswith("/"):
        _fail(f"{what} {path!r} must be an absolute path")
    if ".." in PurePosixPath(path).parts:
        _fail(f"{what} {path!r} must not contain '..'")
    if "\0" in path:
        _fail(f"{what} {path!r} contains a NUL byte")


def _check_rootfs(rootfs: Rootfs) -> None:
    if rootfs.path is not None:
        if rootfs.lowerdirs or rootfs.upperdir or rootfs.workdir:
            _fail("rootfs: give either path or overlay dirs, not both")
        if not Path(rootfs.path).is_dir():
            _fail(f"rootfs path {rootfs.path} is not a directory")
        return
    if not rootfs.lowerdirs:
        _fail("rootfs: no lower dirs and no path")
    if (rootfs.upperdir is None) != (rootfs.workdir is None):
        _fail("rootfs: upperdir and workdir go together")
    dirs = [*rootfs.lowerdirs, *(d for d in (rootfs.upperdir, rootfs.workdir) if d)]
    for d in dirs:
        if "," in str(d) or "\0" in str(d):
            _fail(f"rootfs: overlay dir {d} contains ',' (overlay cannot take it)")
        if not Path(d).is_dir():
            _fail(f"rootfs: {d} is not a directory")


def _check_mount(m: Mount) -> None:
    if m.type not in MOUNT_TYPES:
        _fail(f"mount type {m.type!r} (supported: {', '.join(MOUNT_TYPES)})")
    _check_container_path(m.target, "mount target")
    if m.type == "bind" and not Path(m.source).exists():
        _fail(f"bind mount source {m.source} does not exist")


def _check_process(p: Process) -> None:
    if not p.args or not p.args[0]:
        _fail("process args are empty")
    _check_container_path(p.cwd, "cwd")
    for item in p.env:
        if "=" not in item or item.startswith("="):
            _fail(f"env entry {item!r} is not NAME=value")
    for n in (p.uid, p.gid, *p.additional_gids):
        if not 0 <= n < 2**32 - 1:
            _fail(f"uid/gid {n} out of range")


def validate(spec: RunSpec) -> RunSpec:
    """Check everything that can be checked before forking; returns the spec unchanged."""
    _check_rootfs(spec.rootfs)
    _check_process(spec.process)
    if spec.network not in NETWORK_MODES:
        _fail(f"network {spec.network!r} (supported: {', '.join(NETWORK_MODES)})")
    if (spec.network == "container") != bool(spec.netns):
        _fail("a netns path goes with network 'container', and only with it")
    if spec.netns and not Path(spec.netns).exists():
        _fail(f"network namespace {spec.netns} does not exist (is its container running?)")
    if not 0 < len(spec.hostname) <= 64 or "/" in spec.hostname:
        _fail(f"hostname {spec.hostname!r}")
    for m in spec.mounts:
        _check_mount(m)
    for target, source in spec.etc_files:
        _check_container_path(target, "etc file")
        if not Path(source).is_file():
            _fail(f"etc file source {source} is not a file")
    for name in spec.capabilities:
        if normalize(name) not in CAPABILITIES:
            _fail(f"unknown capability {name!r}")
    for path in (*spec.masked_paths, *spec.readonly_paths):
        _check_container_path(path, "masked/readonly path")
    for path in spec.kept_mount_points:
        _check_container_path(path, "kept mount point")
    # The profile is parsed and compiled here, before fork (the child only loads it). Docker
    # allows seccomp without no_new_privs by loading it while still privileged; our step 16
    # comes after the caps are gone, so that our own setup never has to pass the profile.
    if seccomp.prepare(spec.seccomp, spec.capabilities) and not spec.no_new_privs:
        _fail("seccomp needs no_new_privs (the sandbox drops CAP_SYS_ADMIN before it)")
    _check_resources(spec.resources)
    for r in spec.rlimits:
        if r.name not in RLIMITS:
            _fail(f"unknown rlimit {r.name!r}")
        if not _rlimit_ok(r.soft, r.hard):
            _fail(f"rlimit {r.name}: soft {r.soft} / hard {r.hard}")
    _check_devices(spec.devices)
    return spec


def _check_devices(devices: tuple[Device, ...]) -> None:
    # Nodes go into the sandbox's own /dev tmpfs only, never into the image's upper dir.
    seen: set[str] = set()
    for d in devices:
        where = f"device {d.path}"
        _check_container_path(d.target, f"{where}: container path")
        if not d.target.startswith("/dev/") or d.target.startswith(("/dev/pts/", "/dev/shm/",
                                                                    "/dev/mqueue/")):
            _fail(f"{where}: container path {d.target} must be in /dev (not pts, shm, mqueue)")
        if d.target in seen:
            _fail(f"{where}: container path {d.target} given twice")
        seen.add(d.target)
        if d.type not in ("c", "b"):
            _fail(f"{where}: type {d.type!r} (c or b)")
        if not (0 <= d.major < 2**12 and 0 <= d.minor < 2**20):
            _fail(f"{where}: major:minor {d.major}:{d.minor} out of range")
        if not d.permissions or set(d.permissions) - set("rwm") or \
                len(set(d.permissions)) != len(d.permissions):
            _fail(f"{where}: permissions {d.permissions!r} (some of r, w, m)")
        if not 0 <= d.mode <= 0o7777:
            _fail(f"{where}: mode {d.mode:o}")


def _rlimit_ok(soft: int, hard: int) -> bool:
    inf = resource.RLIM_INFINITY
    if any(v < 0 and v != inf for v in (soft, hard)):
        return False
    if hard == inf:
        return True
    return soft != inf and soft <= hard


_CPUSET = re.compile(r"\d+(-\d+)?(,\d+(-\d+)?)*")


def _check_resources(res: Resources | None) -> None:
    """The kernel's and docker's hard limits; the host-dependent checks (CPU count, online
    CPUs) are parse_limits' job, as docker's daemon does them."""
    if res is None:
        return
    if res.memory is not None and res.memory < 6 * 1024 * 1024:
        _fail("memory limit below 6 MiB (docker's minimum)")
    if res.memory_swap is not None and res.memory_swap != -1:
        if res.memory is None or res.memory_swap < res.memory:
            _fail(f"memory_swap {res.memory_swap} needs a memory limit no larger than it")
    if res.memory_reservation is not None and not (
            0 <= res.memory_reservation <= (res.memory or res.memory_reservation)):
        _fail(f"memory_reservation {res.memory_reservation} is above the memory limit")
    if res.memory_swappiness is not None and not 0 <= res.memory_swappiness <= 100:
        _fail(f"memory_swappiness {res.memory_swappiness} is not in 0..100")
    if res.kernel_memory is not None and res.kernel_memory < 0:
        _fail(f"kernel_memory {res.kernel_memory} is negative")
    if res.cpus is not None and not 0 < res.cpus:
        _fail(f"cpus {res.cpus} must be positive")
    if res.cpus is not None and res.cpu_quota is not None:
        _fail("cpus and cpu_quota cannot both be set")
    if res.cpu_period is not None and not 1000 <= res.cpu_period <= 1_000_000:
        _fail(f"cpu_period {res.cpu_period} is not in 1000..1000000 microseconds")
    if res.cpu_quota is not None and res.cpu_quota != -1 and res.cpu_quota < 1000:
        _fail(f"cpu_quota {res.cpu_quota} is below 1000 microseconds")
    if res.cpu_shares is not None and res.cpu_shares < 2:
        _fail(f"cpu_shares {res.cpu_shares} is below 2 (the kernel's minimum)")
    for name in ("cpuset_cpus", "cpuset_mems"):
        value = getattr(res, name)
        if value is not None and not _CPUSET.fullmatch(value):
            _fail(f"{name} {value!r} is not a list like 0-2,4")
    if res.pids_limit is not None and res.pids_limit < 1 and res.pids_limit != -1:
        _fail(f"pids limit {res.pids_limit} must be positive (or -1, unlimited)")
    if res.blkio_weight is not None and not 10 <= res.blkio_weight <= 1000:
        _fail(f"blkio_weight {res.blkio_weight} is not in 10..1000")
