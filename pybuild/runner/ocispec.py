"""A RunSpec as an OCI runtime-spec config.json (v1.0.2, as runc 1.1 reads it).

The mapping follows what pybuild's own sandbox does (init.py, mounts.py, cgroups.py), so the
same RunSpec gives the same container under either executor: the same mounts in the same
order, the same namespaces (a cgroup namespace too: the sandbox always takes one), the same
capability sets, rlimits clamped the same way, the same cgroup limits.

What runc adds on its own and the sandbox does not, and cannot be switched off from here:
HOME in the environment when the spec has none (runc takes it from the image's
/etc/passwd), the devices cgroup (docker's allow-list below; the sandbox has no devices
cgroup), and runc's own cgroup even without resources.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Iterable
from typing import Any

from pybuild.runner import cgroups, seccomp
from pybuild.runner.caps import normalize
from pybuild.runner.ocispec_seccomp import seccomp_to_oci
from pybuild.runner.spec import RLIMITS, Mount, RunSpec

__all__ = ["OCI_VERSION", "SECCOMP_DEFAULT", "seccomp_to_oci", "to_oci"]

OCI_VERSION = "1.0.2"
SECCOMP_DEFAULT = seccomp.DEFAULT_PROFILE
_UINT64_MAX = 2**64 - 1
_NOSUID_NODEV_NOEXEC = ["nosuid", "nodev", "noexec"]
# The sandbox's umask (init step 3), docker's too.
_UMASK = 0o022

# Docker's device cgroup rules (moby oci/defaults.go): deny all, then allow the nodes every
# container gets; runc's specconv appends its own allow-list after these (full, ptmx,
# /dev/pts/*, tun, and mknod of any node).
_DEVICE_RULES: tuple[dict[str, Any], ...] = (
    {"allow": False, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},    # zero
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},    # null
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},    # urandom
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},    # random
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},    # tty
    {"allow": True, "type": "c", "major": 5, "minor": 1, "access": "rwm"},    # console
    {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"},  # fuse
)


def to_oci(spec: RunSpec, rootfs: str, *, cgroups_path: str | None = None) -> dict[str, Any]:
    """The config.json for ``spec`` with its root filesystem at ``rootfs`` (already mounted)."""
    config: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": _process(spec),
        "root": {"path": rootfs, "readonly": _root_readonly(spec)},
        "hostname": spec.hostname,
        "mounts": _mounts(spec),
        "linux": _linux(spec, cgroups_path),
    }
    return config


def _root_readonly(spec: RunSpec) -> bool:
    # One lower dir and no upper is a read-only bind in the sandbox (mounts.mount_rootfs).
    r = spec.rootfs
    return r.readonly or (r.path is None and r.upperdir is None)


def _cap_names(names: Iterable[str]) -> list[str]:
    return [f"CAP_{normalize(n)}" for n in names]


def _process(spec: RunSpec) -> dict[str, Any]:
    p = spec.process
    caps = _cap_names(spec.capabilities)
    process: dict[str, Any] = {
        "terminal": p.terminal,
        "user": {"uid": p.uid, "gid": p.gid, "umask": _UMASK,
                 "additionalGids": list(p.additional_gids)},
        "args": list(p.args),
        "env": list(p.env),
        "cwd": p.cwd,
        # Inheritable and ambient stay empty, as the sandbox's capset (CVE-2022-24769).
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps,
                         "inheritable": [], "ambient": []},
        "noNewPrivileges": spec.no_new_privs,
        "rlimits": [_rlimit(r.name, r.soft, r.hard) for r in spec.rlimits],
    }
    oom = getattr(spec, "oom_score_adj", None)
    if oom is None and spec.resources is not None:
        oom = getattr(spec.resources, "oom_score_adj", None)
    if oom is not None:
        process["oomScoreAdj"] = int(oom)
    return process


def _rlimit(name: str, soft: int, hard: int) -> dict[str, Any]:
    # Clamped to our own hard limit as the sandbox does (init._set_rlimits); runc would set
    # them unclamped from its privileged parent.
    inf = resource.RLIM_INFINITY
    _, max_hard = resource.getrlimit(RLIMITS[name])
    hard = hard if max_hard == inf or (hard != inf and hard <= max_hard) else max_hard
    soft = soft if hard == inf or (soft != inf and soft <= hard) else hard

    def u64(v: int) -> int:
        return _UINT64_MAX if v == inf else v

    return {"type": f"RLIMIT_{name.upper()}", "soft": u64(soft), "hard": u64(hard)}


def _mount(dest: str, fstype: str, source: str, options: list[str]) -> dict[str, Any]:
    return {"destination": dest, "type": fstype, "source": source, "options": options}


def _standard_mounts() -> list[dict[str, Any]]:
    """mounts.mount_standard and mount_cgroups, flag for flag."""
    return [
        _mount("/proc", "proc", "proc", list(_NOSUID_NODEV_NOEXEC)),
        _mount("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
        _mount("/dev/pts", "devpts", "devpts",
               ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
        _mount("/dev/shm", "tmpfs", "shm", [*_NOSUID_NODEV_NOEXEC, "mode=1777", "size=65536k"]),
        _mount("/dev/mqueue", "mqueue", "mqueue", list(_NOSUID_NODEV_NOEXEC)),
        _mount("/sys", "sysfs", "sysfs", [*_NOSUID_NODEV_NOEXEC, "ro"]),
        _mount("/sys/fs/cgroup", "cgroup", "cgroup", [*_NOSUID_NODEV_NOEXEC, "ro"]),
    ]


def _spec_mount(m: Mount) -> dict[str, Any]:
    ro = ["ro"] if m.readonly else []
    if m.type == "tmpfs":
        # The sandbox always adds nosuid,nodev to a tmpfs (mounts.mount_spec).
        return _mount(m.target, "tmpfs", "tmpfs", ["nosuid", "nodev", *m.options, *ro])
    return _mount(m.target, "bind", m.source, ["rbind", *m.options, *ro])


def _mounts(spec: RunSpec) -> list[dict[str, Any]]:
    mounts = _standard_mounts()
    mounts += [_mount(cpath, "bind", os.fspath(host), ["rbind"])
               for cpath, host in spec.etc_files]
    # Parents before children, the sandbox's (and docker's) order; sorted() is stable.
    ordered = sorted(spec.mounts, key=lambda m: len([p for p in m.target.split("/") if p]))
    return mounts + [_spec_mount(m) for m in ordered]


def _namespaces(spec: RunSpec) -> list[dict[str, str]]:
    namespaces = [{"type": k} for k in ("mount", "pid", "uts", "ipc", "cgroup")]
    if spec.network == "container":  # another container's, joined by path
        namespaces.append({"type": "network", "path": spec.netns})
    elif spec.network != "host":
        namespaces.append({"type": "network"})
    return namespaces


def _linux(spec: RunSpec, cgroups_path: str | None) -> dict[str, Any]:
    linux: dict[str, Any] = {
        "namespaces": _namespaces(spec),
        # The sandbox makes its tree private before mounting (init step 5). v1.0.2 knows no
        # "rprivate"; runc makes the rootfs's parent mount private itself either way.
        "rootfsPropagation": "private",
        "maskedPaths": list(spec.masked_paths),
        "readonlyPaths": list(spec.readonly_paths),
        "devices": [],
        "resources": _resources(spec),
    }
    if cgroups_path is not None:
        linux["cgroupsPath"] = cgroups_path
    seccomp = _seccomp(spec)
    if seccomp is not None:
        linux["seccomp"] = seccomp
    return linux


def _swap_file_exists() -> bool:
    """Whether v1 can limit swap here (the sandbox skips it where not; runc would fail).
    runc 1.1 on v2 ignores a missing memory.swap.max for "no swap"."""
    layout = cgroups.detect()
    if layout.kind in ("v1", "hybrid") and "memory" in layout.v1:
        return (layout.v1["memory"] / "memory.memsw.limit_in_bytes").exists()
    return layout.v2 is not None


def _resources(spec: RunSpec) -> dict[str, Any]:
    """spec.resources the way docker maps its HostConfig; fields read with defaults, since
    Resources grows (memory_swap, cpu_shares, cpuset_cpus ... as docker names them)."""
    out: dict[str, Any] = {"devices": [dict(rule) for rule in _DEVICE_RULES]}
    res = spec.resources
    if res is None:
        return out

    def field(name: str) -> Any:
        return getattr(res, name, None)

    memory: dict[str, Any] = {}
    if field("memory") is not None:
        memory["limit"] = field("memory")
        swap = field("memory_swap")
        if swap is None and _swap_file_exists():
            swap = field("memory")  # the sandbox's "no swap beyond the limit"
        if swap is not None:
            memory["swap"] = swap
    for name, key in (("memory_reservation", "reservation"), ("memory_swappiness", "swappiness"),
                      ("kernel_memory", "kernel"), ("oom_kill_disable", "disableOOMKiller")):
        if field(name) is not None:
            memory[key] = field(name)
    if memory:
        out["memory"] = memory
    cpu = _cpu(res)
    if cpu:
        out["cpu"] = cpu
    if field("pids_limit") is not None:
        out["pids"] = {"limit": field("pids_limit")}
    if field("blkio_weight") is not None:
        out["blockIO"] = {"weight": field("blkio_weight")}
    return out


def _cpu(res: Any) -> dict[str, Any]:
    cpu: dict[str, Any] = {}
    period = getattr(res, "cpu_period", None)
    quota = getattr(res, "cpu_quota", None)
    cpus = getattr(res, "cpus", None)
    if cpus is not None:  # docker's --cpus: quota = cpus * period, 100ms unless given
        period = period or 100_000
        quota = round(cpus * period)
    if quota is not None:
        cpu["quota"] = quota
    if period is not None:
        cpu["period"] = period
    for name, key in (("cpu_shares", "shares"), ("cpuset_cpus", "cpus"),
                      ("cpuset_mems", "mems")):
        if getattr(res, name, None) is not None:
            cpu[key] = getattr(res, name)
    return cpu


def _seccomp(spec: RunSpec) -> dict[str, Any] | None:
    """``spec.seccomp`` read as the sandbox reads it (seccomp.load_profile: "default", a
    path, None or "unconfined"), resolved for the spec's capabilities."""
    profile = seccomp.load_profile(spec.seccomp)
    return None if profile is None else seccomp_to_oci(profile, spec.capabilities)
