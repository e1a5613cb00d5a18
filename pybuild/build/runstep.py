"""RUN: the argv, the mounts and the sandbox spec of one step, and running it.

The overlay's lower dirs are the parent's unpacked layers; its upper dir becomes the new
layer. /etc/hosts, /etc/resolv.conf and /etc/hostname are bind-mounted from a temp dir, so
they never reach the layer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import posixpath
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pybuild.build.state import StageState
from pybuild.build.users import Ids
from pybuild.errors import BuildError
from pybuild.instructions import Mount as RunMount
from pybuild.instructions import Run

if TYPE_CHECKING:  # the runner is imported only when a step really runs
    from pybuild.runner.spec import Mount, RunSpec

HOSTNAME = "buildkitsandbox"


def argv_of(state: StageState, inst: Run) -> tuple[str, ...]:
    """The process a RUN starts: exec form as written, shell form through SHELL; a lone
    heredoc (``RUN <<EOF``) runs its body, other heredocs go to the shell with the line."""
    if not inst.shell_form:
        return tuple(inst.command)
    text = " ".join(inst.command)
    if inst.heredocs:
        if len(inst.heredocs) == 1 and text.strip() == f"<<{_word(inst)}":
            body = _body(inst.heredocs[0])
            return (*state.shell, body)
        parts = [text]
        for doc in inst.heredocs:
            parts.append(_body(doc) + doc.name)
        text = "\n".join(parts)
    return (*state.shell, text)


def expand_mounts(state: StageState, inst: Run) -> Run:
    """``--mount`` values take ARG/ENV values, as BuildKit expands them at build time."""
    from dataclasses import fields, replace

    def one(m: RunMount) -> RunMount:
        words = {f.name: getattr(m, f.name) for f in fields(m)
                 if f.name != "type" and isinstance(getattr(m, f.name), str)}
        return replace(m, **{k: state.expand(v, inst.line) for k, v in words.items()})

    if not inst.mounts:
        return inst
    return replace(inst, mounts=tuple(one(m) for m in inst.mounts))


def _word(inst: Run) -> str:
    text = " ".join(inst.command).strip()
    return text[2:] if text.startswith("<<") else ""


def _body(doc) -> str:
    if doc.chomp:
        return "".join(line.lstrip("\t") for line in doc.content.splitlines(keepends=True))
    return doc.content


def history_text(argv: tuple[str, ...], inst: Run, state: StageState | None = None) -> str:
    """BuildKit's ``RUN |N A=1 B=2 cmd``: the ARGs declared in the stage (an ENV of the same
    name shows its value), never undeclared ones such as the predefined proxy args."""
    shown = " ".join(argv)  # BuildKit joins exec form too, no JSON
    prefix = ""
    if state is not None and state.declared:
        env = state.config.env_dict()
        pairs = [f"{k}={env[k] if k in env else state.args.get(k, '')}" for k in state.declared]
        prefix = f"|{len(pairs)} {' '.join(pairs)} "
    return f"RUN {prefix}{shown} # buildkit"


def run_env(ex, state: StageState, inst: Run) -> tuple[str, ...]:
    """The step's environment: the state's, the predefined proxy args given as --build-arg
    (not declared, so kept out of history and the cache key), and ``env=`` secrets."""
    from pybuild.plan.args import PROXY_ARGS

    env = dict(item.partition("=")[::2] for item in state.run_env())
    for name, value in ex.options.build_args.items():
        if name in PROXY_ARGS and value is not None:
            env.setdefault(name, value)
    for m in inst.mounts:
        if m.type == "secret" and m.env:
            src = secret_source(m, dict(ex.options.secrets))
            if src is not None:
                with open(src, encoding="utf-8", errors="surrogateescape") as f:
                    env[m.env] = f.read()
    return tuple(f"{k}={v}" for k, v in env.items())


def key_text(argv: tuple[str, ...], inst: Run, network: str) -> str:
    mounts = [dataclasses.asdict(m) for m in inst.mounts]
    return json.dumps({"run": list(argv), "mounts": mounts, "network": network,
                       "security": inst.security}, sort_keys=True, default=str)


@dataclass(frozen=True)
class RunInputs:
    argv: tuple[str, ...]
    env: tuple[str, ...]
    ids: Ids
    cwd: str
    network: str  # none|host


def _etc_files(tmp: Path) -> tuple[tuple[str, Path], ...]:
    (tmp / "hosts").write_text(f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost "
                               f"ip6-loopback\n127.0.1.1\t{HOSTNAME}\n")
    resolv = Path("/etc/resolv.conf")
    text = resolv.read_text() if resolv.is_file() else ""
    (tmp / "resolv.conf").write_text(text)
    (tmp / "hostname").write_text(HOSTNAME + "\n")
    return tuple((f"/etc/{name}", tmp / name) for name in ("hosts", "resolv.conf", "hostname"))


@contextlib.contextmanager
def sandbox_spec(inputs: RunInputs, lowerdirs: list[Path], upper: Path, work: Path,
                 mounts: tuple[Mount, ...], tmp: Path) -> Iterator[RunSpec]:
    from pybuild.runner.spec import Process, Rootfs, RunSpec

    etc = Path(tempfile.mkdtemp(prefix="etc-", dir=tmp))
    try:
        lowers = tuple(reversed(lowerdirs))
        if not lowers:  # FROM scratch: overlay needs one lower dir
            empty = etc / "empty"
            empty.mkdir()
            lowers = (empty,)
        yield RunSpec(
            rootfs=Rootfs(lowerdirs=lowers, upperdir=upper, workdir=work),
            process=Process(args=inputs.argv, env=inputs.env, cwd=inputs.cwd,
                            uid=inputs.ids.uid, gid=inputs.ids.gid,
                            additional_gids=inputs.ids.additional_gids),
            hostname=HOSTNAME, network=inputs.network, mounts=mounts,
            etc_files=_etc_files(etc))
    finally:
        import shutil

        shutil.rmtree(etc, ignore_errors=True)


def run_sandbox(spec: RunSpec, on_output: Callable[[str, bytes], None]) -> int:
    from pybuild.runner.sandbox import run

    return run(spec, stdout=lambda b: on_output("stdout", b),
               stderr=lambda b: on_output("stderr", b))


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


def _tail(lines: list[bytes], n: int = 10) -> tuple[str, ...]:
    text = b"".join(lines).decode("utf-8", "replace").splitlines()
    return tuple(text[-n:])


def execute(ex, state: StageState, inst: Run, argv: tuple[str, ...], network: str,
            on_output: Callable[[str, bytes], None]):
    """Run the step in the sandbox; the upper dir becomes the new layer."""
    from pybuild.build.users import resolve_user

    lowerdirs = ex.lowerdirs(state)
    from pybuild.build.rootfs import RootfsView

    view = RootfsView(lowerdirs)
    ids = resolve_user(view, state.config.user or "root")
    inputs = RunInputs(argv, run_env(ex, state, inst), ids, state.workdir, network)
    upper, work = ex.tempdir("upper-"), ex.tempdir("work-")
    seen: list[bytes] = []

    def output(stream: str, data: bytes) -> None:
        seen.append(data)
        del seen[:-50]
        on_output(stream, data)

    try:
        with contextlib.ExitStack() as stack:
            mounts = tuple(_mounts(ex, state, inst, ids, stack))
            with sandbox_spec(inputs, lowerdirs, upper, work, mounts, ex.store.tmp) as spec:
                code = run_sandbox(spec, output)
        if code != 0:
            err = BuildError(f'process "{" ".join(argv)}" did not complete successfully: '
                             f"exit code: {code}")
            err.log_tail = _tail(seen)  # type: ignore[attr-defined]
            raise err
        ex.remove_tree(work)
        return ex.commit_dir(state, upper, upper=True)
    except BaseException:
        ex.remove_tree(upper)
        ex.remove_tree(work)
        raise


def _mounts(ex, state: StageState, inst: Run, ids: Ids, stack: contextlib.ExitStack):
    from pybuild.cache.mounts import CacheMounts
    from pybuild.runner.spec import Mount

    for m in inst.mounts:
        target = mount_target(m, state.workdir)
        if m.type == "cache":
            cache = CacheMounts(ex.store.root).acquire(
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
            src = secret_source(m, dict(ex.options.secrets))
            if src is not None and (m.target or not m.env):  # env= alone mounts no file
                yield Mount("bind", _secret_copy(m, src, ex.store.tmp, stack), target, True)
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


def _seed_cache(ex, m: RunMount, path: Path) -> None:
    """``from=`` (and ``source=``) give an empty cache its first contents, as BuildKit's
    base of a cache mount."""
    import shutil

    if any(path.iterdir()):
        return
    flat = ex.flatten_from(m.from_)
    src = os.path.realpath(os.path.join(flat, (m.source or "/").lstrip("/")))
    if src != flat and not src.startswith(flat.rstrip("/") + "/"):
        raise BuildError(f"cache mount source {m.source} escapes its stage")
    if os.path.isdir(src):
        shutil.copytree(src, path, symlinks=True, dirs_exist_ok=True)


def _bind_source(ex, m: RunMount, stack: contextlib.ExitStack) -> str:
    source = (m.source or "/").lstrip("/")
    if not m.from_:
        root = os.path.realpath(ex.context.root)
        path = os.path.realpath(os.path.join(root, source))
        if path != root and not path.startswith(root + "/"):
            raise BuildError(f"bind mount source {m.source} is outside the build context")
        if getattr(ex.context.ignore, "patterns", ()):
            path = stack.enter_context(_filtered_context(ex, source or "."))
    else:
        flat = ex.flatten_from(m.from_)
        path = os.path.realpath(os.path.join(flat, source))
        if path != flat and not path.startswith(flat.rstrip("/") + "/"):
            raise BuildError(f"bind mount source {m.source} escapes its stage")
    if not m.readonly:  # as BuildKit: writes go to a scratch copy, never to the source
        path = stack.enter_context(_scratch_copy(ex, path))
    return path


@contextlib.contextmanager
def _filtered_context(ex, source: str) -> Iterator[str]:
    """The context below ``source`` as the build sees it: .dockerignore'd paths left out
    (they are not in the cache key either). Files are hard links: the mount is read-only,
    and a rw mount copies this tree again."""
    tmp = ex.tempdir("bindctx-")
    try:
        entries = ex.context.resolve_sources([source], instruction="RUN --mount")
        top = tmp / "src"
        single = len(entries) == 1 and entries[0].kind != "dir"  # a file named as the source
        for e in entries:
            dest = top / e.dest if e.dest and not single else top
            host = os.path.join(ex.context.root, e.relpath)
            if e.kind == "dir":
                dest.mkdir(mode=e.mode, exist_ok=True)
            elif e.kind == "symlink":
                os.symlink(e.link_target or "", dest)
            elif e.kind == "file":
                _link_or_copy(host, dest)
        yield str(top)
    finally:
        ex.remove_tree(tmp)


def _link_or_copy(src: str, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:  # another file system
        import shutil

        shutil.copy2(src, dest)


@contextlib.contextmanager
def _scratch_copy(ex, path: str) -> Iterator[str]:
    import shutil

    tmp = ex.tempdir("bindrw-")
    try:
        copy = str(tmp / "src")
        if os.path.isdir(path):
            shutil.copytree(path, copy, symlinks=True)
        else:
            shutil.copy2(path, copy)
        yield copy
    finally:
        ex.remove_tree(tmp)
