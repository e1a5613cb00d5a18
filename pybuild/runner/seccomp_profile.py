"""Docker's seccomp profile format as frozen data: parse (with one-line errors) and dump.

The format is moby's ``profiles/seccomp`` JSON: ``defaultAction``, ``defaultErrnoRet``,
``archMap`` (or a plain ``architectures`` list), ``flags`` and ``syscalls``, each rule with
``names`` (or the old ``name``), ``action``, ``errnoRet``, ``args`` (``index``, ``value``,
``valueTwo``, ``op``) and ``includes``/``excludes`` (``caps``, ``arches``, ``minKernel``).
Keys match case-insensitively and null counts as absent, as Go's encoding/json reads them;
unknown keys (``comment``) are ignored. Nothing here calls libseccomp.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

ACTIONS = (
    "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_TRACE", "SCMP_ACT_LOG",
)
OPS = (
    "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
)
# The OCI runtime-spec's arch names; libseccomp's own name is the lower-cased tail.
ARCHES = tuple(f"SCMP_ARCH_{a}" for a in (
    "X86", "X86_64", "X32", "ARM", "AARCH64", "LOONGARCH64", "M68K", "MIPS", "MIPS64",
    "MIPS64N32", "MIPSEL", "MIPSEL64", "MIPSEL64N32", "PPC", "PPC64", "PPC64LE", "S390",
    "S390X", "PARISC", "PARISC64", "RISCV64", "SH", "SHEB",
))
FLAGS = ("SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW")
_U64 = 2**64 - 1


@dataclass(frozen=True)
class Arg:
    """A comparison of syscall argument ``index``; for MASKED_EQ ``value`` is the mask."""

    index: int
    value: int
    op: str
    value_two: int = 0


@dataclass(frozen=True)
class Condition:
    """Docker's includes/excludes: the container's caps, the host's arch and kernel."""

    caps: tuple[str, ...] = ()
    arches: tuple[str, ...] = ()            # docker's names: amd64, arm64, x86, s390x ...
    min_kernel: tuple[int, int] | None = None

    def empty(self) -> bool:
        return not self.caps and not self.arches and self.min_kernel is None


@dataclass(frozen=True)
class Rule:
    names: tuple[str, ...]
    action: str
    errno_ret: int | None = None
    args: tuple[Arg, ...] = ()
    includes: Condition = Condition()
    excludes: Condition = Condition()


@dataclass(frozen=True)
class Profile:
    default_action: str
    rules: tuple[Rule, ...] = ()
    default_errno_ret: int | None = None
    arch_map: tuple[tuple[str, tuple[str, ...]], ...] = ()   # (arch, its sub-arches)
    architectures: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    source: str = field(default="<profile>", compare=False)


class ProfileError(ValueError):
    """What is wrong and where (``syscalls[3].action: ...``); seccomp.py adds the file."""


