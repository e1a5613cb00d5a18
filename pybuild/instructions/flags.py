"""Instruction flags (``--from=x``, ``--link``), checked as BuildKit's BFlags checks them.

The parser hands flags over unsplit (``--mount=type=cache,target=/x``); here each is split
at its first ``=`` and checked against what the instruction accepts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, TypeVar

from pybuild.dockerfile.syntax import Node
from pybuild.errors import InstructionError
from pybuild.instructions.base import fail, with_suggestion

Kind = Literal["bool", "string", "strings"]
_T = TypeVar("_T")


@dataclass(frozen=True)
class FlagSpec:
    """The flags one instruction accepts, and the kind of value each takes."""

    kinds: Mapping[str, Kind]


NO_FLAGS = FlagSpec({})
_EMPTY: Mapping[str, object] = MappingProxyType({})


def parse_flags(node: Node, spec: FlagSpec) -> Mapping[str, object]:
    """Flag name -> value: bool for ``bool``, str for ``string``, tuple for ``strings``.

    Flags not given are absent from the result; a repeated ``string``/``bool`` flag, an
    unknown flag or a missing/odd value is an InstructionError.
    """
    if not node.flags:
        return _EMPTY
    return located(node, checked_flags, node.flags, spec)


def located(node: Node, check: Callable[..., _T], *args: object) -> _T:
    """``check(*args)``, its InstructionError (which has no line) located at ``node``."""
    try:
        return check(*args)
    except InstructionError as err:
        raise fail(err.message, node) from None


def checked_flags(flags: tuple[str, ...], spec: FlagSpec) -> Mapping[str, object]:
    """``parse_flags`` for the flags alone: the InstructionError it raises has no line."""
    kinds = spec.kinds
    values: dict[str, object] = {}
    for word in flags:
        if word == "--":
            break
        if not word.startswith("--"):
            raise InstructionError(f"arg should start with -- : {word}")
        name, eq, value = word[2:].partition("=")
        kind = kinds.get(name)
        if kind is None:
            raise InstructionError(with_suggestion(f"unknown flag: --{name}", name, list(kinds),
                                                   "--"))
        if name in values and kind != "strings":
            raise InstructionError(f"duplicate flag specified: --{name}")
        values[name] = _value(name, kind, value, bool(eq), values.get(name, ()))
    return MappingProxyType(values)


def _value(name: str, kind: Kind, value: str, has_eq: bool, prev) -> object:
    if kind == "bool":
        if has_eq and value == "":
            raise InstructionError(f"missing a value on flag: --{name}")
        lowered = value.lower()
        if lowered in ("", "true"):
            return True
        if lowered == "false":
            return False
        raise InstructionError(f"expecting boolean value for flag --{name}, not: {value}")
    if not has_eq:
        raise InstructionError(f"missing a value on flag: --{name}")
    if kind == "strings":
        return (*prev, value)
    return value
