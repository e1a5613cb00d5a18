"""WORKDIR: the directory made (owned by USER) when the image lacks it; none, no layer.

The owner is USER read as BuildKit's LLB reads a ``--chown`` (``WithUser``), not as a RUN
would run: a bare uid N makes the directories N:N, though a RUN as N has gid 0.
"""

from __future__ import annotations

import shutil
from dataclasses import replace

from pybuild.build.prepared import Prepared
from pybuild.build.staging import Staging
from pybuild.build.stepcontext import Output, StepContext
from pybuild.build.users import resolve_owner
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
        user = state.config.user
        uid, gid = resolve_owner(view, user, "USER") if user else (0, 0)
        Staging(tree, view).ensure_dir(view.resolve(path), uid=uid, gid=gid)
        return ex.commit_dir(state, tree, upper=False)
    except BaseException:
        shutil.rmtree(tree, ignore_errors=True)
        raise
