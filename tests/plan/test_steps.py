"""The pure step list: what RUN, COPY, ADD, WORKDIR and ARG become on a stage's state, with no
store, no context and no filesystem behind them."""

import json

import pytest

from pybuild.cache.keys import KeyInputs
from pybuild.dockerfile.parser import parse
from pybuild.errors import BuildError, InstructionError
from pybuild.image.config import ContainerConfig, ImageConfig
from pybuild.instructions import from_document
from pybuild.plan.state import StageState, apply_arg
from pybuild.plan.steps import CopyPlan, RunPlan, WorkdirPlan, plan_step


def inst(line: str):
    return from_document(parse(f"FROM scratch\n{line}\n"))[1]


def state(env=(), user="", workdir="", args=None, declared=()) -> StageState:
    config = ContainerConfig(env=tuple(env), user=user, working_dir=workdir)
    return StageState(ImageConfig(config=config), (), "parent-key", args=args or {},
                      declared=declared)


def test_run_shell_form_goes_through_the_shell_and_records_its_inputs():
    plan = plan_step(state(env=("A=1",), user="app", workdir="/src", args={"V": "2"}),
                     inst("RUN echo $V"), "default")
    assert isinstance(plan, RunPlan)
    assert plan.argv == ("/bin/sh", "-c", "echo $V")
    assert plan.network == "default"  # the build's default: the default bridge
    assert plan.args == {"V": "2"}
    assert plan.extra == {"env": '["A=1"]', "user": "app", "workdir": "/src"}
    assert json.loads(plan.text) == {"run": ["/bin/sh", "-c", "echo $V"], "mounts": [],
                                     "network": "default", "security": None}


def test_run_history_shows_declared_args_with_env_winning():
    s = state(env=("B=env",), args={"A": "1", "B": "arg"}, declared=("A", "B"))
    plan = plan_step(s, inst('RUN ["echo", "hi"]'), "host")
    assert plan.network == "host"
    assert plan.history == "RUN |2 A=1 B=env echo hi # buildkit"


def test_run_mount_values_are_expanded_in_the_plan():
    plan = plan_step(state(args={"C": "/cache"}), inst("RUN --mount=type=cache,target=$C true"),
                     "none")
    assert plan.inst.mounts[0].target == "/cache"
    assert json.loads(plan.text)["mounts"][0]["target"] == "/cache"


def test_run_insecure_is_refused_before_anything_runs():
    with pytest.raises(BuildError, match="insecure"):
        plan_step(state(), inst("RUN --security=insecure true"), "none")


def test_copy_dest_is_absolute_and_keeps_its_directory_slash():
    s = state(workdir="/app", args={"D": "sub"})
    plan = plan_step(s, inst("COPY --chown=$D a b $D/"), "none")
    assert isinstance(plan, CopyPlan)
    assert plan.dest == "/app/sub/"
    assert plan.inst.chown == "sub"
    assert plan.history == "COPY a b $D/ # buildkit"
    assert json.loads(plan.text)["sources"] == ["a", "b"]
    # a source that exists nowhere is fine: the plan reads no files
    assert plan_step(s, inst("COPY missing ."), "none").dest == "/app/"


def test_workdir_chains_relative_paths_and_keys_on_the_user():
    plan = plan_step(state(workdir="/a", user="u"), inst("WORKDIR b/../c"), "none")
    assert isinstance(plan, WorkdirPlan)
    assert plan.path == "/a/c"
    assert (plan.text, plan.history, plan.extra) == ("WORKDIR /a/c", "WORKDIR /a/c",
                                                     {"user": "u"})
    with pytest.raises(InstructionError):
        plan_step(state(), inst("WORKDIR $EMPTY"), "none")


def test_config_instructions_do_not_plan_a_layer():
    with pytest.raises(BuildError, match="does not add a layer"):
        plan_step(state(), inst("ENV A=1"), "none")


def test_equal_plans_give_equal_keys_and_any_input_changes_it():
    def key(s: StageState, line: str) -> str:
        plan = plan_step(s, inst(line), "none")
        return KeyInputs.make(s.key, plan.text, plan.args, None, plan.extra).key()

    base = key(state(), "RUN true")
    assert key(state(), "RUN true") == base
    assert key(state(env=("A=1",)), "RUN true") != base
    assert key(state(args={"X": "1"}), "RUN true") != base
    assert key(state(), "RUN false") != base
    assert key(state(), "RUN --network=host true") != base
    assert key(state(), "RUN --network=default true") != base  # the bridge, not none


def test_arg_takes_build_arg_then_default_then_global():
    line = inst("ARG A=default B C")
    s = apply_arg(state(), line, {"A": "given", "B": None}, {"B": "global", "C": None})
    assert dict(s.args) == {"A": "given", "B": "global"}
    assert s.declared == ("A", "B", "C")
    assert s.image.history[-1].created_by == "ARG A=given B=global C"
    s = apply_arg(state(), line, {}, {})
    assert dict(s.args) == {"A": "default"}
