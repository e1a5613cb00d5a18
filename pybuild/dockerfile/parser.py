"""Dockerfile text -> syntax tree (``pybuild.dockerfile.syntax``), as BuildKit's parser reads it.

A pre-pass here turns physical lines into logical instructions: it finds the parser
directives at the top (the escape directive changes everything after it), joins continuation
lines, drops comments, and reads heredoc bodies. Those rules depend on state and on the escape
character, which a context-free grammar cannot carry. Each logical line then goes to the
grammar (``grammar.lark``, run by ``pybuild.dockerfile.grammar``) for its word, flags and
argument forms.

Nothing is expanded here and instruction names are not checked: ``FOO bar`` parses as an
instruction ``foo`` for the instruction layer to reject.
"""

from __future__ import annotations

from dataclasses import replace

from pybuild.dockerfile.args import arguments
from pybuild.dockerfile.directives import (
    DirectiveScanner,
    DirectiveValue,
    detect_syntax,
    parse_directive,
    parse_directives,
)
from pybuild.dockerfile.dump import dump, dump_node, go_quote
from pybuild.dockerfile.grammar import split_line, split_words
from pybuild.dockerfile.heredoc import chomp_heredoc_content, heredocs_from_line, parse_heredoc_word
from pybuild.dockerfile.syntax import Document, Heredoc, Node, Warning_
from pybuild.errors import ContextError, ParseError
from pybuild.spaces import GO_SPACES

__all__ = [
    "DirectiveValue", "MAX_LINE_BYTES", "chomp_heredoc_content", "detect_syntax", "dump",
    "dump_node", "go_quote", "heredocs_from_line", "parse", "parse_directive",
    "parse_directives", "parse_file", "parse_heredoc_word", "parse_words",
]

MAX_LINE_BYTES = 65535  # bufio.Scanner's limit, less one
MAX_ONBUILD_DEPTH = 64  # ONBUILD ONBUILD ... (the instruction layer forbids even two)
_HEREDOC_KEYWORDS = frozenset({"run", "copy", "add"})


def parse_words(text: str, escape: str = "\\") -> list[str]:
    """The quote-aware word splitter of ARG and ENV/LABEL: quotes and escapes are kept."""
    return split_words(text, escape)


def _check_line_lengths(parts: list[str]) -> None:
    for number, part in enumerate(parts, 1):
        if len(part.encode("utf-8", "surrogateescape")) > MAX_LINE_BYTES:
            raise ParseError(f"dockerfile line greater than max allowed size of {MAX_LINE_BYTES}",
                             line=number)


