"""RUN: the inputs of its bind mounts, the sandbox spec of one step, and running it.

The overlay's lower dirs are the parent's unpacked layers; its upper dir becomes the new
layer. /etc/hosts, /etc/resolv.conf and /etc/hostname are bind-mounted from a temp dir, so
their contents never reach the layer. What their mount points leave is BuildKit 20.10's:
where the image lacks /etc/hosts or /etc/resolv.conf an empty stub is made to mount over and
removed afterwards, so /etc comes in the layer with the RUN's time; directories made for
them or for /proc, /dev and /sys stay, empty (/etc, /proc, /dev and /sys in a scratch
stage). /etc/hostname (which BuildKit does not mount) and ``--mount`` targets leave
nothing.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pybuild.build.prepared import Prepared
from pybuild.build.rootfs import RootfsView
from pybuild.build.runmounts import mounts, secret_source
from pybuild.build.stepcontext import Output, StepContext
from pybuild.build.users import Ids, resolve_user
from pybuild.errors import BuildError
from pybuild.instructions import Run
from pybuild.plan.state import StageState
from pybuild.plan.steps import RunPlan
from pybuild.store.records import LayerRef

if TYPE_CHECKING:  # the runner is imported only when a step really runs
    from pybuild.runner.spec import Mount, RunSpec

HOSTNAME = "buildkitsandbox"
# BuildKit 20.10's /etc/hosts, byte for byte.
HOSTS = f"127.0.0.1\tlocalhost {HOSTNAME}\n::1\tlocalhost ip6-localhost ip6-loopback\n"
# The mount points a RUN leaves as runc and BuildKit do (see the module docstring).
KEPT_MOUNT_POINTS = ("/proc", "/dev", "/sys", "/etc/hosts", "/etc/resolv.conf")
_PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY")


def prepare(ex: StepContext, state: StageState, plan: RunPlan) -> Prepared:
    """The plan plus what it reads: the key of each stage or image bind-mounted with
    ``from=`` and the digest of the context files bind-mounted without it."""
    inst = plan.inst
    extra = {f"mount-from:{m.from_}": ex.state_for(m.from_, inst.line).key
             for m in inst.mounts if m.from_ and m.type == "bind"}
    digest = None
    binds = [m for m in inst.mounts if m.type == "bind" and not m.from_]
    if binds:
        digest = ex.files.content_digest(ex.files.resolve_sources(
            [m.source or "." for m in binds], instruction="RUN --mount"))

    def run(on_output: Output) -> LayerRef | None:
        return execute(ex, state, inst, plan.argv, plan.network, on_output)

    return Prepared(plan, run, sources_digest=digest, extra=extra)


def proxy_env(build_args: Mapping[str, str | None]) -> dict[str, str]:
    """The proxy settings given as --build-arg, as BuildKit hands them to a RUN: each under
    both spellings (``HTTP_PROXY`` and ``http_proxy``) whichever was given (the name in any
    case), none that is empty; the upper-case spelling's value wins when both are given."""
    values: dict[str, str] = {}
    for name, value in sorted(build_args.items(), key=lambda kv: not kv[0].isupper()):
        base = name.upper()
        if base in _PROXIES and value and base not in values:
            values[base] = value
    return {k: v for base, value in values.items() for k, v in
            ((base, value), (base.lower(), value))}


def run_env(ex: StepContext, state: StageState, inst: Run, ids: Ids) -> tuple[str, ...]:
    """The step's environment: the state's, HOME (the user's, as BuildKit sets it), the
    predefined proxy args given as --build-arg (not declared, so kept out of history and the
    cache key), and ``env=`` secrets."""
    env = dict(item.partition("=")[::2] for item in state.run_env())
    env.setdefault("HOME", ids.home)
    for name, value in proxy_env(ex.build_args).items():
        env.setdefault(name, value)
    for m in inst.mounts:
        if m.type == "secret" and m.env:
            src = secret_source(m, dict(ex.secrets))
            if src is not None:
                with open(src, encoding="utf-8", errors="surrogateescape") as f:
                    env[m.env] = f.read()
    return tuple(f"{k}={v}" for k, v in env.items())


