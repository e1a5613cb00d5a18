"""Stage and scope resolution, from hand-built syntax nodes."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.nodes import node

from pybuild.errors import StageError
from pybuild.instructions import convert
from pybuild.plan.stages import resolve


def insts(*nodes):
    return [convert(n.__class__(**{**n.__dict__, "start_line": i + 1, "end_line": i + 1}))
            for i, n in enumerate(nodes)]


def test_global_args_only_in_from_unless_redeclared():
    b = resolve(insts(
        node("arg", "V=3.19"), node("from", "alpine:${V}"),
        node("run", "echo $V"), node("arg", "V"), node("run", "echo $V")))
    stage = b.stages[0]
    assert stage.base == "alpine:3.19" and not stage.base_is_stage
    assert "V" not in stage.scopes[0].variables()  # before the redeclaration
    assert stage.scopes[2].variables()["V"] == "3.19"
    assert b.global_args["V"] == "3.19"


def test_build_args_override_declared_only_and_unused_reported():
    b = resolve(insts(node("arg", "BASE=alpine"), node("from", "${BASE}"),
                      node("arg", "X=1"), node("run", "true")),
                {"BASE": "debian", "X": "2", "NOPE": "3", "HTTP_PROXY": "p", "GONE": None})
    assert b.stages[0].base == "debian"
    assert b.stages[0].final.args == {"X": "2"}
    assert b.unused_build_args == ("NOPE",)


def test_env_shadows_arg_and_pairs_see_old_values():
    b = resolve(insts(node("from", "a"), node("arg", "N=arg"), node("env", "N", "env", "="),
                      node("env", "A", "1", "=", "B", "$A", "="), node("run", "x")))
    last = b.stages[0].scopes[-1]
    assert last.variables()["N"] == "env"
    assert last.env == {"N": "env", "A": "1", "B": ""}


def test_stage_on_stage_inherits_env_not_args():
    b = resolve(insts(node("from", "alpine", "AS", "base"), node("env", "HOME_", "/h", "="),
                      node("arg", "A=1"), node("from", "BASE"), node("run", "x")))
    child = b.stages[1]
    assert child.base_is_stage and child.base_stage == 0
    assert child.scopes[0].env == {"HOME_": "/h"} and child.scopes[0].args == {}


def test_platform_args_known_globally_and_on_redeclaration():
    b = resolve(insts(node("from", "img", flags=("--platform=$BUILDPLATFORM",)),
                      node("arg", "TARGETARCH"), node("run", "x")))
    assert b.stages[0].platform == "linux/amd64"
    assert b.stages[0].final.args == {"TARGETARCH": "amd64"}


def test_copy_from_dependencies_and_target_reachability():
    b = resolve(insts(
        node("from", "alpine", "AS", "a"), node("from", "alpine", "AS", "b"),
        node("copy", "/x", "/x", flags=("--from=A",)),
        node("from", "alpine", "AS", "c"),
        node("run", "x", flags=("--mount=from=b,target=/b",)),
        node("copy", "/y", "/y", flags=("--from=nginx",)),
        node("copy", "/z", "/z", flags=("--from=0",))), target="C")
    assert b.stages[1].deps == (0,)
    assert b.stages[2].deps == (1, 0) and b.stages[2].images == ("nginx",)
    assert b.target_index == 2 and b.needed == (0, 1, 2)
    only_a = resolve(insts(node("from", "x", "AS", "a"), node("from", "y", "AS", "b")),
                     target="a")
    assert only_a.needed == (0,)
    assert b.stage("B").index == 1 and b.stage(2).name == "c" and b.stage("zz") is None


def test_from_sees_only_earlier_stages():
    b = resolve(insts(node("from", "later", "AS", "first"), node("from", "x", "AS", "later")))
    assert not b.stages[0].base_is_stage and b.stages[0].base == "later"


@pytest.mark.parametrize("nodes, target, message", [
    ((node("from", "a", "AS", "s0"), node("copy", "f", "/", flags=("--from=s0",))), None,
     "circular dependency detected on stage: s0"),
    ((node("from", "a"), node("copy", "f", "/", flags=("--from=0",))), None,
     "circular dependency detected on stage: stage-0"),
    ((node("from", "a"),), "nope", 'target stage "nope" could not be found'),
    ((node("from", "a"), node("copy", "f", "/", flags=("--from=4",))), None,
     "invalid stage index 4"),
    ((node("run", "x"), node("from", "a")), None, "no build stage in current context"),
    ((node("arg", "E"), node("from", "$E")), None, "base name ($E) should not be blank"),
])
def test_stage_errors(nodes, target, message):
    with pytest.raises(StageError) as info:
        resolve(insts(*nodes), target=target)
    assert info.value.message == message


def test_cycle_through_forward_reference():
    with pytest.raises(StageError, match="circular dependency detected on stage: stage0"):
        resolve(insts(
            node("from", "b", "AS", "stage0"), node("copy", "f", "/", flags=("--from=stage2",)),
            node("from", "b", "AS", "stage1"), node("copy", "f", "/", flags=("--from=stage0",)),
            node("from", "b", "AS", "stage2"), node("copy", "f", "/", flags=("--from=stage1",))))


def test_base_environment_default_path_and_image_env():
    nodes = (node("from", "img"), node("env", "PATH", "/opt:$PATH", "="),
             node("env", "J", "$JAVA_HOME/bin", "="))
    default = resolve(insts(*nodes)).stages[0].final
    assert default.env == {"PATH": "/opt:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
                           "/sbin:/bin", "J": "/bin"}
    known = resolve(insts(*nodes), image_env=lambda ref: {"JAVA_HOME": f"/{ref}",
                                                           "PATH": "/x"}).stages[0].final
    assert known.env == {"PATH": "/opt:/x", "J": "/img/bin"}
    assert known.image == {"JAVA_HOME": "/img", "PATH": "/x"}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 20), max_size=3), min_size=1, max_size=6),
       st.integers(0, 5))
def test_needed_is_the_closure_of_backward_references(refs, target):
    """Stages that only use earlier stages never form a cycle; ``needed`` is exactly what the
    target reaches through bases and --from, and always includes the target."""
    nodes = []
    for index, uses in enumerate(refs):
        nodes.append(node("from", "alpine", "AS", f"s{index}"))
        nodes += [node("copy", "/x", "/x", flags=(f"--from=s{u % index}",))
                  for u in uses if index]
    target %= len(refs)
    b = resolve(insts(*nodes), target=f"S{target}")
    assert target in b.needed
    closure, todo = {target}, [target]
    while todo:
        for dep in b.stages[todo.pop()].deps:
            if dep not in closure:
                closure.add(dep)
                todo.append(dep)
    assert set(b.needed) == closure


def test_copy_from_a_later_stage_is_allowed():
    b = resolve(insts(node("from", "a", "AS", "first"),
                      node("copy", "/x", "/x", flags=("--from=later",)),
                      node("from", "b", "AS", "later")), target="first")
    assert b.stages[0].deps == (1,) and b.needed == (0, 1)
    assert b.stages[0].dep_lines == (2,)
