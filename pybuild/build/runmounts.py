"""RUN ``--mount``s: cache, bind (context, stage, image), tmpfs and secret, as runner mounts.

The model is BuildKit's convert_runmount.go: values take ARG/ENV expansion (in the plan,
:func:`pybuild.plan.steps.expand_mounts`); the context is seen through .dockerignore; rw binds
write to a scratch copy; secrets are private in-memory copies that never reach a layer, the
cache key or history.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from pybuild.build.stepcontext import StepContext
from pybuild.build.users import Ids
from pybuild.errors import BuildError
from pybuild.instructions import Mount as RunMount
from pybuild.instructions import Run
from pybuild.plan.state import StageState


def mount_target(m: RunMount, workdir: str) -> str:
    if not m.target:
        if m.type == "secret":
            return f"/run/secrets/{m.id or posixpath.basename(m.source or '')}"
        raise BuildError(f"RUN --mount=type={m.type} needs a target")
    return posixpath.normpath(posixpath.join(workdir, m.target))


def secret_source(m: RunMount, secrets: dict[str, str]) -> str | None:
    sid = m.id or posixpath.basename(m.target or m.source or "")
    path = secrets.get(sid)
    if path is None or not os.path.isfile(path):
        if m.required:
            raise BuildError(f"secret {sid} not found (pass it with --secret id={sid},src=FILE)")
        return None
    return path


def mounts(ex: StepContext, state: StageState, inst: Run, ids: Ids, stack: contextlib.ExitStack):
    """The runner mounts of a RUN's ``--mount`` flags; temp copies are undone by ``stack``."""
    from pybuild.cache.mounts import CacheMounts
    from pybuild.runner.spec import Mount

    for m in inst.mounts:
        target = mount_target(m, state.workdir)
        if m.type == "cache":
            cache = CacheMounts(ex.cache_root).acquire(
                m.id or target, sharing=m.sharing or "shared",
                uid=m.uid if m.uid is not None else 0, gid=m.gid if m.gid is not None else 0,
                mode=m.mode if m.mode is not None else 0o755)
            path = stack.enter_context(cache)
            if m.from_:
                _seed_cache(ex, m, path)
            yield Mount("bind", str(path), target, m.readonly)
        elif m.type == "tmpfs":
            opts = (f"size={m.size}",) if m.size else ()
            yield Mount("tmpfs", "tmpfs", target, False, opts)
        elif m.type == "secret":
            src = secret_source(m, dict(ex.secrets))
            if src is not None and (m.target or not m.env):  # env= alone mounts no file
                yield Mount("bind", _secret_copy(m, src, ex.scratch, stack), target, True)
        elif m.type == "bind":
            yield Mount("bind", _bind_source(ex, m, stack), target, m.readonly)
        elif m.type == "ssh":
            if m.required:
                raise BuildError("RUN --mount=type=ssh is not supported")
        else:
            raise BuildError(f"unsupported mount type {m.type}")


def _secret_copy(m: RunMount, src: str, tmp: Path, stack: contextlib.ExitStack) -> str:
    """The secret as the step sees it: a private copy with the mount's uid, gid and mode
    (BuildKit's default 0:0 0400), in memory (/dev/shm) when the host has it, removed when
    the step ends."""
    shm = "/dev/shm"
    fd, path = tempfile.mkstemp(prefix="secret-", dir=shm if os.path.isdir(shm) else tmp)
    stack.callback(os.unlink, path)
    with open(src, "rb") as f, os.fdopen(fd, "wb") as out:
        out.write(f.read())
        os.fchown(out.fileno(), m.uid or 0, m.gid or 0)
        os.fchmod(out.fileno(), m.mode if m.mode is not None else 0o400)
    return path


def _seed_cache(ex: StepContext, m: RunMount, path: Path) -> None:
    """``from=`` (and ``source=``) give an empty cache its first contents, as BuildKit's
    base of a cache mount."""
    if any(path.iterdir()):
        return
    flat = ex.flatten(m.from_)
    src = os.path.realpath(os.path.join(flat, (m.source or "/").lstrip("/")))
    if src != flat and not src.startswith(flat.rstrip("/") + "/"):
        raise BuildError(f"cache mount source {m.source} escapes its stage")
    if os.path.isdir(src):
        shutil.copytree(src, path, symlinks=True, dirs_exist_ok=True)


def _bind_source(ex: StepContext, m: RunMount, stack: contextlib.ExitStack) -> str:
    source = (m.source or "/").lstrip("/")
    if not m.from_:
        root = os.path.realpath(ex.files.root)
        path = os.path.realpath(os.path.join(root, source))
        if path != root and not path.startswith(root + "/"):
            raise BuildError(f"bind mount source {m.source} is outside the build context")
        if getattr(ex.files.ignore, "patterns", ()):
            path = stack.enter_context(_filtered_context(ex, source or "."))
    else:
        flat = ex.flatten(m.from_)
        path = os.path.realpath(os.path.join(flat, source))
        if path != flat and not path.startswith(flat.rstrip("/") + "/"):
            raise BuildError(f"bind mount source {m.source} escapes its stage")
    if not m.readonly:  # as BuildKit: writes go to a scratch copy, never to the source
        path = stack.enter_context(_scratch_copy(ex, path))
    return path


@contextlib.contextmanager
def _filtered_context(ex: StepContext, source: str) -> Iterator[str]:
    """The context below ``source`` as the build sees it: .dockerignore'd paths left out
    (they are not in the cache key either). Files are hard links: the mount is read-only,
    and a rw mount copies this tree again."""
    tmp = ex.tempdir("bindctx-")
    try:
        entries = ex.files.resolve_sources([source], instruction="RUN --mount")
        top = tmp / "src"
        single = len(entries) == 1 and entries[0].kind != "dir"  # a file named as the source
        for e in entries:
            dest = top / e.dest if e.dest and not single else top
            host = os.path.join(ex.files.root, e.relpath)
            if e.kind == "dir":
                dest.mkdir(mode=e.mode, exist_ok=True)
            elif e.kind == "symlink":
                os.symlink(e.link_target or "", dest)
            elif e.kind == "file":
                _link_or_copy(host, dest)
        yield str(top)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _link_or_copy(src: str, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:  # another file system
        shutil.copy2(src, dest)


@contextlib.contextmanager
def _scratch_copy(ex: StepContext, path: str) -> Iterator[str]:
    tmp = ex.tempdir("bindrw-")
    try:
        copy = str(tmp / "src")
        if os.path.isdir(path):
            shutil.copytree(path, copy, symlinks=True)
        else:
            shutil.copy2(path, copy)
        yield copy
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
