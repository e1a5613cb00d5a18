"""Helpers for the layer tests: tree manifests, overlay mounts, hostile archives."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

CAP = bytes.fromhex("0100000200040000000000000000000000000000")  # cap_net_bind_service, v2
MOUNT_OPTS = "redirect_dir=off,metacopy=off,index=off"


def manifest(root: Path) -> dict[str, list]:
    """What a tree holds, without times: type, mode, owner, xattrs, content, link, hardlinks."""
    out: dict[str, list] = {}
    inodes: dict[tuple[int, int], list[str]] = defaultdict(list)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            keys = os.listxattr(path, follow_symlinks=False)
            xattrs = sorted((k, os.getxattr(path, k, follow_symlinks=False)) for k in keys
                            if not k.startswith("trusted.overlay."))
            entry: list = [stat.S_IFMT(st.st_mode), oct(stat.S_IMODE(st.st_mode)),
                           st.st_uid, st.st_gid, xattrs]
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    entry += [st.st_size, hashlib.sha256(f.read()).hexdigest()]
                inodes[(st.st_dev, st.st_ino)].append(rel)
            elif stat.S_ISLNK(st.st_mode):
                entry.append(os.readlink(path))
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                entry.append(st.st_rdev)
            out[rel] = entry
    for group in inodes.values():
        for rel in group:
            out[rel].append(tuple(sorted(group)))
    return out


def overlay_works() -> str | None:
    """None when overlayfs can be mounted here, else why not."""
    if os.geteuid() != 0:
        return "needs root to mount overlayfs"
    with tempfile.TemporaryDirectory() as tmp:
        dirs = [Path(tmp, n) for n in ("lower", "upper", "work", "mnt")]
        for d in dirs:
            d.mkdir()
        try:
            with mounted_overlay([dirs[0]], dirs[3], upper=dirs[1], work=dirs[2]):
                return None
        except subprocess.CalledProcessError as err:
            return f"cannot mount overlayfs: {err.stderr.strip()}"


@contextlib.contextmanager
def mounted_overlay(lowers: list[Path], mnt: Path, *, upper: Path | None = None,
                    work: Path | None = None) -> Iterator[Path]:
    opts = "lowerdir=" + ":".join(str(p) for p in lowers)
    if upper is not None:
        opts += f",upperdir={upper},workdir={work},{MOUNT_OPTS}"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(mnt)],
                   check=True, capture_output=True, text=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


_OVERLAY_PROBLEM = overlay_works()
needs_overlay = pytest.mark.skipif(_OVERLAY_PROBLEM is not None, reason=str(_OVERLAY_PROBLEM))


def copy_tree(src: Path, dst: Path) -> None:
    subprocess.run(["cp", "-a", f"{src}/.", str(dst)], check=True)


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="pybuild-layers-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def make_tar(entries: list[tuple[tarfile.TarInfo, bytes | None]], *,
             fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """A hand-made (possibly hostile) archive."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for info, data in entries:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def info(name: str, kind: bytes = tarfile.REGTYPE, *, link: str = "", mode: int = 0o644,
         major: int = 0, minor: int = 0) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.linkname = link
    ti.mode = mode
    ti.devmajor, ti.devminor = major, minor
    ti.mtime = 1_600_000_000
    return ti


def snapshot(path: Path) -> list[tuple[str, int]]:
    """Names and sizes of everything below ``path``, to prove nothing changed there."""
    result = []
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            result.append((os.path.relpath(full, path), os.lstat(full).st_size))
    return sorted(result)
