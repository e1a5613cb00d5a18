"""``pybuild.__all__`` is the public API: changing it is a decision, so this test pins it. Each
name is the object its defining module has, the typed imports agree with what loads at run
time, and ``import pybuild`` stays cheap for the CLI that runs under it."""

import ast
import inspect
import subprocess
import sys
from importlib import import_module

import pybuild
import pybuild.errors

PUBLIC_API = [
    "ArchiveError", "BlobNotFound", "BuildDone", "BuildError", "BuildKeywords", "BuildOptions",
    "BuildReplayed", "BuildStages", "BuildStarted", "BuildWarning", "CacheMiss", "CheckWarning",
    "Client", "ContainerError", "ContainerNotFound",
    "ContextError", "CorruptStore", "DigestMismatch", "DockerfileError", "Event",
    "EventHandler", "ExpansionError", "From", "IgnorePatternError", "Image", "ImageError",
    "ImageNotFound", "Instruction", "InstructionError", "LayerError", "LockTimeout", "LogLine",
    "NetworkError", "NetworkNotFound", "ParseError", "PybuildError", "ReferenceError_",
    "RegistryError", "RunnerError", "Stage",
    "StageError", "StepCached", "StepDone", "StepFailed", "StepStarted", "StoreError",
    "UnsafePathError", "UsageError", "VolumeError", "__version__", "parse", "parse_file",
    "parse_instructions", "resolve_stages", "run_checks",
]


def type_checking_imports() -> dict[str, str]:
    """name -> module, as ``pybuild/__init__.py``'s ``if TYPE_CHECKING:`` block imports them."""
    tree = ast.parse(inspect.getsource(pybuild))
    [block] = [node for node in tree.body if isinstance(node, ast.If)
               and getattr(node.test, "id", "") == "TYPE_CHECKING"]
    return {alias.name: node.module for node in block.body for alias in node.names}


def test_all_is_pinned():
    assert pybuild.__all__ == PUBLIC_API
    assert PUBLIC_API == sorted(PUBLIC_API)


def test_every_public_name_is_its_modules_object():
    lazy = type_checking_imports()
    assert lazy == pybuild._LAZY  # what type checkers see is what loads
    errors = {name for name, value in vars(pybuild.errors).items()
              if isinstance(value, type) and issubclass(value, pybuild.errors.PybuildError)}
    assert set(PUBLIC_API) == errors | set(lazy) | {"__version__"}
    for name in PUBLIC_API:
        where = import_module(lazy.get(name, "pybuild.errors")) if name != "__version__" else None
        if where is not None:
            assert getattr(pybuild, name) is getattr(where, name), name
    assert pybuild.__version__ == "0.1.0" and set(dir(pybuild)) >= set(PUBLIC_API)


def test_the_exports_work(tmp_path):
    doc = pybuild.parse("FROM busybox AS base\nFROM base\nRUN true\n")
    (tmp_path / "Dockerfile").write_text("FROM busybox AS base\nFROM base\nRUN true\n")
    assert pybuild.parse_file(str(tmp_path / "Dockerfile")).nodes == doc.nodes
    instructions = pybuild.parse_instructions(doc)
    assert isinstance(instructions[0], pybuild.From) and instructions[0].image == "busybox"
    assert all(isinstance(i, pybuild.Instruction) for i in instructions)
    stages = pybuild.resolve_stages(instructions)
    assert isinstance(stages, pybuild.BuildStages) and isinstance(stages.stages[1], pybuild.Stage)
    assert stages.needed == (0, 1)
    [warning] = pybuild.run_checks(pybuild.parse("from busybox AS base\n"))
    assert isinstance(warning, pybuild.CheckWarning) and warning.rule == "FromAsCasing"
    options = pybuild.BuildOptions(context="ctx", tags=("a",))
    assert options.dockerfile_path() == "ctx/Dockerfile"


def test_unknown_name_is_an_attribute_error():
    try:
        pybuild.NoSuchThing  # noqa: B018
    except AttributeError as err:
        assert "NoSuchThing" in str(err)
    else:
        raise AssertionError("pybuild.NoSuchThing resolved")


def loaded_by(*argv: str) -> set[str]:
    """The pybuild modules a fresh ``python -m pybuild ARGV`` imports."""
    res = subprocess.run([sys.executable, "-X", "importtime", "-m", "pybuild", *argv],
                         capture_output=True, text=True)
    names = {line.rsplit("|", 1)[-1].strip() for line in res.stderr.splitlines()
             if line.startswith("import time:")}
    return {n for n in names if n.startswith("pybuild")}


def test_cold_start_loads_no_heavy_export(tmp_path):
    heavy = {"pybuild.client", "pybuild.build", "pybuild.plan.stages", "pybuild.progress",
             "pybuild.dockerfile.checks", "pybuild.instructions", "pybuild.dockerfile.parser"}
    assert loaded_by("--version") & heavy == set()
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    parse = loaded_by("parse", str(tmp_path / "Dockerfile"))
    assert "pybuild.dockerfile.parser" in parse  # it parses, but builds and stores nothing
    assert parse & {"pybuild.client", "pybuild.build", "pybuild.progress"} == set()
