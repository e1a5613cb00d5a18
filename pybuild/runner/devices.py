"""Which device nodes a sandbox may use: docker's allow-list plus ``--device``.

With CAP_MKNOD (docker's default set has it) a workload can make a node for any device, say
the host's disk 8:0, so the kernel has to refuse opening it. On cgroup v1 the devices
controller does: the sandbox's intermediate process makes ``pybuild/dev-<its pid>`` in the
devices hierarchy, denies everything (``a``), allows the rules below (runc's defaults, which
docker uses: mknod of anything, use of the standard nodes, ptys, tun) and the spec's
devices, and joins it before forking PID 1, so PID 1 and all it starts inherit it. The
cgroup goes when PID 1 is gone.

cgroup v2 has no devices files: the controller is a BPF_PROG_TYPE_CGROUP_DEVICE program
attached to the cgroup, which this module does not assemble. Where no v1 devices hierarchy
exists the caller drops CAP_MKNOD before fork instead (``granted_caps``), so making a node
fails with EPERM; nodes the image itself ships stay usable there (docker on v2 would refuse them).
"""

from __future__ import annotations

import errno
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from pybuild.errors import RunnerError
from pybuild.runner import cgroups
from pybuild.runner.caps import normalize
from pybuild.runner.spec import Device

_DIR = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC


@dataclass(frozen=True)
class Rule:
    """One line of devices.allow: ``type major:minor access``; None is ``*``."""

    type: str                  # "a", "c" or "b"
    major: int | None
    minor: int | None
    access: str = "rwm"

    def line(self) -> str:
        def num(n: int | None) -> str:
            return "*" if n is None else str(n)
        return f"{self.type} {num(self.major)}:{num(self.minor)} {self.access}"


# runc's AllowedDevices (libcontainer/specconv), which docker's default spec ends up with.
DEFAULT_RULES: tuple[Rule, ...] = (
    Rule("c", None, None, "m"), Rule("b", None, None, "m"),   # mknod anything, open nothing
    Rule("c", 1, 3), Rule("c", 1, 8), Rule("c", 1, 7),        # null, random, full
    Rule("c", 5, 0), Rule("c", 1, 5), Rule("c", 1, 9),        # tty, zero, urandom
    Rule("c", 136, None),                                     # /dev/pts/* (and the console)
    Rule("c", 5, 2),                                          # /dev/ptmx
    Rule("c", 10, 200),                                       # /dev/net/tun
)


def rules(devices: tuple[Device, ...]) -> tuple[Rule, ...]:
    return DEFAULT_RULES + tuple(Rule(d.type, d.major, d.minor, d.permissions)
                                 for d in devices)


def hierarchy(layout: cgroups.Layout | None = None) -> Path | None:
    """The v1 devices hierarchy's mount point, or None (cgroup v2 only, or none at all)."""
    for point, data in (layout or cgroups.detect()).hierarchies:
        if "devices" in data.split(","):
            return point
    return None


def granted_caps(capabilities: tuple[str, ...], confined: bool) -> tuple[str, ...]:
    """``capabilities`` without MKNOD unless a devices cgroup ``confined`` the workload: a
    node it made could otherwise open any device. Decided before fork, for the sandbox's
    PID 1 and for every process ``exec`` adds, so both hold the same set."""
    if confined:
        return capabilities
    return tuple(c for c in capabilities if normalize(c) != "MKNOD")


