"""Docker's seccomp profile format as the OCI ``linux.seccomp`` object.

Docker's profile (moby profiles/seccomp/default.json) is the OCI object plus what the
daemon resolves before it writes config.json, and so does ``seccomp_to_oci``, with the
rule selection the sandbox's own filter uses (seccomp.py), so runc and the sandbox apply
the same rules:

* ``archMap``: the native architecture's entry gives ``architectures`` (it and its
  sub-architectures, e.g. x86_64 with x86 and x32); other entries are dropped;
* ``includes``/``excludes`` on a syscall group: by ``arches``, ``caps`` and ``minKernel``;
* ``name`` as a one-element ``names``; ``comment`` is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pybuild.runner import seccomp
from pybuild.runner.seccomp_profile import Profile, Rule


def seccomp_to_oci(profile: Profile, capabilities: Iterable[str], *,
                   machine: str | None = None,
                   kernel: tuple[int, int] | None = None) -> dict[str, Any]:
    """The OCI seccomp object for a container with bounding set ``capabilities``.

    ``machine`` (platform.machine()'s form: x86_64, aarch64 ...) and ``kernel`` default to
    this host's.
    """
    out: dict[str, Any] = {"defaultAction": profile.default_action}
    if profile.default_errno_ret is not None:
        out["defaultErrnoRet"] = profile.default_errno_ret
    if profile.flags:
        out["flags"] = list(profile.flags)
    out["architectures"] = list(seccomp.architectures(profile, machine))
    rules = seccomp.applicable(profile, tuple(capabilities), machine, kernel)
    out["syscalls"] = [_syscall(rule) for rule in rules]
    return out


def _syscall(rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {"names": list(rule.names), "action": rule.action}
    if rule.errno_ret is not None:
        out["errnoRet"] = rule.errno_ret
    if rule.args:
        out["args"] = [{"index": a.index, "value": a.value, "valueTwo": a.value_two,
                        "op": a.op} for a in rule.args]
    return out
