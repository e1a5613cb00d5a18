"""Atomic file replacement: write a temp file in the store's tmp dir, fsync, rename."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path


def fsync_dir(path: Path) -> None:
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


def atomic_write(path: Path, data: bytes, tmp_dir: Path) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new file, never a mix."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=tmp_dir, prefix="rec-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def remove_tree(path: Path, tmp_dir: Path) -> None:
    """Remove a directory tree: first renamed out of sight (atomic), then deleted at leisure."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    doomed = Path(tempfile.mkdtemp(dir=tmp_dir, prefix="rm-"))
    try:
        os.rename(path, doomed / "x")
    except FileNotFoundError:
        pass
    shutil.rmtree(doomed, ignore_errors=True)


def dir_size(path: Path) -> int:
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
