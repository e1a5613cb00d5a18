"""Seccomp as docker applies it: a profile in docker's JSON format, compiled by libseccomp.

The bundled ``seccomp-default.json`` is docker's default profile, the data of
github.com/moby/profiles/seccomp v0.2.3 (``default.json``, as vendored by moby
docker-v29.7.2): an allowlist (everything else fails with EPERM) whose extra rules are
switched on by the container's capabilities (``cap-add SYS_ADMIN`` allows mount, unshare,
clone with namespace flags ...), the host's architecture and kernel version.

What docker (moby's ``setupSeccomp``) and runc (``libcontainer/seccomp``) do, done here:

* rules apply when all ``includes.caps`` are in the capability set, no ``excludes.caps``
  is, the arch is (not) among ``arches``, and the kernel is at least (below)
  ``minKernel``; the arch is docker's name for it (amd64, arm64 ...);
* the filter covers the native arch plus the ``archMap`` sub-arches (x86_64: x86 and
  x32), so a compat entry point cannot bypass it; other arches are killed (libseccomp's
  default);
* syscall names this libseccomp does not know are skipped (the kernel may lack them);
  rules whose action is the default action are skipped (libseccomp refuses them); several
  conditions on one argument become one rule each (any may match), else one rule with all;
* ERRNO and TRACE take ``errnoRet`` (EPERM when absent); no_new_privs is left to the
  sandbox (runc clears libseccomp's NNP attribute the same way).

Compiling docker's profile costs about 8-10 ms (libseccomp 2.5.4: 3 ms adding ~370 rules,
the rest generating ~1000 BPF instructions for three arches). So ``prepare`` (called by
``validate``, before fork) parses a profile once per file version and compiles it once per
capability set, keeping libseccomp's program; the sandbox child's ``install`` then only
loads it (well under 1 ms). The programs are kept in ``CACHE_DIR`` too, so the next
process with the same input to libseccomp reads one instead of compiling (~1 ms). Profiles
with ``flags`` are compiled and loaded in the child by libseccomp itself, which passes the
flags to seccomp(2).
"""

from __future__ import annotations

import ctypes
import errno
import functools
import hashlib
import json
import os
import platform
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from pybuild.errors import RunnerError
from pybuild.runner import libc, libseccomp
from pybuild.runner.caps import normalize
from pybuild.runner.seccomp_profile import (
    OPS,
    Arg,
    Condition,
    Profile,
    ProfileError,
    Rule,
    parse,
)
from pybuild.store.fsutil import atomic_write

__all__ = ["DEFAULT_PROFILE", "Profile", "applicable", "architectures", "compile_filter",
           "install", "kernel_version", "load_profile", "load_program", "prepare",
           "prepared", "program"]

DEFAULT_PROFILE = Path(__file__).with_name("seccomp-default.json")

# platform.machine() -> (docker's arch name, as includes.arches has it; the OCI arch)
_MACHINES = {
    "x86_64": ("amd64", "SCMP_ARCH_X86_64"), "aarch64": ("arm64", "SCMP_ARCH_AARCH64"),
    "i686": ("x86", "SCMP_ARCH_X86"), "i386": ("x86", "SCMP_ARCH_X86"),
    "armv7l": ("arm", "SCMP_ARCH_ARM"), "ppc64le": ("ppc64le", "SCMP_ARCH_PPC64LE"),
    "s390x": ("s390x", "SCMP_ARCH_S390X"), "riscv64": ("riscv64", "SCMP_ARCH_RISCV64"),
    "loongarch64": ("loong64", "SCMP_ARCH_LOONGARCH64"),
}
# OPS is in libseccomp's enum scmp_compare order
_OPS = {name: number for number, name in enumerate(OPS, start=libseccomp.CMP_NE)}
_FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": libseccomp.ATTR_CTL_TSYNC,
    "SECCOMP_FILTER_FLAG_LOG": libseccomp.ATTR_CTL_LOG,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": libseccomp.ATTR_CTL_SSB,
}


