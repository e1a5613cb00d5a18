"""Instruction flags (``--from=x``, ``--link``), checked as BuildKit's BFlags checks them.

The parser hands flags over unsplit (``--mount=type=cache,target=/x``); here each is split
at its first ``=`` and checked against what the instruction accepts.
"""

from __future__ import annotations

from typing import Literal

from pybuild.instructions.base import fail, with_suggestion
from pybuild.syntax import Node

Kind = Literal["bool", "string", "strings"]


def parse_flags(node: Node, spec: dict[str, Kind]) -> dict[str, object]:
    """Flag name -> value: bool for ``bool``, str for ``string``, tuple for ``strings``.

    Flags not given are absent from the result; a repeated ``string``/``bool`` flag, an
    unknown flag or a missing/odd value is an InstructionError.
    """
    if not node.flags:
        return {}
    values: dict[str, object] = {}
    for word in node.flags:
        if word == "--":
            break
        if not word.startswith("--"):
            raise fail(f"arg should start with -- : {word}", node)
        name, eq, value = word[2:].partition("=")
        kind = spec.get(name)
        if kind is None:
            message = with_suggestion(f"unknown flag: --{name}", name, list(spec), "--")
            raise fail(message, node)
        if name in values and kind != "strings":
            raise fail(f"duplicate flag specified: --{name}", node)
        values[name] = _value(node, name, kind, value, bool(eq), values.get(name, ()))
    return values


def _value(node: Node, name: str, kind: Kind, value: str, has_eq: bool, prev) -> object:
    if kind == "bool":
        if has_eq and value == "":
            raise fail(f"missing a value on flag: --{name}", node)
        lowered = value.lower()
        if lowered in ("", "true"):
            return True
        if lowered == "false":
            return False
        raise fail(f"expecting boolean value for flag --{name}, not: {value}", node)
    if not has_eq:
        raise fail(f"missing a value on flag: --{name}", node)
    if kind == "strings":
        return (*prev, value)
    return value