@dataclass(frozen=True)
class RunInputs:
    argv: tuple[str, ...]
    env: tuple[str, ...]
    ids: Ids
    cwd: str
    network: str  # default|none|host


def _etc_files(etc: Path, bridged: bool) -> tuple[tuple[str, Path], ...]:
    from pybuild.containers.runspec import resolv_conf

    etc.mkdir()
    (etc / "hosts").write_text(HOSTS)
    (etc / "resolv.conf").write_text(resolv_conf(bridged=bridged))
    (etc / "hostname").write_text(HOSTNAME + "\n")
    return tuple((f"/etc/{name}", etc / name) for name in ("hosts", "resolv.conf", "hostname"))


@contextlib.contextmanager
def sandbox_spec(inputs: RunInputs, lowerdirs: list[Path], upper: Path, work: Path,
                 mounts: tuple[Mount, ...], tmp: Path) -> Iterator[tuple[RunSpec, Path]]:
    """The step's sandbox spec and its state dir (``etc/`` with the files bind-mounted over
    /etc/hosts, resolv.conf and hostname), removed afterwards."""
    from pybuild.runner.spec import Process, Rootfs, RunSpec

    state = Path(tempfile.mkdtemp(prefix="run-", dir=tmp))
    bridged = inputs.network == "default"
    try:
        lowers = tuple(reversed(lowerdirs))
        if not lowers:  # FROM scratch: overlay needs one lower dir
            empty = state / "empty"
            empty.mkdir()
            lowers = (empty,)
        yield RunSpec(
            rootfs=Rootfs(lowerdirs=lowers, upperdir=upper, workdir=work),
            process=Process(args=inputs.argv, env=inputs.env, cwd=inputs.cwd,
                            uid=inputs.ids.uid, gid=inputs.ids.gid,
                            additional_gids=inputs.ids.additional_gids),
            hostname=HOSTNAME, network="bridge" if bridged else inputs.network, mounts=mounts,
            etc_files=_etc_files(state / "etc", bridged),
            kept_mount_points=KEPT_MOUNT_POINTS), state
    finally:
        shutil.rmtree(state, ignore_errors=True)


def run_sandbox(spec: RunSpec, on_output: Output, prepare: Callable[[int], None] | None = None
                ) -> int:
    from pybuild.runner.sandbox import run

    return run(spec, stdout=lambda b: on_output("stdout", b),
               stderr=lambda b: on_output("stderr", b), prepare=prepare)


def _tail(lines: list[bytes], n: int = 10) -> tuple[str, ...]:
    text = b"".join(lines).decode("utf-8", "replace").splitlines()
    return tuple(text[-n:])


def execute(ex: StepContext, state: StageState, inst: Run, argv: tuple[str, ...], network: str,
            on_output: Output) -> LayerRef:
    """Run the step in the sandbox; the upper dir becomes the new layer."""
    lowerdirs = ex.lowerdirs(state)
    view = RootfsView(lowerdirs)
    ids = resolve_user(view, state.config.user)  # no USER: 0:0, BuildKit's fast path
    inputs = RunInputs(argv, run_env(ex, state, inst, ids), ids, state.workdir, network)
    upper, work = ex.tempdir("upper-"), ex.tempdir("work-")
    seen: list[bytes] = []

    def output(stream: str, data: bytes) -> None:
        seen.append(data)
        del seen[:-50]
        on_output(stream, data)

    try:
        with contextlib.ExitStack() as stack:
            specs = tuple(mounts(ex, state, inst, ids, stack))
            spec, state_dir = stack.enter_context(
                sandbox_spec(inputs, lowerdirs, upper, work, specs, ex.scratch))
            plug = None
            if spec.network == "bridge":
                from pybuild.build.buildnet import default_bridge

                plug = stack.enter_context(default_bridge(ex.cache_root, state_dir / "net",
                                                          HOSTNAME))
            code = run_sandbox(spec, output, plug)
        if code != 0:
            raise BuildError(f'process "{" ".join(argv)}" did not complete successfully: '
                             f"exit code: {code}", returncode=code, log_tail=_tail(seen))
        shutil.rmtree(work, ignore_errors=True)
        return ex.commit_dir(state, upper, upper=True)
    except BaseException:
        shutil.rmtree(upper, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
        raise


