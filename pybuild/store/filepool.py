"""Big files that layers share by hard link instead of holding a copy each.

A COPY of an unchanged 50 MiB context file wrote 50 MiB again on every build, cold or after an
edit elsewhere, though an earlier layer holds the same bytes with the same owner, mode and
time. Unpacked layers are never written once adopted (they are overlay lower dirs; a RUN that
changes such a file changes a copy in its upper dir), so one inode can serve several layers.
``files/<key>`` links to each big file a COPY staged, the key naming its content sha256,
owner, mode and mtime, and a later COPY that would stage the same links to it instead.

A file is pooled only if its source kept the stat its hash was taken for until the copy
ended, so the bytes under a key are the bytes the key names. Files with xattrs are not
shared, and one layer uses an inode for one name only, so a layer's tar never gains a hard
link the source did not have. What a RUN can tell: such a file's
st_nlink counts the layers sharing it. Garbage collection removes the entries no layer links
to any more.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

MIN_SIZE = 1 << 20  # below this a copy costs about what the lookup and link do
RACY_NS = 50_000_000  # a file changed this close to its copy may change with its stat unchanged


class FilePool:
    def __init__(self, root: Path):
        self.root = root  # .../files

    @staticmethod
    def key(sha256: str, uid: int, gid: int, mode: int, mtime: float) -> str:
        meta = f"{sha256} {uid} {gid} {mode:o} {mtime!r}"
        return hashlib.sha256(meta.encode()).hexdigest()

    def link_to(self, key: str, dest: str) -> bool:
        """Make ``dest`` a name of the pooled file ``key``; False when there is none."""
        try:
            os.link(self.root / key, dest)
            return True
        except FileNotFoundError:
            return False

    def add(self, path: str, key: str, *, source: str, source_stat: tuple[int, ...],
            copy_started_ns: int) -> bool:
        """Pool the staged file ``path`` (its metadata final), copied from ``source``, under
        ``key``; False, pooling nothing, unless ``source`` still has ``source_stat``, the stat
        key its hash in ``key`` was taken for. A file changed after it was hashed or while it
        was copied would otherwise give later layers other bytes than their key names. As for
        the context's hash memo, a stat changed too shortly before the copy is not trusted:
        a write in the same timestamp tick need not change it."""
        from pybuild.context.walk import stat_key

        try:
            if not source_stat or stat_key(os.lstat(source)) != source_stat:
                return False
        except FileNotFoundError:
            return False
        if copy_started_ns - max(source_stat[1], source_stat[6]) <= RACY_NS:  # mtime, ctime
            return False
        self.root.mkdir(exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.link(path, self.root / key)
        return True

    def sweep(self) -> int:
        """Remove entries nothing else links to; the bytes freed. Call with no writer active."""
        freed = 0
        for name in os.listdir(self.root) if self.root.is_dir() else ():
            path = self.root / name
            with contextlib.suppress(FileNotFoundError):
                st = path.lstat()
                if st.st_nlink == 1:
                    path.unlink()
                    freed += st.st_size
        return freed
