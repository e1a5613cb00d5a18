"""The base every typed instruction derives from, and the helpers all converters share."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import NamedTuple

from pybuild.dockerfile.syntax import Node
from pybuild.errors import InstructionError


class Span(NamedTuple):
    """1-based physical line range of an instruction (continuations and heredocs included)."""

    start: int
    end: int


_NOWHERE = Span(0, 0)


# The node is excluded from equality on purpose: two instructions are equal when they mean
# the same thing, wherever they were written (the round-trip tests rely on this). Span and raw
# text are read from the node rather than stored twice.
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
