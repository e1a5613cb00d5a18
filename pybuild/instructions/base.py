"""The base every typed instruction derives from, and the helpers all converters share."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import NamedTuple, TypeVar

from pybuild.dockerfile.syntax import Node
from pybuild.errors import InstructionError


class Span(NamedTuple):
    """1-based physical line range of an instruction (continuations and heredocs included)."""

    start: int
    end: int


_NOWHERE = Span(0, 0)
_I = TypeVar("_I")


# The node is excluded from equality on purpose: two instructions are equal when they mean
# the same thing, wherever they were written (the round-trip tests rely on this). Span and raw
# text are read from the node rather than stored, which keeps conversion cheap.
@dataclass(frozen=True, kw_only=True)
class Instruction:
    """One typed instruction; ``node`` is the syntax node it came from (None if built)."""

    node: Node | None = field(default=None, compare=False, repr=False)

    keyword = ""  # upper-case instruction name; set by each subclass

    @property
    def span(self) -> Span:
        node = self.node
        return Span(node.start_line, node.end_line) if node is not None else _NOWHERE

    @property
    def raw(self) -> str:
        return self.node.raw if self.node is not None else ""

    @property
    def line(self) -> int:
        return self.node.start_line if self.node is not None else 0


_new = object.__new__
_set = object.__setattr__


def build(cls: type[_I], /, **values: object) -> _I:
    """``cls(**values)`` without the frozen dataclass's ``__init__``, which sets the fields one
    ``object.__setattr__`` at a time and costs as much as parsing the line. The object gets
    ``values`` as its ``__dict__``: equal, same hash and repr (tests compare the two ways).
    Every field must be given; there is no check, as this is the hot path."""
    obj = _new(cls)
    _set(obj, "__dict__", values)
    return obj


def build_from(cls: type[_I], values: dict[str, object]) -> _I:
    """``build`` with the values in a dict the new object takes over (no copy)."""
    obj = _new(cls)
    _set(obj, "__dict__", values)
    return obj


def fail(message: str, node: Node | None = None) -> InstructionError:
    """An InstructionError located at ``node`` (file is filled in by the caller)."""
    return InstructionError(message, line=node.start_line if node else None)


def suggest(word: str, candidates: list[str] | tuple[str, ...]) -> str | None:
    """The nearest candidate to ``word`` (case-insensitive), or None when nothing is close."""
    lowered = {c.lower(): c for c in candidates}
    match = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[match[0]] if match else None


def with_suggestion(message: str, word: str, candidates, prefix: str = "") -> str:
    """``message`` followed by ``(did you mean X?)`` when a candidate is close."""
    near = suggest(word, candidates)
    return f"{message} (did you mean {prefix}{near}?)" if near else message


def exactly_one(node: Node, name: str) -> str:
    if len(node.args) != 1:
        raise fail(f"{name} requires exactly one argument", node)
    return node.args[0]


def at_least_one(node: Node, name: str) -> tuple[str, ...]:
    if not node.args:
        raise fail(f"{name} requires at least one argument", node)
    return node.args