def _fields(obj: object, where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise ProfileError(f"{where or 'profile'}: expected an object, got {_show(obj)}")
    return {k.lower(): v for k, v in obj.items() if v is not None}


def _show(value: object) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _typed(value: object, kind: type, where: str) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = {str: "a string", int: "an integer", list: "a list"}
        raise ProfileError(f"{where}: expected {names[kind]}, got {_show(value)}")
    return value


def _int(value: object, where: str, high: int) -> int:
    number = _typed(value, int, where)
    if not 0 <= number <= high:
        raise ProfileError(f"{where}: {number} is out of range 0..{high}")
    return number


def _strings(value: object, where: str) -> tuple[str, ...]:
    items = _typed(value, list, where)
    return tuple(_typed(item, str, f"{where}[{i}]") for i, item in enumerate(items))


def _choice(value: object, allowed: tuple[str, ...], what: str, where: str) -> str:
    text = _typed(value, str, where)
    if text not in allowed:
        raise ProfileError(f"{where}: unknown {what} {text!r}")
    return text


def _kernel(value: object, where: str) -> tuple[int, int] | None:
    text = _typed(value, str, where)
    if text == "":
        return None
    parts = text.split(".")
    if len(parts) != 2 or not all(p.isdigit() and int(p) < 256 for p in parts):
        raise ProfileError(f'{where}: kernel version {text!r}, expected "<kernel>.<major>"')
    version = (int(parts[0]), int(parts[1]))
    if version == (0, 0):
        raise ProfileError(f"{where}: kernel version cannot be 0.0")
    return version


def _condition(obj: object, where: str) -> Condition:
    f = _fields(obj, where)
    return Condition(
        caps=_strings(f.get("caps", []), f"{where}.caps"),
        arches=_strings(f.get("arches", []), f"{where}.arches"),
        min_kernel=_kernel(f["minkernel"], f"{where}.minKernel") if "minkernel" in f else None,
    )


def _arg(obj: object, where: str) -> Arg:
    f = _fields(obj, where)
    for key in ("index", "op"):
        if key not in f:
            raise ProfileError(f"{where}: {key} is missing")
    return Arg(
        index=_int(f["index"], f"{where}.index", 5),
        value=_int(f.get("value", 0), f"{where}.value", _U64),
        value_two=_int(f.get("valuetwo", 0), f"{where}.valueTwo", _U64),
        op=_choice(f["op"], OPS, "op", f"{where}.op"),
    )


def _action(value: object, where: str) -> str:
    if value == "SCMP_ACT_NOTIFY":
        raise ProfileError(f"{where}: SCMP_ACT_NOTIFY is not supported (it needs a listener)")
    return _choice(value, ACTIONS, "action", where)


def _rule(obj: object, where: str) -> Rule:
    f = _fields(obj, where)
    if "name" in f and f.get("names"):
        raise ProfileError(f"{where}: both 'name' and 'names' are given, use 'names'")
    names = ((_typed(f["name"], str, f"{where}.name"),) if "name" in f
             else _strings(f.get("names", []), f"{where}.names"))
    if "action" not in f:
        raise ProfileError(f"{where}: action is missing")
    args = _typed(f.get("args", []), list, f"{where}.args")
    return Rule(
        names=names,
        action=_action(f["action"], f"{where}.action"),
        errno_ret=_int(f["errnoret"], f"{where}.errnoRet", 0xFFFF) if "errnoret" in f else None,
        args=tuple(_arg(a, f"{where}.args[{i}]") for i, a in enumerate(args)),
        includes=_condition(f.get("includes", {}), f"{where}.includes"),
        excludes=_condition(f.get("excludes", {}), f"{where}.excludes"),
    )


def _arch_map(value: object, where: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    out = []
    for i, entry in enumerate(_typed(value, list, where)):
        f = _fields(entry, f"{where}[{i}]")
        arch = _choice(f.get("architecture"), ARCHES, "architecture",
                       f"{where}[{i}].architecture")
        subs = _strings(f.get("subarchitectures", []), f"{where}[{i}].subArchitectures")
        for j, sub in enumerate(subs):
            _choice(sub, ARCHES, "architecture", f"{where}[{i}].subArchitectures[{j}]")
        out.append((arch, subs))
    return tuple(out)


def parse(data: object, source: str = "<profile>") -> Profile | None:
    """The profile in ``data`` (decoded JSON); None for one with neither a default action
    nor rules, which docker reads as "no seccomp"."""
    f = _fields(data, "")
    if not f.get("defaultaction") and not f.get("syscalls"):
        return None
    if f.get("architectures") and f.get("archmap"):
        raise ProfileError("both 'architectures' and 'archMap' are given, use one")
    if "defaultaction" not in f:
        raise ProfileError("defaultAction is missing")
    syscalls = _typed(f.get("syscalls", []), list, "syscalls")
    errno_ret = f.get("defaulterrnoret")
    return Profile(
        default_action=_action(f["defaultaction"], "defaultAction"),
        default_errno_ret=None if errno_ret is None else _int(errno_ret, "defaultErrnoRet", 0xFFFF),
        arch_map=_arch_map(f.get("archmap", []), "archMap"),
        architectures=tuple(_choice(a, ARCHES, "architecture", f"architectures[{i}]")
                            for i, a in enumerate(_strings(f.get("architectures", []),
                                                           "architectures"))),
        flags=tuple(_choice(x, FLAGS, "flag", f"flags[{i}]")
                    for i, x in enumerate(_strings(f.get("flags", []), "flags"))),
        rules=tuple(_rule(r, f"syscalls[{i}]") for i, r in enumerate(syscalls)),
        source=source,
    )


def _dump_condition(c: Condition) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if c.caps:
        out["caps"] = list(c.caps)
    if c.arches:
        out["arches"] = list(c.arches)
    if c.min_kernel is not None:
        out["minKernel"] = f"{c.min_kernel[0]}.{c.min_kernel[1]}"
    return out


def _dump_rule(r: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {"names": list(r.names), "action": r.action}
    if r.errno_ret is not None:
        out["errnoRet"] = r.errno_ret
    if r.args:
        out["args"] = [{"index": a.index, "value": a.value, "valueTwo": a.value_two, "op": a.op}
                       for a in r.args]
    for key, cond in (("includes", r.includes), ("excludes", r.excludes)):
        if not cond.empty():
            out[key] = _dump_condition(cond)
    return out


def dump(profile: Profile) -> dict[str, Any]:
    """The profile in docker's JSON shape (``parse(dump(p)) == p``)."""
    out: dict[str, Any] = {"defaultAction": profile.default_action}
    if profile.default_errno_ret is not None:
        out["defaultErrnoRet"] = profile.default_errno_ret
    if profile.arch_map:
        out["archMap"] = [{"architecture": a, "subArchitectures": list(s)}
                          for a, s in profile.arch_map]
    if profile.architectures:
        out["architectures"] = list(profile.architectures)
    if profile.flags:
        out["flags"] = list(profile.flags)
    out["syscalls"] = [_dump_rule(r) for r in profile.rules]
    return out