class _Parser:
    """One pass over the physical lines; ``i`` is the index of the next unread line."""

    def __init__(self, text: str, file: str) -> None:
        if text.startswith("\ufeff"):
            text = text[1:]
        self.parts = text.split("\n")
        self.count = len(self.parts) - (self.parts[-1] == "")  # a final "\n" ends, not starts
        self.i = 0
        self.file = file
        self.escape = "\\"
        self.directives = DirectiveScanner()
        self.nodes: list[Node] = []
        self.warnings: list[Warning_] = []

    def run(self) -> Document:
        _check_line_lengths(self.parts)
        self._read_directives()
        while self.i < self.count:
            self.i = self._instruction(self.i)
        if not self.nodes:
            raise ParseError("file with no instructions", line=max(1, self.count))
        found = self.directives.found
        return Document(
            nodes=tuple(self.nodes), directives={k: d.value for k, d in found.items()},
            escape=self.escape, warnings=tuple(self.warnings), file=self.file,
            start_line=self.nodes[0].start_line, end_line=self.nodes[-1].end_line)

    def _read_directives(self) -> None:
        """Consume the directive lines at the top; the first other line ends them for good."""
        while self.i < self.count:
            line = self.parts[self.i].rstrip("\r").lstrip(GO_SPACES)
            directive = self.directives.feed(line, self.i + 1)
            if directive is None:
                return
            if directive.name == "escape":
                if directive.value not in ("\\", "`"):
                    raise ParseError(f"invalid escape token '{directive.value}' does not match "
                                     "` or \\", line=self.i + 1)
                self.escape = directive.value
            self.i += 1

    def _instruction(self, index: int) -> int:
        """The instruction starting at physical line ``index``; returns the next line's index."""
        escape = self.escape
        start = index + 1
        line = self.parts[index].rstrip("\r").lstrip(GO_SPACES)
        if not line or line[0] == "#":
            return start
        body = line.rstrip(" \t")
        empty = False
        self.i = start
        if body[-1] == escape and body[-2:] != escape + escape:
            self.i, line, empty = self._join(body[:-1], start)
        try:
            self.nodes.append(self._node(line, start))
        except ParseError as err:
            raise err.located(self.file, start) from None
        if empty:
            self.warnings.append(Warning_(f"Empty continuation line found in: {line}",
                                          self.nodes[-1].end_line, "NoEmptyContinuation"))
        return self.i

    def _join(self, first: str, i: int) -> tuple[int, str, bool]:
        """Append continuation lines (leading spaces kept, comment and blank lines dropped)."""
        parts, count, escape = self.parts, self.count, self.escape
        double = escape + escape
        pieces = [first]
        empty = False
        while i < count:
            line = parts[i].rstrip("\r")
            i += 1
            stripped = line.lstrip(GO_SPACES)
            if not stripped:
                empty = True  # BuildKit warns: these will become errors
                continue
            if stripped[0] == "#":
                continue
            body = line.rstrip(" \t")
            if body[-1:] != escape or body[-2:] == double:
                pieces.append(line)
                break
            pieces.append(body[:-1])
        return i, "".join(pieces), empty

    def _node(self, logical: str, start: int) -> Node:
        """A logical line -> Node, with the bodies of the heredocs it opens."""
        node = _node(logical, self.escape, start, self.i, 0)
        target = node.child if node.keyword == "onbuild" and node.child else node
        heredocs = self._heredocs(target.keyword, target.json, logical)
        if not heredocs:
            return node
        child = node.child
        if child is not None:
            child = replace(child, heredocs=heredocs, end_line=self.i)
        return replace(node, heredocs=heredocs, child=child, end_line=self.i)

    def _heredocs(self, keyword: str, is_json: bool, logical: str) -> tuple[Heredoc, ...]:
        """The bodies of the heredocs a RUN, COPY or ADD line opens, read from the next lines."""
        if "<<" not in logical or keyword not in _HEREDOC_KEYWORDS or is_json:
            return ()
        return tuple(self._body(h) for h in heredocs_from_line(logical))

    def _body(self, heredoc: Heredoc) -> Heredoc:
        """Read raw lines up to the terminator: no comments, directives or continuations."""
        name, parts = heredoc.name, self.parts
        lines: list[str] = []
        last = len(parts) - 1
        while self.i < self.count:
            raw = parts[self.i]
            self.i += 1
            candidate = raw.rstrip("\r")
            if heredoc.chomp:
                candidate = candidate.lstrip("\t")
            if candidate == name:
                return replace(heredoc, content="".join(lines))
            lines.append(raw + "\n" if self.i - 1 < last else raw)
        raise ParseError("unterminated heredoc")


def _node(line: str, escape: str, start: int, end: int, depth: int) -> Node:
    """One logical line -> Node; ONBUILD's argument is parsed the same way, as its child."""
    word, flags, rest = split_line(line.strip(GO_SPACES), escape)
    keyword = word.lower()
    if keyword == "onbuild":
        if depth >= MAX_ONBUILD_DEPTH:
            raise ParseError("ONBUILD is nested too deeply")
        child = _node(rest, escape, start, end, depth + 1) if rest else None
        return Node(keyword, word, flags, child=child, start_line=start, end_line=end, raw=line,
                    rest=rest)
    args, is_json = arguments(keyword, rest, escape)
    return Node(keyword, word, flags, args, is_json, start_line=start, end_line=end, raw=line,
                rest=rest)


def _to_text(text: str | bytes) -> str:
    if isinstance(text, bytes):
        return text.decode("utf-8", "surrogateescape")
    if isinstance(text, str):
        return text
    raise TypeError(f"parse() takes str or bytes, not {type(text).__name__}")


def parse(text: str | bytes, file: str = "Dockerfile") -> Document:
    """Parse Dockerfile text. Raises ParseError (``FILE:LINE: message``) for broken syntax."""
    try:
        return _Parser(_to_text(text), file).run()
    except ParseError as err:
        raise err.located(file) from None


def parse_file(path: str) -> Document:
    """Parse the Dockerfile at ``path``; a missing or unreadable file is a ContextError."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise ContextError(f"no such file: {path}") from None
    except OSError as err:
        raise ContextError(f"cannot read {path}: {err.strerror}") from None
    return parse(data, file=str(path))
