"""The differential oracle's parts: cases from ``testdata/oracle/*.toml``, their contexts made
on disk, and a saved image (docker-archive) read back as its config and flattened tree.

A case file holds ``[[case]]`` tables:
  name         unique within the file
  dockerfile   the Dockerfile text (``FROM base`` is the busybox base in both builders)
  files        context entries, below
  dockerignore the .dockerignore text (optional)
  build_args   table of --build-arg values; target: the --target stage
  fail         true when both builders must refuse the build
  known        a one-line reason, for a difference that is accepted (there are very few)
  open         a difference the oracle found that pybuild does not follow yet (an open bug,
               reported as an expected failure until it is fixed)
  note         what the case shows, and where BuildKit and the Dockerfile reference differ
  buildkit_dockerfile
               what BuildKit builds instead, for syntax newer than BuildKit 20.10 whose
               result the Dockerfile reference defines by an older form (``COPY --link``
               without a symlink in the destination gives what plain ``COPY`` gives)
A context entry is a table with ``path`` and one of ``text`` (a file), ``dir = true``,
``symlink`` (the target), ``hardlink`` (an earlier path), ``fifo = true``, or ``archive``
(``format`` = tar, tar.gz, tar.bz2, tar.xz, tar.zst, gz, gnu (old GNU headers), or
gnu-incremental, which GNU ``tar -g`` writes, and ``entries``, entries of the same kind
inside the archive); optional ``mode``, ``uid``, ``gid``, ``mtime`` and ``xattrs`` (values are
text, or ``hex:`` and the bytes in hex).
Unless given, files are 0644, directories 0755, and every mtime is ``OLD``, so that a time
the builder took from its clock stands out.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import itertools
import json
import lzma
import os
import stat
import subprocess
import tarfile
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

OLD = 1577836800  # 2020-01-01T00:00:00Z
_INODES = itertools.count(1)
FIELDS = ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts", "Volumes",
          "Labels", "OnBuild", "Shell", "StopSignal", "Healthcheck")


@dataclass(frozen=True)
class Case:
    file: str
    name: str
    dockerfile: str
    files: tuple[dict, ...] = ()
    dockerignore: str | None = None
    build_args: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    fail: bool = False
    known: str = ""
    open: str = ""
    note: str = ""
    buildkit_dockerfile: str | None = None

    @property
    def id(self) -> str:
        return f"{self.file}:{self.name}"


def load_cases(folder: Path) -> list[Case]:
    cases = []
    for path in sorted(folder.glob("*.toml")):
        data = tomllib.loads(path.read_text())
        for raw in data.get("case", []):
            unknown = set(raw) - set(Case.__dataclass_fields__) - {"file"}
            if unknown:
                raise ValueError(f"{path.name}: case {raw.get('name')}: unknown keys {unknown}")
            cases.append(Case(file=path.stem, name=raw["name"], dockerfile=raw["dockerfile"],
                              files=tuple(raw.get("files", ())),
                              dockerignore=raw.get("dockerignore"),
                              build_args=dict(raw.get("build_args", {})),
                              target=raw.get("target"), fail=raw.get("fail", False),
                              known=raw.get("known", ""), open=raw.get("open", ""),
                              note=raw.get("note", ""),
                              buildkit_dockerfile=raw.get("buildkit_dockerfile")))
    return cases


# ---- contexts -------------------------------------------------------------------------------

def make_context(case: Case, dest: Path) -> Path:
    dest.mkdir(parents=True)
    (dest / "Dockerfile").write_text(case.dockerfile)
    if case.dockerignore is not None:
        (dest / ".dockerignore").write_text(case.dockerignore)
    made = _write_entries(dest, case.files)
    for path in sorted([dest, dest / "Dockerfile", dest / ".dockerignore", *made],
                       key=lambda p: -len(p.parts)):
        if path.exists() or path.is_symlink():
            os.utime(path, (OLD, OLD), follow_symlinks=False)
    for path, entry in made.items():  # explicit mtimes last: making children moved the parents'
        if "mtime" in entry:
            os.utime(path, (entry["mtime"], entry["mtime"]), follow_symlinks=False)
    return dest


def _write_entries(root: Path, entries) -> dict[Path, dict]:
    made: dict[Path, dict] = {}
    for entry in entries:
        path = root / entry["path"].rstrip("/")
        for parent in reversed(path.relative_to(root).parents[:-1]):
            if not (root / parent).exists():
                (root / parent).mkdir()
                made.setdefault(root / parent, {})
        if entry.get("dir"):
            path.mkdir(exist_ok=True)
        elif "symlink" in entry:
            path.symlink_to(entry["symlink"])
        elif "hardlink" in entry:
            os.link(root / entry["hardlink"], path)
        elif entry.get("fifo"):
            os.mkfifo(path)
        elif "archive" in entry:
            path.write_bytes(make_archive(entry["archive"]))
        else:
            path.write_text(entry.get("text", ""))
        if not path.is_symlink():
            os.chmod(path, entry.get("mode", 0o755 if path.is_dir() else 0o644))
        if "uid" in entry or "gid" in entry:
            os.lchown(path, entry.get("uid", 0), entry.get("gid", 0))
        for name, value in entry.get("xattrs", {}).items():
            os.setxattr(path, name, xattr_bytes(value), follow_symlinks=False)
        made[path] = entry
    return made


def xattr_bytes(value: str) -> bytes:
    """An xattr value as written in a case: text, or ``hex:...`` for binary values."""
    return bytes.fromhex(value[4:]) if value.startswith("hex:") else value.encode()


def make_archive(spec: dict) -> bytes:
    if spec.get("format") == "gnu-incremental":
        return _gnu_incremental(spec.get("entries", ()))
    buf = io.BytesIO()
    gnu = spec.get("format") == "gnu"  # old GNU headers (tarfile's GNU_FORMAT), no pax ones
    with tarfile.open(fileobj=buf, mode="w",
                      format=tarfile.GNU_FORMAT if gnu else tarfile.PAX_FORMAT) as tar:
        for entry in spec.get("entries", ()):
            info = tarfile.TarInfo(entry["path"])
            info.mtime = entry.get("mtime", OLD)
            info.uid, info.gid = entry.get("uid", 0), entry.get("gid", 0)
            data = None
            if entry.get("dir"):
                info.type, info.mode = tarfile.DIRTYPE, entry.get("mode", 0o755)
            elif "symlink" in entry:
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, entry["symlink"], 0o777
            elif "hardlink" in entry:
                info.type, info.linkname = tarfile.LNKTYPE, entry["hardlink"]
                info.mode = entry.get("mode", 0o644)
            else:
                data = entry.get("text", "").encode()
                info.size, info.mode = len(data), entry.get("mode", 0o644)
            info.pax_headers = {
                f"SCHILY.xattr.{k}": xattr_bytes(v).decode("utf-8", "surrogateescape")
                for k, v in entry.get("xattrs", {}).items()}
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    raw = buf.getvalue()
    fmt = spec.get("format", "tar")
    if fmt == "gz":  # a gzip-compressed file that is not a tar
        return gzip.compress(spec.get("text", "").encode(), mtime=0)
    if fmt in ("tar", "gnu"):
        return raw
    if fmt == "tar.gz":
        return gzip.compress(raw, mtime=0)
    if fmt == "tar.bz2":
        return bz2.compress(raw)
    if fmt == "tar.xz":
        return lzma.compress(raw)
    if fmt == "tar.zst":
        import zstandard

        return zstandard.ZstdCompressor().compress(raw)
    raise ValueError(f"unknown archive format {fmt}")


def _gnu_incremental(entries) -> bytes:
    """What ``tar -g SNAPSHOT -cf - -C DIR .`` (GNU tar) writes for a tree of ``entries``:
    dumpdir ('D') entries that Python's tarfile cannot make."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        made = _write_entries(src, entries)
        for path in sorted([src, *made], key=lambda p: -len(p.parts)):
            os.utime(path, (OLD, OLD), follow_symlinks=False)
        return subprocess.run(["tar", "--format=gnu", "-g", os.path.join(tmp, "snapshot"),
                               "-cf", "-", "-C", str(src), "."],
                              capture_output=True, check=True).stdout


