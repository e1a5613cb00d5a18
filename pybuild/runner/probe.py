"""What this host can do, so callers and tests can refuse or skip with a reason.

``probe()`` is cached; the overlay check really mounts one (in a throwaway child with its
own mount namespace), since /proc/filesystems does not show a module that is not loaded yet
and some filesystems (overlay on overlay, tmpfs without xattrs) refuse to be upper dirs.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from dataclasses import dataclass

from pybuild.runner import cgroups, libc

_NAMESPACES = ("mnt", "uts", "ipc", "pid", "net", "cgroup")


@dataclass(frozen=True)
class HostCaps:
    root: bool
    namespaces: bool
    overlay: bool
    userns: bool
    cgroup_layout: str          # "v1" | "v2" | "hybrid" | "none"
    reasons: tuple[tuple[str, str], ...] = ()   # (feature, why it is missing)

    @property
    def reason_if_missing(self) -> str | None:
        """Why the sandbox cannot run here (None if it can)."""
        return self.missing("root", "namespaces", "overlay")

    def missing(self, *features: str) -> str | None:
        """The reason the first of ``features`` is unavailable, or None."""
        why = dict(self.reasons)
        for feature in features:
            if feature in why:
                return why[feature]
        return None


def _overlay_works() -> str | None:
    tmp = tempfile.mkdtemp(prefix="pybuild-probe-")
    try:
        for name in ("lower", "upper", "work", "merged"):
            os.mkdir(os.path.join(tmp, name))
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                libc.unshare(libc.CLONE_NEWNS)
                libc.mount(None, "/", None, libc.MS_REC | libc.MS_PRIVATE)
                libc.mount("overlay", f"{tmp}/merged", "overlay", 0,
                           f"lowerdir={tmp}/lower,upperdir={tmp}/upper,workdir={tmp}/work")
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        return None if os.waitstatus_to_exitcode(status) == 0 else "cannot mount overlayfs"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _userns_reason() -> str | None:
    try:
        with open("/proc/sys/user/max_user_namespaces") as f:
            if int(f.read()) == 0:
                return "user namespaces are disabled (user.max_user_namespaces=0)"
    except OSError:
        return "no /proc/sys/user/max_user_namespaces"
    return None


@functools.cache
def probe() -> HostCaps:
    reasons: list[tuple[str, str]] = []
    root = os.geteuid() == 0
    if not root:
        reasons.append(("root", "needs root"))
    missing_ns = [n for n in _NAMESPACES if not os.path.exists(f"/proc/self/ns/{n}")]
    if missing_ns:
        reasons.append(("namespaces", f"kernel lacks namespaces: {', '.join(missing_ns)}"))
    overlay_reason = _overlay_works() if root else "overlayfs check needs root"
    if overlay_reason:
        reasons.append(("overlay", overlay_reason))
    userns_reason = _userns_reason()
    if userns_reason:
        reasons.append(("userns", userns_reason))
    layout = cgroups.detect()
    if layout.kind == "none":
        reasons.append(("cgroups", "no cgroup hierarchy is mounted"))
    elif not root:
        reasons.append(("cgroups", "creating cgroups needs root"))
    return HostCaps(root, not missing_ns, overlay_reason is None, userns_reason is None,
                    layout.kind, tuple(reasons))
