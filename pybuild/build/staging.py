"""A staged tree for COPY, ADD and WORKDIR: a directory that becomes one layer as it stands.

Parent directories of the destination are recreated with the metadata they have in the
image (mode, owner, mtime), so applying the layer leaves them as they were, except that a
directory the step writes into gets the build's time, as BuildKit's copy into the snapshot
does: it gains a name, or a name in it is replaced by a new file or link (BuildKit removes
the old one and makes a new one). Only a directory merged into one the image has leaves its
parent's time alone. Directories the image lacks are made 0755. The staged tree is already an
overlay lower dir (it has no whiteouts), so once written as a layer it is adopted as that
layer's unpacked form.
"""

from __future__ import annotations

import os
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from pybuild.build.rootfs import RootfsView
from pybuild.errors import BuildError
from pybuild.store.filepool import FilePool


@dataclass(frozen=True)
class Item:
    """One thing to write below the destination: a file, dir or symlink."""

    rel: str  # path below the destination dir ("" for the destination itself)
    kind: str  # "file" | "dir" | "symlink"
    mode: int
    host: str | None = None  # where to read a file's bytes
    data: bytes | None = None  # or the bytes themselves (heredocs, URLs)
    link_target: str | None = None
    mtime: float | None = None  # None: the build's time
    owner: tuple[int, int] | None = None  # None: 0:0 (or --chown)
    group: int = 0  # the source match it comes from: one copied tree, copied on its own
    inode: tuple[int, int] | None = None  # (st_dev, st_ino) of a file with several names
    xattrs: tuple[tuple[str, bytes], ...] = ()  # set last: a chown drops a capability
    content: str | None = None  # sha256 of a big file's bytes: layers may share it (filepool)
    content_stat: tuple[int, ...] = ()  # the stat key of ``host`` that ``content`` is for


