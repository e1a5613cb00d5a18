"""Layer steps prepared for the cache, then executed on a miss: RUN, COPY, ADD, WORKDIR.

``prepare`` computes the cache-key inputs without touching layers; ``Prepared.execute`` does
the work and returns the new layer (or None when nothing changed); ``Prepared.apply`` makes
the next state from a layer, whether built now or found in the cache.
"""

from __future__ import annotations

import json
import posixpath
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from pybuild.build import copystep, runmounts, runstep
from pybuild.build.state import StageState, workdir_path
from pybuild.build.stepcontext import StepContext
from pybuild.errors import BuildError
from pybuild.image.config import ContainerConfig
from pybuild.instructions import Add, Copy, Instruction, Run, Workdir
from pybuild.store.records import LayerRef

Output = Callable[[str, bytes], None]


@dataclass
class Prepared:
    text: str
    execute_fn: Callable[[Output], LayerRef | None]
    history: str
    # how the step changes the container config besides adding a layer (WORKDIR)
    config: Callable[[ContainerConfig], ContainerConfig] | None = None
    args: Mapping[str, str] = field(default_factory=dict)
    sources_digest: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)
    manifest: tuple[tuple[str, str], ...] = ()
    skip: bool = False

    def execute(self, on_output: Output) -> LayerRef | None:
        return self.execute_fn(on_output)

    def apply(self, state: StageState, layer: LayerRef | None, key: str) -> StageState:
        if layer is None:
            if self.config is not None:
                state = state.with_config(self.config(state.config), self.history)
            return replace(state, key=key or state.key)
        if self.config is not None:
            state = replace(state, image=replace(state.image, config=self.config(state.config)))
        return state.with_layer(layer, self.history, key)


def prepare(ex: StepContext, state: StageState, inst: Instruction) -> Prepared:
    if isinstance(inst, Run):
        return _run(ex, state, inst)
    if isinstance(inst, Workdir):
        return _workdir(ex, state, inst)
    if isinstance(inst, (Copy, Add)):
        return copystep.prepare(ex, state, inst)
    raise BuildError(f"{inst.keyword} does not add a layer")


def _state_extra(state: StageState) -> dict[str, str]:
    return {"env": json.dumps(list(state.config.env)), "user": state.config.user,
            "workdir": state.workdir}


def _run(ex: StepContext, state: StageState, inst: Run) -> Prepared:
    inst = runmounts.expand_mounts(state, inst)
    argv = runstep.argv_of(state, inst)
    network = inst.network or ex.network
    network = "host" if network == "host" else "none"  # no container networking yet
    if inst.security == "insecure":
        raise BuildError("RUN --security=insecure is not allowed")
    extra = _state_extra(state)
    for m in inst.mounts:  # a mount from another stage or image: its content is an input
        if m.from_ and m.type == "bind":
            extra[f"mount-from:{m.from_}"] = ex.state_for(m.from_, inst.line).key
    digest = None
    binds = [m for m in inst.mounts if m.type == "bind" and not m.from_]
    if binds:
        digest = ex.files.content_digest(ex.files.resolve_sources(
            [m.source or "." for m in binds], instruction="RUN --mount"))

    def execute(on_output: Output) -> LayerRef | None:
        return runstep.execute(ex, state, inst, argv, network, on_output)

    return Prepared(runstep.key_text(argv, inst, network), execute,
                    runstep.history_text(argv, inst, state), args=dict(state.args),
                    sources_digest=digest, extra=extra)


def _workdir(ex: StepContext, state: StageState, inst: Workdir) -> Prepared:
    path = workdir_path(state, inst.path, inst.line)

    def config(c: ContainerConfig) -> ContainerConfig:
        return replace(c, working_dir=path)

    def execute(on_output: Output) -> LayerRef | None:
        view = ex.view(state)
        if view.is_dir(path):
            return None
        from pybuild.build.staging import Staging
        from pybuild.build.users import resolve_user

        tree = ex.tempdir("workdir-")
        try:
            ids = resolve_user(view, state.config.user) if state.config.user else None
            real = view.resolve(path)
            Staging(tree, view).ensure_dir(real, uid=ids.uid if ids else 0,
                                           gid=ids.gid if ids else 0)
            return ex.commit_dir(state, tree, upper=False)
        except BaseException:
            shutil.rmtree(tree, ignore_errors=True)
            raise

    return Prepared(f"WORKDIR {posixpath.normpath(path)}", execute, f"WORKDIR {path}",
                    config=config, extra={"user": state.config.user})
