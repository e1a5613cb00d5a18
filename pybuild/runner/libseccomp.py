"""A thin ctypes binding of libseccomp 2.5: just what compiling a docker profile needs.

Values are libseccomp's (seccomp.h): actions are the kernel's SECCOMP_RET_* words, the
comparison ops and filter attributes its enums. Every call that fails raises ``OSError``
with libseccomp's (negative errno) result turned back into an errno.

The library is opened on import, in the caller: the sandbox child only calls into it.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Sequence

ACT_KILL_PROCESS = 0x80000000
ACT_KILL_THREAD = 0x00000000
ACT_TRAP = 0x00030000
ACT_LOG = 0x7FFC0000
ACT_ALLOW = 0x7FFF0000


def act_errno(value: int) -> int:
    return 0x00050000 | (value & 0xFFFF)


def act_trace(value: int) -> int:
    return 0x7FF00000 | (value & 0xFFFF)


# enum scmp_compare
CMP_NE, CMP_LT, CMP_LE, CMP_EQ, CMP_GE, CMP_GT, CMP_MASKED_EQ = range(1, 8)

# enum scmp_filter_attr
ATTR_CTL_NNP = 3
ATTR_CTL_TSYNC = 4
ATTR_CTL_LOG = 6
ATTR_CTL_SSB = 7

NR_ERROR = -1  # __NR_SCMP_ERROR: a name libseccomp does not know


class ArgCmp(ctypes.Structure):
    """struct scmp_arg_cmp; for MASKED_EQ datum_a is the mask, datum_b the value."""

    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


def _open() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libseccomp.so.2")
    except OSError:
        pass
    # only now: find_library runs ``ldconfig -p``, a process, and ctypes.util loads subprocess
    from ctypes.util import find_library

    name = find_library("seccomp")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


_lib = _open()
if _lib is not None:
    _lib.seccomp_init.restype = ctypes.c_void_p
    _lib.seccomp_init.argtypes = [ctypes.c_uint32]
    _lib.seccomp_release.restype = None
    _lib.seccomp_release.argtypes = [ctypes.c_void_p]
    _lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    _lib.seccomp_arch_native.restype = ctypes.c_uint32
    _lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
    _lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
    _lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    _lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint, ctypes.POINTER(ArgCmp)]
    _lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
    _lib.seccomp_load.argtypes = [ctypes.c_void_p]
    _lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]


class _Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]


def version() -> tuple[int, int, int]:
    """libseccomp's own (major, minor, micro), as seccomp_version() reports it."""
    lib = _need()
    lib.seccomp_version.restype = ctypes.POINTER(_Version)
    v = lib.seccomp_version().contents
    return v.major, v.minor, v.micro


def available() -> str | None:
    """None when libseccomp can be used, else why not."""
    return None if _lib is not None else "libseccomp.so.2 not found"


def _need() -> ctypes.CDLL:
    if _lib is None:
        raise OSError(errno.ENOSYS, "libseccomp.so.2 not found")
    return _lib


def _check(rc: int, what: str) -> int:
    if rc < 0:
        raise OSError(-rc, f"{what}: {os.strerror(-rc)}")
    return rc


def arch_token(name: str) -> int:
    """libseccomp's token for an arch name ("x86_64", "x32", "aarch64" ...); 0 if unknown."""
    return _need().seccomp_arch_resolve_name(name.encode())


def syscall_number(name: str) -> int:
    """The native number (or libseccomp's negative pseudo number) of a syscall; NR_ERROR
    when libseccomp does not know the name."""
    return _need().seccomp_syscall_resolve_name(name.encode())


class Filter:
    """A filter context: rules go in, ``load`` compiles and applies it to this thread."""

    def __init__(self, default_action: int):
        self._ctx = _need().seccomp_init(default_action)
        if not self._ctx:
            raise OSError(errno.EINVAL, f"seccomp_init({default_action:#x}) failed")

    def __enter__(self) -> Filter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        if self._ctx:
            _need().seccomp_release(self._ctx)
            self._ctx = None

    def set_attr(self, attr: int, value: int) -> None:
        _check(_need().seccomp_attr_set(self._ctx, attr, value), f"seccomp_attr_set({attr})")

    def add_arch(self, token: int) -> None:
        rc = _need().seccomp_arch_add(self._ctx, token)
        if rc != -errno.EEXIST:  # the native arch is in every new filter already
            _check(rc, f"seccomp_arch_add({token:#x})")

    def add_rule(self, action: int, syscall: int,
                 conditions: Sequence[tuple[int, int, int, int]] = ()) -> None:
        """One rule; ``conditions`` are (arg index, op, datum_a, datum_b), all of which
        must hold."""
        array = (ArgCmp * max(1, len(conditions)))(*(ArgCmp(*c) for c in conditions))
        rc = _need().seccomp_rule_add_array(self._ctx, action, syscall, len(conditions), array)
        _check(rc, f"seccomp_rule_add(syscall {syscall})")

    def load(self) -> None:
        _check(_need().seccomp_load(self._ctx), "seccomp_load")

    def export_bpf(self) -> bytes:
        """The compiled program (sock_filter structs), as ``load`` would install it."""
        fd = os.memfd_create("pybuild-seccomp")  # a pipe could fill up and block the export
        try:
            _check(_need().seccomp_export_bpf(self._ctx, fd), "seccomp_export_bpf")
            return os.pread(fd, os.fstat(fd).st_size, 0)
        finally:
            os.close(fd)