class Staging:
    def __init__(self, root: Path, view: RootfsView, pool: FilePool | None = None):
        self.root = root
        self.view = view
        self.pool = pool
        self._dir_times: list[tuple[str, float]] = []
        self._image_dirs: dict[str, str] = {}  # staged host path -> its image path
        self._links: dict[tuple[int, tuple[int, int]], tuple[str, int]] = {}
        self._pooled: set[str] = set()  # pool keys this layer uses: one name each

    def host(self, image_path: str) -> str:
        return os.path.join(str(self.root), image_path.lstrip("/"))

    def image_path(self, host: str) -> str:
        rel = os.path.relpath(host, self.root)
        return "/" if rel == "." else "/" + rel

    def _is_dir_at(self, host: str) -> bool | None:
        """What the image holds at a staged path once the step so far is applied: True for
        a directory, False for anything else (a symlink too), None for nothing."""
        if os.path.lexists(host):
            return stat.S_ISDIR(os.lstat(host).st_mode)
        found = self.view.lookup(self.image_path(host))
        return None if found is None else stat.S_ISDIR(found.st.st_mode)

    def is_dir(self, image_path: str) -> bool:
        """Whether the resolved ``image_path`` is a directory, counting what is staged."""
        return bool(self._is_dir_at(self.host(image_path)))

    def ensure_dir(self, image_path: str, *, uid: int = 0, gid: int | None = 0,
                   mode: int = 0o755) -> str:
        """Make ``image_path`` (a resolved, clean path) and its parents in the staging tree.

        A directory the image lacks is made ``uid``:``gid`` and ``mode``, as mkdir would make
        it: inside a setgid directory it is setgid too, and with ``gid=None`` (no --chown) it
        takes that directory's group, else 0."""
        current = ""
        for part in [p for p in image_path.split("/") if p]:
            current = f"{current}/{part}"
            host = self.host(current)
            if os.path.lexists(host):
                if not os.path.isdir(host) or os.path.islink(host):
                    raise BuildError(f"cannot copy to non-directory: {current}")
                continue
            found = self.view.lookup(current)
            if found is not None and not stat.S_ISDIR(found.st.st_mode):
                raise BuildError(f"cannot copy to {image_path}: {current} is not a directory")
            os.mkdir(host)
            if found is not None:
                st = found.st
                os.chown(host, st.st_uid, st.st_gid)
                os.chmod(host, stat.S_IMODE(st.st_mode))
                self._dir_times.append((host, st.st_mtime))
                self._image_dirs[host] = current
            else:
                parent = self._stat_dir(os.path.dirname(host))
                setgid = parent.st_mode & stat.S_ISGID
                os.chown(host, uid, parent.st_gid if gid is None and setgid else gid or 0)
                os.chmod(host, mode | setgid)
        return self.host(image_path)

    def _stat_dir(self, host: str) -> os.stat_result:
        """The staged directory's stat; the image's root for the staging root."""
        if os.path.samefile(host, self.root):
            found = self.view.lookup("/")
            if found is not None:
                return found.st
        return os.lstat(host)

    def put(self, dest_dir: str, item: Item, chown: tuple[int, int] | None) -> None:
        """Write ``item`` below the staged ``dest_dir`` host path, owned by ``chown`` when
        given, else by the item's own owner. As in BuildKit, what is there already (in the
        image or staged by this step) is replaced unless the types clash: a directory only
        merges into a directory, and nothing else replaces one; links are not followed."""
        uid, gid = chown or item.owner or (0, 0)
        path = os.path.join(dest_dir, item.rel) if item.rel else dest_dir
        self._parents(os.path.dirname(path), dest_dir, uid, gid)
        there = self._is_dir_at(path)
        if item.kind == "dir":
            if there is False:
                raise BuildError(f"cannot copy to non-directory: {self.image_path(path)}")
            if not os.path.lexists(path):
                os.mkdir(path)
            os.chown(path, uid, gid)
            os.chmod(path, item.mode)
            if item.mtime is not None:
                self._dir_times.append((path, item.mtime))
            return
        if there:
            raise BuildError(f"cannot replace to directory {self.image_path(path)} with file")
        if os.path.lexists(path):
            os.unlink(path)
        if item.kind == "symlink":
            os.symlink(item.link_target or "", path)
            os.lchown(path, uid, gid)
            if item.mtime is not None:
                os.utime(path, (item.mtime, item.mtime), follow_symlinks=False)
            return
        if self._link(path, item):
            # Another name of the same source file, staged already: one inode, so the same
            # owner, mode, xattrs and time, and it may be a pooled inode other layers use,
            # which a chown (it clears setuid) or chmod would change under them.
            return
        shared = self._share_key(item, uid, gid)
        if shared is not None and self.pool is not None and self.pool.link_to(shared, path):
            self._pooled.add(shared)
            self._remember(path, item)
            return  # that inode has this metadata already, and others rely on it
        started = time.time_ns()
        if item.data is not None:
            with open(path, "wb") as f:
                f.write(item.data)
        else:
            shutil.copyfile(item.host, path, follow_symlinks=True)  # type: ignore[arg-type]
        self._remember(path, item)
        os.chown(path, uid, gid)
        os.chmod(path, item.mode)
        for key, value in item.xattrs:
            os.setxattr(path, key, value)
        if item.mtime is not None:
            os.utime(path, (item.mtime, item.mtime))
        if shared is not None and self.pool is not None and item.host is not None:
            self.pool.add(path, shared, source=item.host, source_stat=item.content_stat,
                          copy_started_ns=started)
            self._pooled.add(shared)

    def _share_key(self, item: Item, uid: int, gid: int) -> str | None:
        """The pool key of a file other layers may share, unless this layer has used it."""
        if (self.pool is None or item.content is None or item.mtime is None or item.xattrs
                or item.data is not None):
            return None
        key = self.pool.key(item.content, uid, gid, item.mode, item.mtime)
        return None if key in self._pooled else key

    def _remember(self, path: str, item: Item) -> None:
        """The first staged name of a source file with several, for its other names."""
        if item.inode is not None:
            self._links[(item.group, item.inode)] = (path, os.lstat(path).st_ino)

    def _link(self, path: str, item: Item) -> bool:
        """Stage ``item`` as a hard link to the file staged for another name of its source
        file in the same copied tree, as BuildKit's copy keeps them; False if there is none
        (or it was replaced since)."""
        if item.inode is None:
            return False
        first = self._links.get((item.group, item.inode))
        if first is None:
            return False
        try:
            if os.lstat(first[0]).st_ino != first[1]:
                return False
        except FileNotFoundError:
            return False
        os.link(first[0], path, follow_symlinks=False)
        return True

    def _parents(self, path: str, dest_dir: str, uid: int, gid: int) -> None:
        """Dirs between ``dest_dir`` and an item that kept its parents (``--parents``): 0755,
        owned as the copied files."""
        if os.path.isdir(path) or len(path) <= len(dest_dir):
            return
        self._parents(os.path.dirname(path), dest_dir, uid, gid)
        os.mkdir(path)
        os.chown(path, uid, gid)
        os.chmod(path, 0o755)

    def finish(self) -> None:
        """Restore directory mtimes last, as writing into a dir changes its mtime; an image
        directory the step wrote into keeps the build's time."""
        for path, mtime in reversed(self._dir_times):
            if not self._written_into(path):
                os.utime(path, (mtime, mtime), follow_symlinks=False)
        self._dir_times.clear()

    def _written_into(self, host: str) -> bool:
        """Whether the staged image directory ``host`` gained or replaced a name: anything in
        it but a directory laid over a directory the image has there."""
        image_path = self._image_dirs.get(host)
        if image_path is None:
            return False
        for name in os.listdir(host):
            found = self.view.lookup(f"{image_path}/{name}")
            if found is None or not stat.S_ISDIR(found.st.st_mode):
                return True
            if not stat.S_ISDIR(os.lstat(os.path.join(host, name)).st_mode):
                return True
        return False


def apply_chmod(mode: int, spec: str | None, is_dir: bool) -> int:
    """``--chmod``: octal (``755``) or symbolic (``u+x,go-w``, ``a=rX``). An octal value
    keeps only its permission bits, as in BuildKit 20.10 (it passes through Go's
    os.FileMode, which keeps setuid, setgid and sticky elsewhere): 4755 is 0755."""
    if not spec:
        return mode
    if all(c in "01234567" for c in spec):
        return int(spec, 8) & 0o777
    for clause in spec.split(","):
        mode = _symbolic(mode, clause, is_dir, spec)
    return mode


def _symbolic(mode: int, clause: str, is_dir: bool, spec: str) -> int:
    who = ""
    i = 0
    while i < len(clause) and clause[i] in "ugoa":
        who += clause[i]
        i += 1
    if i >= len(clause) or clause[i] not in "+-=":
        raise BuildError(f"invalid chmod value {spec!r}")
    op, perms = clause[i], clause[i + 1:]
    shifts = {"u": (6,), "g": (3,), "o": (0,), "a": (6, 3, 0)}
    targets = sorted({s for w in (who or "a") for s in shifts[w]})
    bits = 0
    for p in perms:
        if p == "r":
            bits |= 4
        elif p == "w":
            bits |= 2
        elif p == "x" or (p == "X" and (is_dir or mode & 0o111)):
            bits |= 1
        elif p != "X":
            raise BuildError(f"invalid chmod value {spec!r}")
    mask = sum(bits << s for s in targets)
    full = sum(7 << s for s in targets)
    if op == "+":
        return mode | mask
    if op == "-":
        return mode & ~mask
    return (mode & ~full) | mask
