"""The few Linux system calls Python 3.11 lacks, bound through ctypes.

Every wrapper raises ``OSError`` with the real errno and a short description of the call,
so the sandbox can turn it into one readable line. Constants are the x86_64/aarch64 values
from the kernel's uapi headers (identical on both for everything used here, except the
syscall numbers, which are chosen per machine below).
"""

from __future__ import annotations

import ctypes
import os
import platform

_libc = ctypes.CDLL(None, use_errno=True)

# unshare(2) / clone(2) flags
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# mount(2) flags
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_STRICTATIME = 1 << 24
MNT_DETACH = 0x2

# prctl(2) options
PR_SET_PDEATHSIG = 1
PR_SET_KEEPCAPS = 8
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4

# The new mount API (429-432) has the same numbers on every architecture.
_NEW_MOUNT_API = {"move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432}
_SYSCALLS = {
    "x86_64": {"pivot_root": 155, "capget": 125, "capset": 126, **_NEW_MOUNT_API},
    "aarch64": {"pivot_root": 41, "capget": 90, "capset": 91, **_NEW_MOUNT_API},
}
FSOPEN_CLOEXEC = 0x1
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6
FSMOUNT_CLOEXEC = 0x1
MOVE_MOUNT_F_EMPTY_PATH = 0x4
AT_FDCWD = -100
_NR = _SYSCALLS.get(platform.machine(), _SYSCALLS["x86_64"])

_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def _b(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0,
          data: str | None = None) -> None:
    result = _libc.mount(_b(source), _b(target), _b(fstype), ctypes.c_ulong(flags), _b(data))
    _check(result, f"mount {fstype or 'bind'} on {target}")


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), ctypes.c_int(flags)), f"umount {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    result = _libc.syscall(ctypes.c_long(_NR["pivot_root"]), _b(new_root), _b(put_old))
    _check(result, "pivot_root")


def prctl(option: int, arg2: int = 0, arg3: int = 0) -> int:
    return _check(
        _libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg2), ctypes.c_ulong(arg3),
                    ctypes.c_ulong(0), ctypes.c_ulong(0)),
        f"prctl({option})",
    )


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Set this thread's capability sets (64-bit masks, as in /proc/self/status)."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in range(2):
        shift = 32 * i
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    result = _libc.syscall(ctypes.c_long(_NR["capset"]), ctypes.byref(header), data)
    _check(result, "capset")


def _syscall(name: str, *args: object) -> int:
    return _check(_libc.syscall(ctypes.c_long(_NR[name]), *args), name)


def _fs_log(fs_fd: int) -> str:
    messages = []
    os.set_blocking(fs_fd, False)
    while True:
        try:
            messages.append(os.read(fs_fd, 1024).decode(errors="replace").strip())
        except OSError:
            return "; ".join(messages) or "no details"


def mount_fsconfig(fstype: str, target: str, options: list[tuple[str, str]]) -> None:
    """Mount with the new mount API (fsopen/fsconfig/fsmount/move_mount).

    Each option is passed on its own, so there is no one-page limit on the total; overlay
    (Linux >= 6.8) takes ``lowerdir+`` once per layer this way.
    """
    fs_fd = _syscall("fsopen", _b(fstype), ctypes.c_uint(FSOPEN_CLOEXEC))
    try:
        for key, value in options:
            _syscall("fsconfig", ctypes.c_int(fs_fd), ctypes.c_uint(FSCONFIG_SET_STRING),
                     _b(key), _b(value), ctypes.c_int(0))
        _syscall("fsconfig", ctypes.c_int(fs_fd), ctypes.c_uint(FSCONFIG_CMD_CREATE),
                 None, None, ctypes.c_int(0))
        mnt_fd = _syscall("fsmount", ctypes.c_int(fs_fd), ctypes.c_uint(FSMOUNT_CLOEXEC),
                          ctypes.c_uint(0))
    except OSError as e:  # the filesystem explains itself in the context's message log
        raise OSError(e.errno, f"{e.strerror} ({_fs_log(fs_fd)})") from e
    finally:
        os.close(fs_fd)
    try:
        _syscall("move_mount", ctypes.c_int(mnt_fd), b"", ctypes.c_int(AT_FDCWD), _b(target),
                 ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH))
    finally:
        os.close(mnt_fd)


def syncfs(fd: int) -> None:
    """Write out everything dirty on the filesystem holding ``fd`` (one call for a tree)."""
    _check(_libc.syncfs(ctypes.c_int(fd)), "syncfs")


# --- joining a running container (pybuild.runner.enter) ---

PR_SET_DUMPABLE = 4


def setns(fd: int, nstype: int = 0) -> None:
    """Move this process into the namespace ``fd`` (an open /proc/PID/ns/* file) refers to.

    glibc has the wrapper, so no per-arch syscall number is needed; ``nstype`` 0 accepts any
    kind, a CLONE_NEW* flag makes the kernel check the fd is that kind.
    """
    _check(_libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), f"setns({nstype:#x})")
