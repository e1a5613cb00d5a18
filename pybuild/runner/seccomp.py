"""A small seccomp filter: the part of docker's default profile that capabilities do not cover.

Docker's profile is an allowlist of ~350 syscalls; most of what it leaves out already needs a
capability the sandbox does not have (mount, kexec, modules, clock, swap ...). What an
unprivileged process could still do, and docker forbids, is denied here:

* new user namespaces (``unshare``/``clone`` with CLONE_NEWUSER): the door to most
  namespace-based kernel exploits; ``clone3`` gets ENOSYS so libc falls back to ``clone``,
  whose flags a filter can see (docker does the same);
* the kernel keyring (``add_key``, ``request_key``, ``keyctl``): not namespaced;
* ``userfaultfd``, ``perf_event_open``, ``bpf`` and io_uring (docker blocks io_uring too);
* the x32 ABI, and on x86_64 the same list for the i386 ABI, so the list cannot be bypassed
  through a compat entry point. Unknown architectures get ENOSYS for everything.

Installed last before exec (after no_new_privs, which lets it be installed without
CAP_SYS_ADMIN), like runc.
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct

from pybuild.runner import libc

_LD_W_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2
_OFF_NR, _OFF_ARCH, _OFF_ARG0 = 0, 4, 16
_X32_BIT = 0x40000000

# (audit arch, {denied syscall numbers}, clone3, unshare, clone)
_ARCHES = {
    "x86_64": (0xC000003E, {248, 249, 250, 323, 298, 321, 425, 426, 427}, 435, 272, 56),
    "i386": (0x40000003, {286, 287, 288, 374, 336, 357, 425, 426, 427}, 435, 310, 120),
    "aarch64": (0xC00000B7, {217, 218, 219, 282, 241, 280, 425, 426, 427}, 435, 97, 220),
}
_NATIVE = {"x86_64": ("x86_64", "i386"), "aarch64": ("aarch64",)}


class _Asm:
    """Just enough of a BPF assembler: instructions with jumps to named labels."""

    def __init__(self) -> None:
        self.code: list[tuple[int, int, str | None, str | None]] = []
        self.labels: dict[str, int] = {}

    def op(self, code: int, k: int, jt: str | None = None, jf: str | None = None) -> None:
        self.code.append((code, k, jt, jf))

    def label(self, name: str) -> None:
        self.labels[name] = len(self.code)

    def assemble(self) -> bytes:
        out = b""
        for i, (code, k, jt, jf) in enumerate(self.code):
            offsets = [0 if t is None else self.labels[t] - i - 1 for t in (jt, jf)]
            out += struct.pack("HBBI", code, offsets[0], offsets[1], k & 0xFFFFFFFF)
        return out


def _arch_block(asm: _Asm, name: str) -> None:
    _, denied, clone3, unshare, clone = _ARCHES[name]
    asm.label(name)
    asm.op(_LD_W_ABS, _OFF_NR)
    if name == "x86_64":
        asm.op(_JGE, _X32_BIT, "enosys", None)
    for nr in sorted(denied):
        asm.op(_JEQ, nr, "eperm", None)
    asm.op(_JEQ, clone3, "enosys", None)
    asm.op(_JEQ, unshare, "flags", None)
    asm.op(_JEQ, clone, "flags", None)
    asm.op(_RET, _RET_ALLOW)


def program(machine: str | None = None) -> bytes:
    """The filter for this machine (or ``machine``), as raw sock_filter structs."""
    asm = _Asm()
    arches = _NATIVE.get(machine or platform.machine(), ())
    asm.op(_LD_W_ABS, _OFF_ARCH)
    for name in arches:
        asm.op(_JEQ, _ARCHES[name][0], name, None)
    asm.op(_RET, _RET_ERRNO | errno.ENOSYS)
    for name in arches:
        _arch_block(asm, name)
    asm.label("flags")  # unshare/clone: refuse only when a user namespace is asked for
    asm.op(_LD_W_ABS, _OFF_ARG0)
    asm.op(_JSET, libc.CLONE_NEWUSER, "eperm", None)
    asm.op(_RET, _RET_ALLOW)
    asm.label("eperm")
    asm.op(_RET, _RET_ERRNO | errno.EPERM)
    asm.label("enosys")
    asm.op(_RET, _RET_ERRNO | errno.ENOSYS)
    return asm.assemble()


class _Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install() -> None:
    """Apply the filter to this thread (and everything it execs); needs no_new_privs or
    CAP_SYS_ADMIN."""
    code = program()
    buf = ctypes.create_string_buffer(code, len(code))
    prog = _Fprog(len(code) // 8, ctypes.addressof(buf))
    libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(prog))
