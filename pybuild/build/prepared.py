"""A layer step made ready for the cache: its plan plus the key inputs only files can give.

``execute`` does the work and returns the new layer (or None when nothing changed);
``apply`` makes the next state from a layer, whether built now or found in the cache.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from pybuild.build.stepcontext import Output
from pybuild.cache.keys import KeyInputs
from pybuild.image.config import ContainerConfig
from pybuild.plan.state import StageState
from pybuild.plan.steps import StepPlan
from pybuild.store.records import LayerRef


@dataclass(frozen=True)
class Prepared:
    plan: StepPlan
    execute: Callable[[Output], LayerRef | None]
    sources_digest: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)  # inputs beyond the plan's
    manifest: tuple[tuple[str, str], ...] = ()  # per-file digests, to explain a miss
    # how the step changes the container config besides adding a layer (WORKDIR)
    config: Callable[[ContainerConfig], ContainerConfig] | None = None

    def key_inputs(self, parent_key: str) -> KeyInputs:
        return KeyInputs.make(parent_key, self.plan.text, self.plan.args,
                              self.sources_digest, {**self.plan.extra, **self.extra},
                              self.manifest)

    def apply(self, state: StageState, layer: LayerRef | None, key: str) -> StageState:
        history = self.plan.history
        if layer is None:
            if self.config is not None:
                state = state.with_config(self.config(state.config), history)
            return replace(state, key=key or state.key)
        if self.config is not None:
            state = replace(state, image=replace(state.image, config=self.config(state.config)))
        return state.with_layer(layer, history, key)
