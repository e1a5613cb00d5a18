"""Walking the build context (through ``.dockerignore``): COPY sources and content digests.

Nothing here tars the context. Files are stat-walked with ``os.scandir`` and a file's content
is read only when its stat differs from the one remembered in a :class:`FileHashMemo`, so a
no-change rebuild reads no file data at all. Digests cover content, type, mode, ownership and
link targets, never mtime: a ``touch`` or a fresh checkout re-hashes but keeps every key.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import stat as st
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from pybuild import pathwalk
from pybuild.cache.filehashes import FileHashMemo, sha256_file
from pybuild.context import dockerignore as ignorefile
from pybuild.context.glob import glob_regex
from pybuild.errors import BuildError, ContextError

_GLOB_CHARS = frozenset("*?[\\")
_KINDS = {st.S_IFREG: "file", st.S_IFDIR: "dir", st.S_IFLNK: "symlink"}
# A file changed within this window of our stat may still change without its stat changing
# (timestamps are coarse), so its hash is used but not remembered ("racy git" rule).
_RACY_NS = 50_000_000


class IgnoreMatcher(Protocol):
    """What ``pybuild.context.dockerignore.load`` returns."""

    def matches(self, relpath: str) -> bool: ...
    def may_contain_included(self, dirpath: str) -> bool: ...


@dataclass(frozen=True)
class SourceEntry:
    """One path a COPY/ADD will write: read from ``relpath``, land at ``dest``.

    ``dest`` is relative to the instruction's destination: the base name for a matched file,
    the path inside a matched directory for its contents, "" for the directory itself; with
    ``--parents`` it keeps the path below the context root (or below a ``/./`` pivot).
    ``match`` numbers the named sources and wildcard matches of one call, in order: the
    entries of one copied tree share it (BuildKit copies each match on its own).
    """

    relpath: str
    dest: str
    kind: str  # "file" | "dir" | "symlink" | "special" (fifo, socket, device)
    mode: int  # permission bits, st.S_IMODE
    uid: int
    gid: int
    size: int
    link_target: str | None = None
    source: str = ""  # the source pattern as written
    match: int = field(default=0, compare=False)
    stat_key: tuple[int, ...] = field(default=(), compare=False, repr=False)


def stat_key(s: os.stat_result) -> tuple[int, ...]:
    """The stat fields that must all be unchanged before a remembered hash is trusted."""
    return (s.st_size, s.st_mtime_ns, s.st_ino, s.st_mode, s.st_uid, s.st_gid, s.st_ctime_ns)


def _load_ignore(root: str, dockerfile: str | None) -> IgnoreMatcher:
    if dockerfile is None:
        return ignorefile.load(root)
    return ignorefile.load(root, dockerfile)


class BuildContext:
    """A directory sent to the build, seen through its ``.dockerignore``."""

    def __init__(self, path: str | os.PathLike[str], dockerignore: bool = True, *,
                 dockerfile: str | None = None, memo: FileHashMemo | None = None,
                 ignore: IgnoreMatcher | None = None):
        """``dockerfile``: its ``<Dockerfile>.dockerignore`` wins over the context's, as in
        BuildKit. ``ignore`` replaces .dockerignore handling altogether (tests, stdin)."""
        root = os.path.abspath(os.fspath(path))
        if not os.path.exists(root):
            raise ContextError(f"unable to prepare context: path {os.fspath(path)!r} not found")
        if not os.path.isdir(root):
            raise ContextError(f"unable to prepare context: {os.fspath(path)!r} is not a directory")
        self.root = root
        self._readlink = pathwalk.host_readlink(root)
        if ignore is None:
            ignore = _load_ignore(root, dockerfile) if dockerignore else ignorefile.IgnoreMatcher()
        self.ignore = ignore
        self.memo = memo if memo is not None else FileHashMemo(None)
        self.files_hashed = 0  # files whose content was read, for tests and --debug

    # -- walking

    def walk(self, top: str = "") -> Iterator[tuple[str, os.stat_result]]:
        """Included entries under ``top`` (relative, "" for the root) in sorted order.

        Ignored subtrees are skipped without listing them unless a ``!`` pattern reopens
        them (``IgnoreMatcher.may_contain_included``); such a directory is yielded itself.
        """
        yield from self._walk_dir(top)

    def _walk_dir(self, rel: str) -> Iterator[tuple[str, os.stat_result]]:
        try:
            with os.scandir(os.path.join(self.root, rel) if rel else self.root) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as err:
            msg = f"cannot read context directory {rel or '.'}: {err.strerror}"
            raise ContextError(msg) from None
        for entry in entries:
            child = f"{rel}/{entry.name}" if rel else entry.name
            s = entry.stat(follow_symlinks=False)
            is_dir = st.S_ISDIR(s.st_mode)
            if not self.ignore.matches(child):
                yield child, s
                if is_dir:
                    yield from self._walk_dir(child)
            elif is_dir and self.ignore.may_contain_included(child):
                yield child, s  # BuildKit sends a directory it enters, kept entries or none
                yield from self._walk_dir(child)

    def is_ignored(self, relpath: str, is_dir: bool = False) -> bool:
        """True if ``relpath`` is not sent: it, or a parent that hides its subtree, matches.

        An ignored directory that a ``!`` pattern may re-include from is still sent.
        """
        if self.ignore.matches(relpath):
            return not (is_dir and self.ignore.may_contain_included(relpath))
        parts = relpath.split("/")[:-1]
        for i in range(len(parts)):
            parent = "/".join(parts[: i + 1])
            if self.ignore.matches(parent) and not self.ignore.may_contain_included(parent):
                return True
        return False

    # -- COPY/ADD sources

    def resolve_sources(self, patterns: Sequence[str], *, excludes: Sequence[str] = (),
                        follow_top_symlink: bool = True, parents: bool = False,
                        instruction: str = "COPY") -> list[SourceEntry]:
        """The entries COPY/ADD ``patterns`` name, in order, as BuildKit resolves them.

        A named source (or wildcard match) that is a symlink is followed when
        ``follow_top_symlink``; symlinks inside a copied directory are copied as links.
        A directory contributes itself (dest "") and its contents. A path without wildcards
        must exist and not be ignored; a wildcard may match nothing. ``excludes`` are
        dockerignore-style patterns against each entry's ``dest``. ``*``, ``?`` and ``[...]``
        never cross "/"; ``**`` as a whole component spans directories (an extension: plain
        BuildKit treats it as ``*``).
        """
        excluded = ignorefile.matcher_of(excludes) if excludes else None
        out: list[SourceEntry] = []
        number = 0
        for pattern in patterns:
            pivot, rel = _split_pivot(pattern, parents)
            matches = self._expand(rel) if _has_glob(rel) else [rel]
            for match in matches:
                kept = _relative(match, pivot) if parents else None
                for entry in self._source(match, pattern, kept, follow_top_symlink, instruction):
                    if excluded is None or not entry.dest or not excluded.matches(entry.dest):
                        out.append(replace(entry, match=number) if number else entry)
                number += 1
        return out

    def _source(self, match: str, pattern: str, kept: str | None, follow: bool,
                instruction: str) -> Iterator[SourceEntry]:
        """The entries for one match; ``kept`` is its --parents path (None without)."""
        real = self._resolve(match, follow)
        s = os.lstat(os.path.join(self.root, real)) if real is not None else None
        if s is None or (real and self.is_ignored(real, st.S_ISDIR(s.st_mode))):
            raise BuildError(f"{instruction} failed: file not found in build context or "
                             f"excluded by .dockerignore: stat {pattern}: file does not exist")
        if not st.S_ISDIR(s.st_mode):
            name = kept if kept is not None else posixpath.basename(match or real)
            yield _entry(real, name, s, self.root, pattern)
            return
        base = kept or ""
        yield _entry(real, base, s, self.root, pattern)
        cut = len(real) + 1 if real else 0
        for rel, cs in self.walk(real):
            inner = rel[cut:]
            yield _entry(rel, f"{base}/{inner}" if base else inner, cs, self.root, pattern)

    def _expand(self, pattern: str) -> list[str]:
        """Context paths matching a wildcard pattern, sorted, ignored paths left out."""
        matches = [""]
        comps = pattern.split("/")
        for i, comp in enumerate(comps):
            last = i == len(comps) - 1
            if comp == "**":
                matches = [p for m in matches for p in self._below(m, dirs_only=not last)]
            elif not _has_glob(comp):
                matches = [f"{m}/{comp}" if m else comp for m in matches]
            else:
                regex = glob_regex(comp)
                matches = [p for m in matches for p in self._children(m) if
                           regex.match(posixpath.basename(p))]
        seen = dict.fromkeys(m for m in matches if m and self._lexists(m))
        kept = (m for m in seen if not self.is_ignored(m, self._is_dir(m)))
        return sorted(kept, key=lambda m: m.split("/"))

    def _children(self, rel: str) -> list[str]:
        real = self._resolve(rel, True)
        if real is None:
            return []
        try:
            with os.scandir(os.path.join(self.root, real)) as it:
                names = sorted(e.name for e in it)
        except OSError:
            return []
        return [f"{rel}/{n}" if rel else n for n in names]

    def _below(self, rel: str, dirs_only: bool) -> list[str]:
        """``rel`` itself and every included path under it (for ``**``)."""
        real = self._resolve(rel, True)
        if real is None:
            return []
        out = [rel]
        cut = len(real) + 1 if real else 0
        for path, s in self.walk(real):
            if not dirs_only or st.S_ISDIR(s.st_mode):
                inner = path[cut:]
                out.append(f"{rel}/{inner}" if rel else inner)
        return out

    def _lexists(self, rel: str) -> bool:
        return self._resolve(rel, False) is not None

    def _is_dir(self, rel: str) -> bool:
        return os.path.isdir(os.path.join(self.root, rel))

    def _resolve(self, rel: str, follow_last: bool) -> str | None:
        """``rel`` with symlinks resolved as if the context were ``/``; None when missing."""
        try:
            real = pathwalk.resolve(rel, self._readlink, follow_last=follow_last)
        except OSError:
            raise BuildError(f"too many levels of symbolic links: {rel}") from None
        if real != "/" and not os.path.lexists(self.root + real):
            return None  # missing, or a non-directory on the way (ENOTDIR)
        return real[1:]

    # -- digests

    def manifest(self, entries: Iterable[SourceEntry], *,
                 chown: tuple[int, int] | None = None) -> tuple[tuple[str, str], ...]:
        """(relpath, digest of that entry) in dest order: what explains a changed digest.

        Each digest covers relpath, dest, type, mode, ownership (``chown`` when the copy
        sets it, else the source's), size, content sha256 and link target, never mtime.
        """
        rows = []
        for e in sorted(entries, key=lambda e: (e.dest, e.relpath)):
            uid, gid = chown if chown is not None else (e.uid, e.gid)
            sha = self.file_sha256(e) if e.kind == "file" else ""
            size = e.size if e.kind == "file" else 0
            line = json.dumps([e.relpath, e.dest, e.kind, e.mode, uid, gid, size, sha,
                               e.link_target], separators=(",", ":"))
            rows.append((e.relpath, hashlib.sha256(line.encode()).hexdigest()))
        self.memo.save()
        return tuple(rows)

    def content_digest(self, entries: Iterable[SourceEntry], *,
                       chown: tuple[int, int] | None = None) -> str:
        """One stable ``sha256:`` digest over the entries (see :meth:`manifest`)."""
        return manifest_digest(self.manifest(entries, chown=chown))

    def file_sha256(self, entry: SourceEntry) -> str:
        """The content hash of a regular file, from the memo while its stat is unchanged."""
        known = self.memo.get(entry.relpath, entry.stat_key)
        if known is not None:
            return known
        path = os.path.join(self.root, entry.relpath)
        started = time.time_ns()
        try:
            digest = sha256_file(path)
            after = stat_key(os.lstat(path))
        except OSError as err:
            raise ContextError(f"cannot read {entry.relpath}: {err.strerror}") from None
        self.files_hashed += 1
        newest = max(after[1], after[6])  # mtime_ns, ctime_ns
        if after == entry.stat_key and started - newest > _RACY_NS:
            self.memo.put(entry.relpath, entry.stat_key, digest)
        return digest


def manifest_digest(manifest: Iterable[tuple[str, str]]) -> str:
    h = hashlib.sha256()
    for relpath, digest in manifest:
        h.update(f"{relpath}\0{digest}\n".encode())
    return "sha256:" + h.hexdigest()


def _relative(path: str, pivot: str) -> str:
    if not pivot:
        return path
    return path[len(pivot) + 1:] if path.startswith(pivot + "/") else ""


def _has_glob(pattern: str) -> bool:
    return not _GLOB_CHARS.isdisjoint(pattern)


def _clean(path: str) -> str:
    """A context-relative path: no leading "/", "./" or ".." above the root; "" for the root."""
    parts: list[str] = []
    for comp in path.split("/"):
        if comp == "..":
            if parts:
                parts.pop()
        elif comp not in ("", "."):
            parts.append(comp)
    return "/".join(parts)


def _split_pivot(pattern: str, parents: bool) -> tuple[str, str]:
    """(pivot, pattern): with ``--parents`` a ``/./`` marks where kept parents start."""
    if parents and "/./" in pattern:
        head, tail = pattern.split("/./", 1)
        pivot = _clean(head)
        return pivot, _clean(f"{pivot}/{tail}")
    return "", _clean(pattern)


def _entry(rel: str, dest: str, s: os.stat_result, root: str, source: str) -> SourceEntry:
    mode = s.st_mode
    kind = _KINDS.get(st.S_IFMT(mode), "special")  # fifo, socket, device: never opened
    target = os.readlink(os.path.join(root, rel)) if kind == "symlink" else None
    return SourceEntry(relpath=rel, dest=dest, kind=kind, mode=st.S_IMODE(mode), uid=s.st_uid,
                       gid=s.st_gid, size=s.st_size, link_target=target, source=source,
                       stat_key=stat_key(s))


def check_copy_dest(sources: Sequence[str], dest: str, instruction: str = "COPY") -> None:
    """BuildKit's rule: several sources need a destination directory written with a "/"."""
    if len(sources) > 1 and not dest.endswith("/"):
        raise BuildError(f"When using {instruction} with more than one source file, "
                         "the destination must be a directory and end with a /")
