"""The Client's public signatures name real types: no ``Any``, and every name imported for
annotations only (under ``TYPE_CHECKING``) still exists where it is imported from."""

from __future__ import annotations

import ast
import inspect
import typing
from collections.abc import Iterator

import pybuild.client as client_module
from pybuild.client import Client, ImageCollection, SystemApi


def annotation_namespace() -> dict:
    """client.py's globals plus what its ``if TYPE_CHECKING:`` block imports."""
    tree = ast.parse(inspect.getsource(client_module))
    blocks = [node for node in tree.body if isinstance(node, ast.If)
              and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"]
    assert len(blocks) == 1
    namespace = dict(vars(client_module))
    exec(compile(ast.Module(blocks[0].body, []), "TYPE_CHECKING", "exec"), namespace)
    return namespace


def mentions_any(hint) -> bool:
    return hint is typing.Any or any(mentions_any(arg) for arg in typing.get_args(hint))


def public_callables():
    for cls in (Client, ImageCollection, SystemApi):
        for name, member in vars(cls).items():
            if callable(member) and (not name.startswith("_") or name == "__init__"):
                yield f"{cls.__name__}.{name}", member
    yield "build_options", client_module.build_options


def test_no_any_in_public_signatures():
    namespace = annotation_namespace()
    checked = []
    for name, fn in public_callables():
        hints = typing.get_type_hints(fn, globalns=namespace)
        assert "return" in hints or name.endswith("__init__"), f"{name} has no return type"
        assert not [k for k, v in hints.items() if mentions_any(v)], name
        checked.append(name)
    assert {"ImageCollection.remove", "ImageCollection.build_iter", "SystemApi.df",
            "SystemApi.check", "ImageCollection.load"} <= set(checked)


def test_result_types_are_the_store_and_archive_classes():
    from pybuild.archive.load import LoadedImage
    from pybuild.progress import Event, EventHandler
    from pybuild.store.check import Problem
    from pybuild.store.gc import GcResult, UsageRow
    from pybuild.store.images import Removal

    namespace = annotation_namespace()

    def returns(fn):
        return typing.get_type_hints(fn, globalns=namespace)["return"]

    assert returns(ImageCollection.remove) == list[Removal]
    assert returns(ImageCollection.prune) is GcResult is returns(SystemApi.prune)
    assert returns(ImageCollection.load) == list[LoadedImage]
    assert returns(SystemApi.df) == list[UsageRow]
    assert returns(SystemApi.check) == list[Problem]
    assert returns(ImageCollection.build_iter) == Iterator[Event]
    hints = typing.get_type_hints(ImageCollection.build, globalns=namespace)
    assert hints["on_event"] == EventHandler | None
