"""The build loop: stages in order, each instruction either a config change, a cache hit, or a
step that runs (RUN in the sandbox, COPY/ADD/WORKDIR through a staged tree) and adds a layer.

Cache keys chain: a step's key covers its parent's key and its plan's inputs (the expanded
instruction, the build args and state it uses, :mod:`pybuild.plan.steps`) plus, for COPY/ADD
and bind mounts, the digest of the files it reads. Config-only instructions are cheap and are
simply applied again on every build. Steps see the build through a
:class:`~pybuild.build.stepcontext.StepContext`, never through the executor.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from pybuild import progress as ev
from pybuild.build import steps
from pybuild.build.options import BuildOptions
from pybuild.build.workspace import Workspace
from pybuild.cache.index import CacheIndex, CacheRecord
from pybuild.context.walk import BuildContext
from pybuild.errors import BuildError, DockerfileError, ImageNotFound, PybuildError, RegistryError
from pybuild.image.config import ContainerConfig, ImageConfig, rfc3339
from pybuild.instructions import Arg, From, Instruction
from pybuild.plan.stages import BuildStages, Stage
from pybuild.plan.state import StageState, apply_arg, apply_config
from pybuild.plan.steps import LAYER_STEPS
from pybuild.store import Store
from pybuild.store.records import LayerRef

Emit = Callable[[object], None]


class Executor:
    def __init__(self, store: Store, options: BuildOptions, stages: BuildStages,
                 context: BuildContext, emit: Emit, file: str):
        self.store = store
        self.options = options
        self.stages = stages
        self.context = context
        self.emit = emit
        self.file = file
        self.index = CacheIndex(store.root)
        self.workspace = Workspace(store, options, context, self.state_for)
        self.results: dict[int, StageState] = {}
        self.step_no = 0
        self.escape = "\\"
        epoch = options.source_date_epoch
        self.created = rfc3339(epoch if epoch is not None else time.time())

    # -- stages

    def run(self) -> StageState:
        for number in self.stages.needed:
            self.results[number] = self.build_stage(self.stages.stages[number])
        return self.results[self.stages.target_index]

    def build_stage(self, stage: Stage) -> StageState:
        layer_steps = [i for i in stage.instructions if isinstance(i, LAYER_STEPS)]
        total = len(layer_steps) + 1
        label = stage.name or "" if len(self.stages.needed) > 1 else ""
        step = self._start(label, 1, total, f"FROM {stage.base}")
        state = self.base_state(stage).with_default_path()
        self.emit(ev.StepDone(step, 0.0))
        state = self.onbuild_triggers(state, stage)
        position = 1
        for i, inst in enumerate(stage.instructions):
            if isinstance(inst, LAYER_STEPS):
                position += 1
                state = self.layer_step(state, stage, i, inst, label, position, total)
            else:
                state = self.config_step(state, stage, inst)
        return state

    def base_state(self, stage: Stage) -> StageState:
        from pybuild.build.options import platform_supported

        if stage.platform and not platform_supported(stage.platform):
            raise BuildError(f"{self.file}:{stage.from_.line}: platform {stage.platform} is "
                             "not supported (only linux/amd64)")
        if stage.base_is_stage and stage.base_stage is not None:
            base = self.results[stage.base_stage]
            return replace(base, args={}, declared=(), cmd_set=False, created=self.created,
                           escape=self.escape)
        if stage.base.lower() == "scratch":  # BuildKit's empty image has WorkingDir /
            image = ImageConfig(config=ContainerConfig(working_dir="/"))
            return StageState(image, (), "scratch", created=self.created, escape=self.escape)
        return replace(self.image_state(stage.base, stage.from_.line), created=self.created,
                       escape=self.escape)

    def image_state(self, name: str, line: int) -> StageState:
        """The state of image ``name``, pulled when the store lacks it, its own id standing in
        for a parent key."""
        from pybuild.images.obtain import obtain

        try:
            record = obtain(self.store, name, on_event=self.emit,
                            policy="always" if self.options.pull else "missing")
        except ImageNotFound:
            raise BuildError(f"{self.file}:{line}: image {name} not found locally") from None
        except RegistryError as err:
            raise BuildError(f"{self.file}:{line}: {err}") from None  # err names the image
        image = ImageConfig.from_bytes(self.store.blobs.read_bytes(record.config_digest))
        return StageState(image, record.layers, f"image:{record.id}")

    def onbuild_triggers(self, state: StageState, stage: Stage) -> StageState:
        triggers = state.config.on_build
        if not triggers:
            return state
        from pybuild.dockerfile.parser import parse
        from pybuild.instructions import from_document

        state = replace(state, image=replace(state.image, config=replace(
            state.config, on_build=())))
        doc = parse("\n".join(triggers) + "\n", file=f"{stage.base} ONBUILD")
        for inst in from_document(doc):
            if isinstance(inst, LAYER_STEPS):
                state = self.layer_step(state, stage, -1, inst, "", 1, 1)
            else:
                state = self.config_step(state, stage, inst)
        return state

    # -- config-only instructions

    def config_step(self, state: StageState, stage: Stage, inst: Instruction) -> StageState:
        if isinstance(inst, Arg):
            return apply_arg(state, inst, self.options.build_args, self.stages.global_args)
        if isinstance(inst, From):
            return state
        new = apply_config(state, inst)
        if new is None:
            raise BuildError(f"{self.file}:{inst.line}: {inst.keyword} is not supported here")
        return new

    # -- steps that add a layer

    def _start(self, stage: str, index: int, total: int, text: str) -> int:
        self.step_no += 1
        self.emit(ev.StepStarted(self.step_no, stage, index, total, text))
        return self.step_no

    def layer_step(self, state: StageState, stage: Stage, i: int, inst: Instruction,
                   label: str, position: int, total: int) -> StageState:
        step = self._start(label, position, total, _display(inst))
        started = time.monotonic()
        try:
            prepared = steps.prepare(self.workspace, state, inst)
            inputs = prepared.key_inputs(state.key)
            key = inputs.key()
            slot = f"{self.context.root}|{self.file}|{stage.index}/{i}"
            hit = self.lookup(key, stage)
            if hit is not None:
                self.emit(ev.StepCached(step))
                layer = LayerRef(hit.layer, int(hit.meta.get("size", 0))) if hit.layer else None
                return prepared.apply(state, layer, key)
            if not self.options.no_cache:
                self.emit(ev.CacheMiss(step, self.index.explain(slot, inputs)))
            layer = prepared.execute(lambda s, b: self.emit(ev.LogLine(step, s, b)))
            self.index.put(CacheRecord(key, inputs, layer.diff_id if layer else None,
                                       meta={"size": layer.size if layer else 0}), slot=slot)
            return prepared.apply(state, layer, key)
        except PybuildError as err:
            log_tail = tuple(getattr(err, "log_tail", ()))
            self.emit(ev.StepFailed(step, str(err), log_tail))
            if isinstance(err, DockerfileError) or str(err).startswith(f"{self.file}:"):
                if isinstance(err, BuildError) and err.step is None:
                    err.step, err.log_tail = _display(inst), err.log_tail or log_tail
                raise
            # The step's details go with the located error: the instruction as the progress
            # showed it, the exit status of its process (RUN) and the end of its log.
            raise BuildError(f"{self.file}:{inst.line}: {err}",
                             step=getattr(err, "step", None) or _display(inst),
                             returncode=getattr(err, "returncode", None),
                             log_tail=log_tail) from None
        finally:
            self.emit(ev.StepDone(step, time.monotonic() - started))

    def lookup(self, key: str, stage: Stage) -> CacheRecord | None:
        if self.options.no_cache or (stage.name and stage.name in self.options.no_cache_filter):
            return None
        record = self.index.get(key)
        if record is None:
            return None
        if record.layer is not None and not self.store.blobs.has(record.layer):
            return None
        return record

    # -- other stages

    def state_for(self, ref: str, line: int) -> StageState:
        """The state ``--from=ref`` names: a stage (name or index) or an image. A stage not
        built yet (one defined later) is what its FROM line gives, as BuildKit 0.8 has it."""
        stage = self.stages.stage(ref)
        if stage is not None:
            if stage.index not in self.results:
                return self.base_state(stage).with_default_path()
            return self.results[stage.index]
        return self.image_state(ref, line)

    def cleanup(self) -> None:
        self.workspace.cleanup()


def _display(inst: Instruction) -> str:
    raw = " ".join(inst.raw.split()) if inst.raw else inst.keyword
    return raw if len(raw) <= 80 else raw[:77] + "..."
