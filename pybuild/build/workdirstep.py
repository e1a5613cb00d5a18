"""WORKDIR: the directory made (owned by USER) when the image lacks it; none, no layer."""

from __future__ import annotations

import shutil
from dataclasses import replace

from pybuild.build.prepared import Prepared
from pybuild.build.staging import Staging
from pybuild.build.stepcontext import Output, StepContext
from pybuild.build.users import resolve_user
from pybuild.image.config import ContainerConfig
from pybuild.plan.state import StageState
from pybuild.plan.steps import WorkdirPlan
from pybuild.store.records import LayerRef


def prepare(ex: StepContext, state: StageState, plan: WorkdirPlan) -> Prepared:
    def config(c: ContainerConfig) -> ContainerConfig:
        return replace(c, working_dir=plan.path)

    def execute(on_output: Output) -> LayerRef | None:
        return _execute(ex, state, plan.path)

    return Prepared(plan, execute, config=config)


def _execute(ex: StepContext, state: StageState, path: str) -> LayerRef | None:
    view = ex.view(state)
    if view.is_dir(path):
        return None
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
