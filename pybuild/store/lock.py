"""The store lock: ``fcntl.flock`` on a file in the root, shared by every pybuild process.

Two locks, both files under the root:

* ``lock`` (exclusive) guards read-modify-write of records and refs. Held briefly.
* ``gc.lock`` is held *shared* by anyone writing blobs or unpacked layers that no record names
  yet (an import, a build, a load), and *exclusive* by garbage collection, so a prune never
  deletes what an in-flight writer is about to reference.

The kernel drops a flock when its process dies, so a killed pybuild never leaves a stale lock.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pybuild.errors import LockTimeout

WAIT_NOTICE_AFTER = 1.0  # seconds before on_wait is told that someone else holds the lock
_POLL = 0.05


class FileLock:
    """A reentrant flock. Use as a context manager.

    Exclusive: one thread of the process at a time (an RLock), reentrant in that thread.
    Shared: any number of threads; the flock is taken by the first and dropped by the last,
    whichever threads those are (a blob writer may be committed on another thread).
    """

    def __init__(self, path: Path, *, shared: bool = False,
                 on_wait: Callable[[], None] | None = None, timeout: float | None = None):
        self.path = path
        self.shared = shared
        self.on_wait = on_wait
        self.timeout = timeout
        self._fd: int | None = None
        self._depth = 0
        self._mutex = threading.Lock()
        self._owner = threading.RLock()

    def acquire(self) -> None:
        if not self.shared:
            self._owner.acquire()
        try:
            with self._mutex:
                if self._depth == 0:
                    self._fd = self._lock()
                self._depth += 1
        except BaseException:
            if not self.shared:
                self._owner.release()
            raise

    def release(self) -> None:
        with self._mutex:
            self._depth -= 1
            if self._depth == 0 and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
                self._fd = None
        if not self.shared:
            self._owner.release()

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _lock(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        mode = (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
        start = time.monotonic()
        told = False
        while True:
            try:
                fcntl.flock(fd, mode)
                return fd
            except BlockingIOError:
                waited = time.monotonic() - start
                if self.timeout is not None and waited >= self.timeout:
                    os.close(fd)
                    raise LockTimeout(
                        f"gave up after {self.timeout:g}s waiting for the store lock {self.path}"
                    ) from None
                if not told and waited >= WAIT_NOTICE_AFTER and self.on_wait is not None:
                    told = True
                    self.on_wait()
                time.sleep(_POLL)
            except BaseException:
                os.close(fd)
                raise
