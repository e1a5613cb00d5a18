"""Docker's seccomp profile format as the OCI ``linux.seccomp`` object.

Docker's profile (moby profiles/seccomp/default.json) is the OCI object plus three things
the daemon resolves before it writes config.json, and so does ``seccomp_to_oci``:

* ``archMap``: the native architecture's entry gives ``architectures`` (it and its
  sub-architectures, e.g. x86_64 with x86 and x32); other entries are dropped;
* ``includes``/``excludes`` on a syscall group: by ``arches`` (Go's names, "amd64"),
  ``caps`` (checked against the bounding set) and ``minKernel`` ("5.8");
* ``name`` as a one-element ``names``; ``comment`` is dropped.
"""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Iterable
from typing import Any

from pybuild.errors import RunnerError
from pybuild.runner.caps import normalize

# platform.machine() -> (the arch name docker's profile uses in includes/excludes, moby's
# goToNative of GOARCH; the OCI/libseccomp name of its archMap entry).
_ARCHES = {
    "x86_64": ("amd64", "SCMP_ARCH_X86_64"), "amd64": ("amd64", "SCMP_ARCH_X86_64"),
    "i386": ("x86", "SCMP_ARCH_X86"), "i686": ("x86", "SCMP_ARCH_X86"),
    "aarch64": ("arm64", "SCMP_ARCH_AARCH64"), "arm64": ("arm64", "SCMP_ARCH_AARCH64"),
    "armv7l": ("arm", "SCMP_ARCH_ARM"), "ppc64le": ("ppc64le", "SCMP_ARCH_PPC64LE"),
    "s390x": ("s390x", "SCMP_ARCH_S390X"), "riscv64": ("riscv64", "SCMP_ARCH_RISCV64"),
    "mips64": ("mips64", "SCMP_ARCH_MIPS64"), "loongarch64": ("loong64", "SCMP_ARCH_LOONGARCH64"),
}
_COPIED = ("defaultAction", "defaultErrnoRet", "flags", "listenerPath", "listenerMetadata")


def native_arch() -> tuple[str, str]:
    """(Go arch name, libseccomp arch name) of this machine."""
    machine = platform.machine()
    try:
        return _ARCHES[machine]
    except KeyError:
        raise RunnerError(f"seccomp: unknown machine architecture {machine!r}") from None


def _kernel() -> tuple[int, int]:
    match = re.match(r"(\d+)\.(\d+)", os.uname().release)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def _version(text: str, where: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)\.(\d+)", str(text))
    if not match:
        raise RunnerError(f"seccomp profile: {where}: minKernel {text!r} is not MAJOR.MINOR")
    return int(match.group(1)), int(match.group(2))


def seccomp_to_oci(profile_json: dict[str, Any], capabilities: Iterable[str], *,
                   arch: tuple[str, str] | None = None,
                   kernel: tuple[int, int] | None = None) -> dict[str, Any]:
    """The OCI seccomp object for a container with bounding set ``capabilities``.

    ``arch`` (Go name, libseccomp name) and ``kernel`` default to this machine's.
    """
    if not isinstance(profile_json, dict) or "defaultAction" not in profile_json:
        raise RunnerError("seccomp profile: not an object with a defaultAction")
    go_arch, scmp_arch = arch or native_arch()
    kernel = kernel or _kernel()
    caps = {f"CAP_{normalize(c)}" for c in capabilities}
    out = {k: profile_json[k] for k in _COPIED if k in profile_json}
    arch_map = profile_json.get("archMap") or []
    if arch_map and profile_json.get("architectures"):
        raise RunnerError("seccomp profile: both architectures and archMap are given")
    out["architectures"] = list(profile_json.get("architectures") or [])
    for entry in arch_map:
        if entry.get("architecture") == scmp_arch:
            out["architectures"] += [scmp_arch, *(entry.get("subArchitectures") or [])]
    calls = []
    for i, call in enumerate(profile_json.get("syscalls") or []):
        where = f"syscalls[{i}]"
        if _wanted(call, go_arch, caps, kernel, where):
            calls.append(_syscall(call, where))
    out["syscalls"] = calls
    return out


def _wanted(call: dict[str, Any], go_arch: str, caps: set[str], kernel: tuple[int, int],
            where: str) -> bool:
    """Docker's filter: any exclude that matches drops the group, every include must hold."""
    exc = call.get("excludes") or {}
    if go_arch in (exc.get("arches") or []):
        return False
    if any(f"CAP_{normalize(c)}" in caps for c in exc.get("caps") or []):
        return False
    if exc.get("minKernel") and kernel >= _version(exc["minKernel"], where):
        return False
    inc = call.get("includes") or {}
    if inc.get("arches") and go_arch not in inc["arches"]:
        return False
    if not all(f"CAP_{normalize(c)}" in caps for c in inc.get("caps") or []):
        return False
    return not (inc.get("minKernel") and kernel < _version(inc["minKernel"], where))


def _syscall(call: dict[str, Any], where: str) -> dict[str, Any]:
    names = list(call.get("names") or [])
    if call.get("name"):
        if names:
            raise RunnerError(f"seccomp profile: {where}: both name and names are given")
        names = [call["name"]]
    if not names or "action" not in call:
        raise RunnerError(f"seccomp profile: {where}: needs names and an action")
    out: dict[str, Any] = {"names": names, "action": call["action"]}
    if call.get("errnoRet") is not None:
        out["errnoRet"] = call["errnoRet"]
    if call.get("args"):
        out["args"] = [{k: a[k] for k in ("index", "value", "valueTwo", "op") if k in a}
                       for a in call["args"]]
    return out
