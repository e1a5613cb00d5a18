"""The syntax tree the parser produces: plain data, no meaning attached yet.

The parser (``pybuild.dockerfile.parser``) fills these; the instruction layer
(``pybuild.instructions``) reads them. Nothing here knows what COPY means.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Heredoc:
    """One ``<<NAME`` body attached to RUN, COPY or ADD."""

    name: str  # the terminator word, quotes removed
    content: str  # raw body, line endings kept; leading tabs kept even when chomp
    expand: bool = True  # False when the terminator word was (partly) quoted
    chomp: bool = False  # ``<<-``: leading tabs are to be stripped when used
    fd: int = 0  # ``3<<EOF`` gives 3; 0 when absent


@dataclass(frozen=True)
class Node:
    """One instruction as written.

    ``args`` follow the per-instruction rules of BuildKit's parser (see the conformance
    README): split words for FROM/EXPOSE/ADD/COPY/VOLUME, one verbatim string for shell-form
    RUN/CMD/ENTRYPOINT/SHELL, key/value/separator triples for ENV and LABEL, and so on.
    ONBUILD carries its nested instruction in ``child`` and has no ``args``.
    """

    keyword: str  # lower-cased instruction word, e.g. "copy"
    original: str  # the instruction word as written, e.g. "Copy"
    flags: tuple[str, ...] = ()  # e.g. ("--from=build", "--chown=1:1"), unsplit
    args: tuple[str, ...] = ()
    json: bool = False  # args came from the JSON (exec) form
    heredocs: tuple[Heredoc, ...] = ()
    child: Node | None = None  # ONBUILD's nested instruction
    start_line: int = 0  # 1-based first physical line
    end_line: int = 0  # 1-based last physical line consumed (continuations, heredoc bodies)
    raw: str = ""  # the logical line after continuations are joined, as BuildKit's Original
    # The text after the instruction word and flags, before any splitting (for error messages
    # and for instructions such as HEALTHCHECK that re-read it).
    rest: str = ""


@dataclass(frozen=True)
class Warning_:
    """A parser-level warning (for example an empty continuation line)."""

    message: str
    line: int
    rule: str = ""  # build-check rule name, e.g. "NoEmptyContinuation"


@dataclass(frozen=True)
class Document:
    """A parsed Dockerfile: directives and the instructions in file order."""

    nodes: tuple[Node, ...]
    directives: dict[str, str] = field(default_factory=dict)  # lower-cased key -> value
    escape: str = "\\"
    warnings: tuple[Warning_, ...] = ()
    file: str = "Dockerfile"
    start_line: int = 0  # span of the whole document (first..last instruction line)
    end_line: int = 0
