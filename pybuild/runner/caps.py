"""Linux capabilities: names, docker's default set, and dropping to a set.

The order of operations matters and follows runc's finalizeNamespace: shrink the bounding
set while we still hold CAP_SETPCAP, keep the permitted set across setuid with
PR_SET_KEEPCAPS, change user, then capset the final sets (setuid clears effective).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pybuild.runner import libc

CAPABILITIES: dict[str, int] = {
    name: number
    for number, name in enumerate(
        (
            "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
            "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST",
            "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO",
            "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
            "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE",
            "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
            "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
        )
    )
}

# Docker's (moby's) default capability set for containers and RUN steps.
DOCKER_DEFAULT_CAPS: tuple[str, ...] = (
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
    "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
)


def normalize(name: str) -> str:
    """``cap_chown``, ``CAP_CHOWN`` and ``chown`` all name CHOWN."""
    upper = name.upper()
    return upper[4:] if upper.startswith("CAP_") else upper


def mask(names: Iterable[str]) -> int:
    """The 64-bit mask of the named capabilities; KeyError on an unknown name."""
    result = 0
    for name in names:
        result |= 1 << CAPABILITIES[normalize(name)]
    return result


def last_cap() -> int:
    """The highest capability number this kernel knows."""
    try:
        with open("/proc/sys/kernel/cap_last_cap", "rb") as f:
            return int(f.read())
    except OSError:
        return max(CAPABILITIES.values())


def drop_bounding(keep: int) -> None:
    """Remove every capability outside ``keep`` from the bounding set (needs CAP_SETPCAP)."""
    for number in range(last_cap() + 1):
        if not keep & (1 << number) and libc.prctl(libc.PR_CAPBSET_READ, number) == 1:
            libc.prctl(libc.PR_CAPBSET_DROP, number)


def change_user(keep: int, switch: Callable[[], None]) -> None:
    """Run ``switch`` (setgroups/setgid/setuid), then leave exactly ``keep`` in the sets.

    Inheritable stays empty (docker's fix for CVE-2022-24769); ambient is never used, so a
    non-root process loses its capabilities at execve as under docker.
    """
    libc.prctl(libc.PR_SET_KEEPCAPS, 1)
    switch()
    libc.prctl(libc.PR_SET_KEEPCAPS, 0)
    libc.capset(effective=keep, permitted=keep, inheritable=0)
