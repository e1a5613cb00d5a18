"""Layer steps: each instruction's pure plan (:mod:`pybuild.plan.steps`) handed to the module
of its kind, which adds the inputs only files can give and knows how to run it."""

from __future__ import annotations

from pybuild.build import copystep, runstep, workdirstep
from pybuild.build.prepared import Prepared
from pybuild.build.stepcontext import StepContext
from pybuild.errors import BuildError
from pybuild.instructions import Instruction
from pybuild.plan.state import StageState
from pybuild.plan.steps import CopyPlan, RunPlan, WorkdirPlan, plan_step


def prepare(ex: StepContext, state: StageState, inst: Instruction) -> Prepared:
    plan = plan_step(state, inst, ex.network)
    if isinstance(plan, RunPlan):
        return runstep.prepare(ex, state, plan)
    if isinstance(plan, CopyPlan):
        return copystep.prepare(ex, state, plan)
    if isinstance(plan, WorkdirPlan):
        return workdirstep.prepare(ex, state, plan)
    raise BuildError(f"{inst.keyword} does not add a layer")