def load_profile(source: str | None) -> Profile | None:
    """``"default"`` (docker's profile), a path to a JSON profile, or None/``"unconfined"``
    (None: no filter). Parsed once per file version; RunnerError names the file and fault."""
    if source is None or source == "unconfined":
        return None
    path = DEFAULT_PROFILE if source == "default" else Path(source)
    try:
        st = os.stat(path)
    except OSError as e:
        raise RunnerError(f"seccomp profile {path}: {e.strerror}") from None
    return _load(str(path), st.st_ino, st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _load(path: str, *_version: int) -> Profile | None:
    try:
        text = Path(path).read_text(encoding="utf-8")
        return parse(json.loads(text), path)
    except OSError as e:
        raise RunnerError(f"seccomp profile {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise RunnerError(f"seccomp profile {path}: not UTF-8 text ({e.reason})") from None
    except json.JSONDecodeError as e:
        raise RunnerError(f"seccomp profile {path}:{e.lineno}:{e.colno}: invalid JSON: "
                          f"{e.msg}") from None
    except ProfileError as e:
        raise RunnerError(f"seccomp profile {path}: {e}") from None


def _machine(machine: str | None) -> tuple[str, str]:
    name = machine or platform.machine()
    return _MACHINES.get(name, (name, ""))


def kernel_version(release: str | None = None) -> tuple[int, int]:
    """(major, minor) of ``release`` or the running kernel: "6.1.0-18-amd64" is (6, 1),
    "5.15-rc1" (5, 15); what minKernel and the kmem limits (limits.py) compare against."""
    numbers = re.findall(r"\d+", release or os.uname().release)[:2]
    major, minor = (int(n) for n in numbers + ["0"] * (2 - len(numbers)))
    return major, minor


def _matches(cond: Condition, caps: set[str], arch: str, kernel: tuple[int, int],
             include: bool) -> bool:
    """Includes: every part holds. Excludes: any part holds (the rule is then dropped)."""
    checks = []
    if cond.arches:
        checks.append(arch in cond.arches)
    if cond.caps:
        have = [normalize(c) in caps for c in cond.caps]
        checks.append(all(have) if include else any(have))
    if cond.min_kernel is not None:
        checks.append(kernel >= cond.min_kernel)
    return all(checks) if include else any(checks)


def applicable(profile: Profile, capabilities: Sequence[str], machine: str | None = None,
               kernel: tuple[int, int] | None = None) -> tuple[Rule, ...]:
    """The rules that apply to a container with ``capabilities`` on this host (docker's
    setupSeccomp); ``machine`` (platform.machine() form) and ``kernel`` override the host."""
    caps = {normalize(c) for c in capabilities}
    arch = _machine(machine)[0]
    version = kernel or kernel_version()
    return tuple(rule for rule in profile.rules
                 if not _matches(rule.excludes, caps, arch, version, include=False)
                 and _matches(rule.includes, caps, arch, version, include=True))


def architectures(profile: Profile, machine: str | None = None) -> tuple[str, ...]:
    """The OCI arches the filter covers besides the native one."""
    if profile.architectures:
        return profile.architectures
    native = _machine(machine)[1]
    for arch, subs in profile.arch_map:
        if arch == native:
            return (arch, *subs)
    return ()


def _action(name: str, errno_ret: int | None) -> int:
    ret = errno.EPERM if errno_ret is None else errno_ret
    return {
        "SCMP_ACT_ALLOW": libseccomp.ACT_ALLOW, "SCMP_ACT_ERRNO": libseccomp.act_errno(ret),
        "SCMP_ACT_KILL": libseccomp.ACT_KILL_THREAD,
        "SCMP_ACT_KILL_THREAD": libseccomp.ACT_KILL_THREAD,
        "SCMP_ACT_KILL_PROCESS": libseccomp.ACT_KILL_PROCESS,
        "SCMP_ACT_TRAP": libseccomp.ACT_TRAP, "SCMP_ACT_TRACE": libseccomp.act_trace(ret),
        "SCMP_ACT_LOG": libseccomp.ACT_LOG,
    }[name]


def _conditions(args: tuple[Arg, ...]) -> list[list[tuple[int, int, int, int]]]:
    """The condition lists to add one rule each for (runc's rule: AND, unless one argument
    is compared more than once, then one rule per comparison)."""
    conds = [(a.index, _OPS[a.op], a.value, a.value_two) for a in args]
    if any(n > 1 for n in Counter(a.index for a in args).values()):
        return [[c] for c in conds]
    return [conds]


def compile_filter(profile: Profile, capabilities: Sequence[str]) -> libseccomp.Filter:
    """The libseccomp filter for ``profile`` and a container with ``capabilities``; the
    caller loads (or exports) and releases it."""
    default = _action(profile.default_action, profile.default_errno_ret)
    f = libseccomp.Filter(default)
    try:
        f.set_attr(libseccomp.ATTR_CTL_NNP, 0)  # no_new_privs is the sandbox's (step 15)
        for flag in profile.flags:
            f.set_attr(_FLAGS[flag], 1)
        for arch in architectures(profile):
            token = libseccomp.arch_token(arch[len("SCMP_ARCH_"):].lower())
            if not token:
                raise OSError(errno.EINVAL, f"libseccomp does not know {arch}")
            f.add_arch(token)
        for rule in applicable(profile, capabilities):
            _add_rule(f, rule, default)
    except BaseException:
        f.release()
        raise
    return f


def _add_rule(f: libseccomp.Filter, rule: Rule, default: int) -> None:
    action = _action(rule.action, rule.errno_ret)
    if action == default:
        return
    for name in rule.names:
        number = libseccomp.syscall_number(name)
        if number == libseccomp.NR_ERROR:
            continue
        for conds in _conditions(rule.args):
            try:
                f.add_rule(action, number, conds)
            except OSError as e:
                raise OSError(e.errno, f"seccomp rule for {name}: {e.strerror}") from None


_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2
_MAX_PROGRAMS = 64
# Filled before fork, read after it (where the profile's file may be out of reach):
# source -> its profile, and (profile, capability set) -> libseccomp's compiled program.
_prepared: dict[str | None, Profile | None] = {}
_programs: dict[tuple[Profile, frozenset[str]], bytes] = {}


def _key(profile: Profile, capabilities: Sequence[str]) -> tuple[Profile, frozenset[str]]:
    return profile, frozenset(normalize(c) for c in capabilities)


def prepare(source: str | None, capabilities: Sequence[str]) -> Profile | None:
    """``load_profile`` plus compiling it for ``capabilities`` now, in the caller, so that
    ``install`` in the sandbox child only has to load the program; RunnerError when
    libseccomp refuses the profile."""
    profile = load_profile(source)
    if len(_prepared) >= _MAX_PROGRAMS:
        _prepared.clear()
    _prepared[source] = profile
    if profile is None or profile.flags:
        return profile
    key = _key(profile, capabilities)
    if key not in _programs:
        try:
            program = _compiled(profile, capabilities)
        except OSError as e:
            raise RunnerError(f"seccomp profile {profile.source}: {e.strerror}") from None
        if len(_programs) >= _MAX_PROGRAMS:
            _programs.clear()
        _programs[key] = program
    return profile


# libseccomp's programs, kept across processes: compiling docker's profile costs more than
# the rest of a container's start. Under /run (a tmpfs), so a reboot, maybe into another
# kernel, starts afresh; root's only.
CACHE_DIR = Path("/run/pybuild/seccomp")


def _compiled(profile: Profile, capabilities: Sequence[str]) -> bytes:
    """libseccomp's program for ``profile`` and ``capabilities``, from the cache when
    libseccomp would be called with the very same input (its version, the arches, default
    action and rules that apply, and this code), else compiled and cached."""
    inputs = (profile.default_action, profile.default_errno_ret, architectures(profile),
              applicable(profile, capabilities), libseccomp.version(), _code_digest())
    path = CACHE_DIR / f"{hashlib.sha256(repr(inputs).encode()).hexdigest()}.bpf"
    try:
        program = path.read_bytes()
        if program and len(program) % 8 == 0:  # whole sock_filter entries
            return program
    except OSError:
        pass
    with compile_filter(profile, capabilities) as f:
        program = f.export_bpf()
    try:
        os.makedirs(CACHE_DIR, mode=0o700, exist_ok=True)
        atomic_write(path, program, mode=0o600, durable=False)
    except OSError:  # no cache then, only slower
        pass
    return program


@functools.lru_cache(maxsize=1)
def _code_digest() -> str:
    """This module's and the binding's source: what turns a profile into libseccomp calls."""
    digest = hashlib.sha256()
    for module in (__file__, libseccomp.__file__):
        digest.update(Path(module).read_bytes())
    return digest.hexdigest()


def prepared(source: str | None) -> Profile | None:
    """The profile ``prepare`` loaded for ``source`` in this process (or a forked parent),
    without touching the filesystem; else ``load_profile(source)``."""
    if source in _prepared:
        return _prepared[source]
    return load_profile(source)


class _Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def program(profile: Profile, capabilities: Sequence[str]) -> bytes | None:
    """The BPF program ``prepare`` compiled for ``capabilities`` (to hand to a process that
    cannot share this one's memory, as exec's helper); None for a profile with flags."""
    return _programs.get(_key(profile, capabilities))


def load_program(program: bytes) -> None:
    """Apply a program from ``program``; as ``install``, it needs no_new_privs or
    CAP_SYS_ADMIN."""
    buf = ctypes.create_string_buffer(program, len(program))
    prog = _Fprog(len(program) // 8, ctypes.addressof(buf))  # 8 bytes per sock_filter
    libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(prog))


def install(profile: Profile, capabilities: Sequence[str]) -> None:
    """Apply ``profile`` for ``capabilities`` to this process (and what it execs): the
    program ``prepare`` compiled, else compiled now. Needs no_new_privs or CAP_SYS_ADMIN."""
    program = _programs.get(_key(profile, capabilities))
    if program is not None:
        load_program(program)
        return
    with compile_filter(profile, capabilities) as f:
        f.load()
