"""Storage for ``RUN --mount=type=cache``: persistent directories under ``ROOT/cache/mounts/``.

Each cache id gets ``<name>/`` (the data) and ``<name>.lock`` (an flock file), where name is a
hash of the id so any id is a safe file name. Sharing modes, as BuildKit's:

- ``shared``: every user mounts the same directory at once (a shared flock, so that a
  ``locked`` user waits for them and they wait for it);
- ``locked``: one user at a time (an exclusive flock, waited for);
- ``private``: the directory if nobody uses it, else a fresh empty directory for this user,
  removed afterwards.

uid, gid and mode apply when the directory is created; an existing directory keeps its own.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from pybuild.errors import LockTimeout, UsageError

SHARING_MODES = ("shared", "private", "locked")
_POLL_SECONDS = 0.05


class CacheMounts:
    """Cache-mount directories of one store root."""

    def __init__(self, root: str | os.PathLike[str]):
        self.dir = Path(root) / "cache" / "mounts"

    def path(self, cache_id: str) -> Path:
        return self.dir / _name(cache_id)

    @contextlib.contextmanager
    def acquire(self, cache_id: str, *, sharing: str = "shared", uid: int = 0, gid: int = 0,
                mode: int = 0o755, timeout: float | None = None) -> Iterator[Path]:
        """The directory to mount for ``cache_id`` while the ``with`` block runs."""
        if sharing not in SHARING_MODES:
            raise UsageError(f"unsupported cache mount sharing {sharing!r}")
        self.dir.mkdir(parents=True, exist_ok=True)
        lock_path = self.dir / f"{_name(cache_id)}.lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            if sharing == "private" and not _try_lock(fd, fcntl.LOCK_EX):
                with self._private(cache_id, uid, gid, mode) as fresh:
                    yield fresh
                return
            if sharing != "private":
                shared = fcntl.LOCK_SH if sharing == "shared" else fcntl.LOCK_EX
                _lock(fd, shared, timeout, cache_id)
            yield self._ensure(cache_id, uid, gid, mode)
        finally:
            os.close(fd)  # closing drops the flock

    def remove(self, cache_id: str) -> None:
        shutil.rmtree(self.path(cache_id), ignore_errors=True)
        (self.dir / f"{_name(cache_id)}.lock").unlink(missing_ok=True)

    def _ensure(self, cache_id: str, uid: int, gid: int, mode: int) -> Path:
        """Create the directory with its owner and mode in one atomic rename."""
        path = self.path(cache_id)
        if path.is_dir():
            return path
        tmp = Path(tempfile.mkdtemp(dir=self.dir, prefix=f".{path.name}."))
        _apply(tmp, uid, gid, mode)
        try:
            os.rename(tmp, path)
        except OSError:  # another user created it first
            os.rmdir(tmp)
        return path

    @contextlib.contextmanager
    def _private(self, cache_id: str, uid: int, gid: int, mode: int) -> Iterator[Path]:
        parent = self.dir / f"{_name(cache_id)}.private"
        parent.mkdir(exist_ok=True)
        fresh = Path(tempfile.mkdtemp(dir=parent))
        _apply(fresh, uid, gid, mode)
        try:
            yield fresh
        finally:
            shutil.rmtree(fresh, ignore_errors=True)


def _name(cache_id: str) -> str:
    return hashlib.sha256(cache_id.encode()).hexdigest()[:32]


def _apply(path: Path, uid: int, gid: int, mode: int) -> None:
    if (uid, gid) != (os.getuid(), os.getgid()):
        os.chown(path, uid, gid)
    os.chmod(path, mode)


def _try_lock(fd: int, kind: int) -> bool:
    try:
        fcntl.flock(fd, kind | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _lock(fd: int, kind: int, timeout: float | None, cache_id: str) -> None:
    if timeout is None:
        fcntl.flock(fd, kind)
        return
    deadline = time.monotonic() + timeout
    while not _try_lock(fd, kind):
        if time.monotonic() >= deadline:
            raise LockTimeout(f"cache mount {cache_id!r} is locked by another build")
        time.sleep(_POLL_SECONDS)
