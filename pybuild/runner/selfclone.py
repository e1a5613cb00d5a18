"""A sealed in-memory copy of this Python interpreter, for processes that enter containers.

CVE-2019-5736: a process inside a container whose ``/proc/self/exe`` is the host's
interpreter hands it to the container: an image's ``#!/proc/self/exe`` script makes the
kernel exec that very binary inside the container (with the image's loader and libraries),
which can then open it through /proc and, once it no longer runs, write it. runc's answer
(``cloned_binary.c``) is to run from a memfd copy sealed against writes; here too: the exec
helper runs from this copy, so what the container can reach is an anonymous file nobody
can change, never the host's binary.
"""

from __future__ import annotations

import fcntl
import os
import sys

from pybuild.errors import RunnerError

_SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
_clone: int | None = None  # per process (a forked child shares it: it is immutable)


def interpreter_path() -> str:
    return os.path.realpath(sys.executable)


def sealed_interpreter() -> int:
    """A close-on-exec fd of the sealed copy (made once per process), for ``os.execve``."""
    global _clone
    if _clone is None:
        _clone = _make(interpreter_path())
    return _clone


def _make(path: str) -> int:
    try:
        fd = os.memfd_create("pybuild-python", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    except OSError as e:
        raise RunnerError(f"memfd_create: {e.strerror} (needed to run exec safely)") from None
    try:
        with open(path, "rb") as src:
            size = os.fstat(src.fileno()).st_size
            done = 0
            while done < size:
                sent = os.sendfile(fd, src.fileno(), done, size - done)
                if sent == 0:
                    raise RunnerError(f"{path} shrank while being copied")
                done += sent
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS)
    except OSError as e:
        os.close(fd)
        raise RunnerError(f"copying the interpreter {path}: {e.strerror}") from None
    except BaseException:
        os.close(fd)
        raise
    return fd