# ---- saved images ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Saved:
    config: dict  # the image config's "config" object
    tree: dict[str, dict]  # path -> type, mode, uid, gid, size, digest/target, xattrs, mtime


def read_saved(archive: Path) -> Saved:
    """The config and flattened filesystem of the one image in a docker-archive tar."""
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))[0]
        config = json.load(outer.extractfile(manifest["Config"]))
        tree: dict[str, dict] = {}
        for layer in manifest["Layers"]:
            with tarfile.open(fileobj=outer.extractfile(layer), mode="r:*") as tar:
                _apply_layer(tree, tar)
    return Saved(config.get("config") or {}, tree)


def _apply_layer(tree: dict[str, dict], tar: tarfile.TarFile) -> None:
    members = tar.getmembers()
    # whiteouts act on the layers below, so they go first
    for m in members:
        path = _norm(m.name)
        parent, _, base = path.rpartition("/")
        if base == ".wh..wh..opq":
            prefix = parent + "/" if parent else ""
            for p in [p for p in tree if p.startswith(prefix) and p != parent]:
                del tree[p]
        elif base.startswith(".wh."):
            gone = (parent + "/" if parent else "") + base[4:]
            for p in [p for p in tree if p == gone or p.startswith(gone + "/")]:
                del tree[p]
    for m in members:
        path = _norm(m.name)
        base = path.rpartition("/")[2]
        if not path or base.startswith(".wh."):
            continue
        if path in tree and tree[path]["type"] == "dir" and not m.isdir():
            for p in [p for p in tree if p.startswith(path + "/")]:
                del tree[p]
        tree[path] = _entry(tar, m, tree)


