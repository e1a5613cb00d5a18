"""Building the frozen syntax-tree objects quickly.

The generated ``__init__`` of a frozen dataclass calls ``object.__setattr__`` once per field;
the parser makes one Node per instruction, and that alone cost as much as parsing the line.
Giving the new object its ``__dict__`` in one step builds an equal object (a test compares
them) at a fraction of the cost. Fields that ``pybuild.dockerfile.syntax`` may gain later get their
defaults.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from pybuild.dockerfile.syntax import Document, Heredoc, Node

_T = TypeVar("_T")
_set = object.__setattr__
_NODE_GIVEN = frozenset({"keyword", "original", "flags", "args", "json", "heredocs", "child",
                         "start_line", "end_line", "raw", "rest"})


def _defaults(cls: type, given: frozenset[str]) -> dict[str, Any]:
    """Defaults of the fields the parser does not pass (factories are called once per build)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in given:
            continue
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory
    return out


def _fill(obj: Any, extra: dict[str, Any], values: dict[str, Any]) -> None:
    for name, default in extra.items():
        values.setdefault(name, default() if callable(default) else default)
    _set(obj, "__dict__", values)


_NODE_EXTRA = _defaults(Node, _NODE_GIVEN)


def make_node(keyword: str, original: str, flags: tuple[str, ...], args: tuple[str, ...],
              is_json: bool, child: Node | None, start: int, end: int, raw: str,
              rest: str) -> Node:
    """``Node(...)`` with no heredocs, without the frozen-dataclass toll."""
    node = object.__new__(Node)
    values = {"keyword": keyword, "original": original, "flags": flags, "args": args,
              "json": is_json, "heredocs": (), "child": child, "start_line": start,
              "end_line": end, "raw": raw, "rest": rest}
    if _NODE_EXTRA:
        _fill(node, _NODE_EXTRA, values)
    else:
        _set(node, "__dict__", values)
    return node


def make_heredoc(name: str, content: str, expand: bool, chomp: bool, fd: int) -> Heredoc:
    """``Heredoc(...)``, the same way."""
    heredoc = object.__new__(Heredoc)
    _set(heredoc, "__dict__", {"name": name, "content": content, "expand": expand,
                               "chomp": chomp, "fd": fd})
    return heredoc


def replace(obj: _T, **changes: Any) -> _T:
    """``dataclasses.replace`` for the syntax classes, the same way."""
    new = object.__new__(type(obj))
    values = dict(obj.__dict__)
    values.update(changes)
    _set(new, "__dict__", values)
    return new


_DOCUMENT_GIVEN = frozenset({"nodes", "directives", "escape", "warnings", "file", "start_line",
                             "end_line"})
_DOCUMENT_EXTRA = _defaults(Document, _DOCUMENT_GIVEN)


def make_document(nodes: tuple[Node, ...], directives: dict[str, str], escape: str,
                  warnings: tuple[Any, ...], file: str, start_line: int,
                  end_line: int) -> Document:
    """``Document(...)``, the same way."""
    doc = object.__new__(Document)
    _fill(doc, _DOCUMENT_EXTRA, {"nodes": nodes, "directives": directives, "escape": escape,
                                 "warnings": warnings, "file": file, "start_line": start_line,
                                 "end_line": end_line})
    return doc
