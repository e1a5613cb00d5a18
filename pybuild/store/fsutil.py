"""Atomic file replacement (temp file, fsync, rename) and the store's tree chores.

Only the standard library, and only its cheap modules at import, so that the no-change
rebuild (``pybuild.cache.replay``) can write through ``atomic_write`` before anything else is
loaded.
"""

from __future__ import annotations

import errno
import os
import stat
import time


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make a rename in ``path`` durable; some filesystems refuse, which is harmless here."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class AtomicFile:
    """A temp file that replaces its destination whole on ``commit`` and leaves nothing behind
    on ``abort``, so readers see the old file or the new one, never a mix.

    The temp file goes in ``tmp_dir`` as ``PREFIX<unique>`` (a store's ``tmp/``, swept by
    ``system check``) or else beside ``path`` as a hidden ``.NAME.<unique>.tmp``. ``commit``
    fsyncs it, gives it ``mode`` (whatever the umask), renames it over the destination (``path``
    or the one given then, e.g. a blob named by its digest) and makes the rename durable.
    Anything but a regular file at the destination is refused: a path that went wrong must
    not turn a device node or a directory into a data file. As a context manager: commit on
    success, abort on an exception. ``durable=False`` keeps the atomicity but skips both
    fsyncs: for records a crash may lose (a container's run state, which reads as exited
    once its monitor is gone), written several times per run where an fsync costs ms.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *,
                 tmp_dir: str | os.PathLike[str] | None = None, mode: int = 0o644,
                 prefix: str = "rec-", durable: bool = True):
        self.path = None if path is None else os.fspath(path)
        self.mode = mode
        self.durable = durable
        unique = f"{os.getpid()}.{time.monotonic_ns()}"
        if tmp_dir is not None:
            parent, name = os.fspath(tmp_dir), f"{prefix}{unique}"
        elif self.path is not None:
            parent = os.path.dirname(self.path) or "."
            name = f".{os.path.basename(self.path)}.{unique}.tmp"
        else:
            raise ValueError("AtomicFile needs a path or a tmp_dir")
        self.tmp = os.path.join(parent, name)
        os.makedirs(parent, exist_ok=True)
        # O_EXCL rather than tempfile.mkstemp: tempfile would cost the no-change path an import
        fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        self.file = os.fdopen(fd, "wb")
        self.done = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        return self.file.write(data)

    def commit(self, path: str | os.PathLike[str] | None = None) -> None:
        dest = os.fspath(path) if path is not None else self.path
        if dest is None:
            raise ValueError("AtomicFile.commit needs a destination")
        try:
            try:
                if not stat.S_ISREG(os.lstat(dest).st_mode):
                    raise OSError(errno.EINVAL, "refusing to replace a non-regular file", dest)
            except FileNotFoundError:
                pass
            self.file.flush()
            os.fchmod(self.file.fileno(), self.mode)
            if self.durable:
                os.fsync(self.file.fileno())
            self.file.close()
            parent = os.path.dirname(dest) or "."
            os.makedirs(parent, exist_ok=True)
            os.replace(self.tmp, dest)
        except BaseException:
            self.abort()
            raise
        self.done = True
        if self.durable:
            fsync_dir(parent)

    def abort(self) -> None:
        self.done = True
        self.file.close()
        try:
            os.unlink(self.tmp)
        except FileNotFoundError:
            pass

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if not self.done:
            if exc_type is None:
                self.commit()
            else:
                self.abort()


def atomic_write(path: str | os.PathLike[str], data: bytes,
                 tmp_dir: str | os.PathLike[str] | None = None, *, mode: int = 0o644,
                 durable: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically and (unless not ``durable``) durably (see
    ``AtomicFile``)."""
    with AtomicFile(path, tmp_dir=tmp_dir, mode=mode, durable=durable) as out:
        out.write(data)


def remove_tree(path: str | os.PathLike[str], tmp_dir: str | os.PathLike[str]) -> None:
    """Remove a directory tree: first renamed out of sight (atomic), then deleted at leisure."""
    import shutil  # here, not at the top: see the module docstring
    import tempfile

    os.makedirs(tmp_dir, exist_ok=True)
    doomed = tempfile.mkdtemp(dir=tmp_dir, prefix="rm-")
    try:
        os.rename(path, os.path.join(doomed, "x"))
    except FileNotFoundError:
        pass
    shutil.rmtree(doomed, ignore_errors=True)


def dir_size(path: str | os.PathLike[str]) -> int:
    """Bytes used by regular files under ``path``, hard links counted once."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            key = (st.st_dev, st.st_ino)
            if key not in seen:
                seen.add(key)
                total += st.st_size
    return total