def _entry(tar: tarfile.TarFile, m: tarfile.TarInfo, tree: dict[str, dict]) -> dict:
    xattrs = {k[len("SCHILY.xattr."):]: v for k, v in m.pax_headers.items()
              if k.startswith("SCHILY.xattr.")}
    out = {"mode": oct(stat.S_IMODE(m.mode)), "uid": m.uid, "gid": m.gid, "xattrs": xattrs,
           "mtime": int(m.mtime)}
    if m.isreg():
        data = tar.extractfile(m).read()
        out.update(type="file", size=len(data), digest=hashlib.sha256(data).hexdigest()[:16],
                   inode=next(_INODES))
    elif m.islnk():
        target = tree.get(_norm(m.linkname), {})
        out.update(type="file", size=target.get("size"), digest=target.get("digest"),
                   inode=target.get("inode", next(_INODES)))
    elif m.issym():
        out.update(type="symlink", target=m.linkname)
    elif m.isdir():
        out.update(type="dir")
    elif m.isfifo():
        out.update(type="fifo")
    else:
        out.update(type=f"dev:{m.devmajor}:{m.devminor}")
    return out


def _norm(name: str) -> str:
    name = name.removeprefix("./").strip("/")
    return "" if name == "." else name


def hardlink_groups(tree: dict[str, dict]) -> set[frozenset[str]]:
    """Which paths are one file. A tar names one member of a group in full and links the
    others to it, and which member differs between builders, so each file gets an inode
    number that its links share (and keep when the first name is removed by a later layer)."""
    groups: dict[int, set[str]] = {}
    for path, entry in tree.items():
        if "inode" in entry:
            groups.setdefault(entry["inode"], set()).add(path)
    return {frozenset(g) for g in groups.values() if len(g) > 1}


def differences(docker: Saved, pybuild: Saved, docker_window: tuple[float, float],
                pybuild_window: tuple[float, float]) -> list[str]:
    """What differs, one line each; a time inside a builder's own build window is its clock,
    and matches any time inside the other's window."""
    out = []
    for name in FIELDS:
        a, b = docker.config.get(name), pybuild.config.get(name)
        if (a or None) != (b or None):
            out.append(f"config {name}: buildkit {a!r} pybuild {b!r}")
    for path in sorted(set(docker.tree) | set(pybuild.tree)):
        a, b = docker.tree.get(path), pybuild.tree.get(path)
        if a is None or b is None:
            out.append(f"{path}: only in {'pybuild' if a is None else 'buildkit'}")
            continue
        for key in sorted((set(a) | set(b)) - {"mtime", "inode"}):
            if a.get(key) != b.get(key):
                out.append(f"{path}: {key} buildkit {a.get(key)!r} pybuild {b.get(key)!r}")
        clock_a = docker_window[0] - 2 <= a["mtime"] <= docker_window[1] + 2
        clock_b = pybuild_window[0] - 2 <= b["mtime"] <= pybuild_window[1] + 2
        if (clock_a, clock_b) != (True, True) and a["mtime"] != b["mtime"]:
            what = lambda clock, t: "the build's time" if clock else t  # noqa: E731
            out.append(f"{path}: mtime buildkit {what(clock_a, a['mtime'])} "
                       f"pybuild {what(clock_b, b['mtime'])}")
    if hardlink_groups(docker.tree) != hardlink_groups(pybuild.tree):
        out.append(f"hard links: buildkit {sorted(map(sorted, hardlink_groups(docker.tree)))} "
                   f"pybuild {sorted(map(sorted, hardlink_groups(pybuild.tree)))}")
    return out