class Confined:
    """The devices cgroup of one sandbox, held by fds: the sandbox's pivot_root takes the
    host's tree away from the intermediate process too, and it removes the cgroup after."""

    def __init__(self, parent_fd: int, name: str):
        self.parent_fd, self.name = parent_fd, name

    def _write(self, file: str, text: str) -> None:
        fd = os.open(f"{self.name}/{file}", os.O_WRONLY | os.O_CLOEXEC, dir_fd=self.parent_fd)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)

    def leave(self) -> None:
        """Move this process up to ``pybuild/`` (its children stay where they are); 0 to
        ``tasks``, as ``cgroups.join`` moves a single-threaded process."""
        fd = os.open("tasks", os.O_WRONLY | os.O_CLOEXEC, dir_fd=self.parent_fd)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)

    def remove(self, attempts: int = 100) -> None:
        try:
            self.leave()  # a no-op after the fork; before it, this process is still inside
            for _ in range(attempts):
                try:
                    os.rmdir(self.name, dir_fd=self.parent_fd)
                    return
                except FileNotFoundError:
                    return
                except OSError as e:  # EBUSY until the last process in it is reaped
                    if e.errno != errno.EBUSY:
                        raise
                    time.sleep(0.01)
        finally:
            os.close(self.parent_fd)


def confine(devices: tuple[Device, ...], layout: cgroups.Layout) -> Confined | None:
    """Make this process's devices cgroup (see the module doc) and join it; None where
    ``layout`` (the caller's, which decided CAP_MKNOD by it) has no v1 devices hierarchy."""
    point = hierarchy(layout)
    if point is None:
        return None
    parent = point / "pybuild"
    try:
        parent.mkdir(exist_ok=True)
        _reap_stale(parent)
        name = f"dev-{os.getpid()}"
        try:
            os.mkdir(parent / name)
        except FileExistsError:  # left by an earlier process of this pid: empty by now
            os.rmdir(parent / name)
            os.mkdir(parent / name)
        confined = Confined(os.open(parent, _DIR), name)
    except OSError as e:
        raise RunnerError(f"devices cgroup under {parent}: {e.strerror}") from e
    try:
        confined._write("devices.deny", "a")
        for rule in rules(devices):
            try:
                confined._write("devices.allow", rule.line())
            except PermissionError:
                # the parent (pybuild nested in a container) does not have it: a default
                # simply stays off, a device asked for is an error
                if rule in DEFAULT_RULES:
                    continue
                raise
        confined._write("tasks", "0")  # the intermediate has one thread: see cgroups.join
    except OSError as e:
        confined.remove()
        raise RunnerError(f"devices cgroup {parent / name}: {e.strerror}") from e
    return confined


def _reap_stale(parent: Path) -> None:
    """Remove ``dev-<pid>`` cgroups whose intermediate was killed before removing them."""
    for entry in os.scandir(parent):
        pid = entry.name.removeprefix("dev-")
        if entry.name.startswith("dev-") and pid.isdigit() and not os.path.exists(
                f"/proc/{pid}"):
            try:
                os.rmdir(entry.path)
            except OSError:  # still has processes
                pass


def _valid_mode(text: str) -> bool:
    return bool(text) and not set(text) - set("rwm") and len(set(text)) == len(text)


def parse_device(text: str) -> Device:
    """docker's ``--device HOST[:CONTAINER][:PERMISSIONS]`` for one host node; the node's
    type, numbers, mode and owner come from the host's node."""
    parts = text.split(":")
    if not 1 <= len(parts) <= 3 or not parts[0]:
        raise RunnerError(f"invalid device specification: {text}")
    host, container, perms = parts[0], "", "rwm"
    if len(parts) == 3:
        if not _valid_mode(parts[2]):
            raise RunnerError(f"invalid device mode {parts[2]!r} in {text} (some of r, w, m)")
        container, perms = parts[1], parts[2]
    elif len(parts) == 2:
        if _valid_mode(parts[1]):
            perms = parts[1]
        else:
            container = parts[1]
    try:
        st = os.stat(host)
    except OSError as e:
        raise RunnerError(f"device {host}: {e.strerror}") from e
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        raise RunnerError(f"device {host}: not a character or block device")
    return Device(host, kind, os.major(st.st_rdev), os.minor(st.st_rdev), perms,
                  container if container != host else "", stat.S_IMODE(st.st_mode),
                  st.st_uid, st.st_gid)
