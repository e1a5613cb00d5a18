"""Dockerfile text -> syntax tree (``pybuild.dockerfile.syntax``), as BuildKit's parser reads it.

A pre-pass here turns physical lines into logical instructions: it finds the parser
directives at the top (the escape directive changes everything after it), joins continuation
lines, drops comments, and reads heredoc bodies. Those rules depend on state and on the escape
character, which a context-free grammar cannot carry. Each logical line then goes to the
grammar (``grammar.lark``, via ``parser_grammar``) for its word, flags and argument forms.

Nothing is expanded here and instruction names are not checked: ``FOO bar`` parses as an
instruction ``foo`` for the instruction layer to reject.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from pybuild.dockerfile.args import ARG_FORMS, arguments, ignored
from pybuild.dockerfile.directives import (
    DirectiveScanner,
    DirectiveValue,
    detect_syntax,
    parse_directive,
    parse_directives,
)
from pybuild.dockerfile.dump import dump, dump_node, go_quote
from pybuild.dockerfile.grammar import (
    ENGINES,
    FAST,
    USPACE,
    Engine,
    decode_flags,
    head_matcher,
    split_words,
)
from pybuild.dockerfile.heredoc import chomp_heredoc_content, heredocs_from_line, parse_heredoc_word
from pybuild.dockerfile.nodes import make_document, make_heredoc, make_node, replace
from pybuild.dockerfile.syntax import Document, Heredoc, Node, Warning_
from pybuild.errors import ContextError, ParseError, UsageError

__all__ = [
    "DirectiveValue", "MAX_LINE_BYTES", "chomp_heredoc_content", "detect_syntax", "dump",
    "dump_node", "go_quote", "heredocs_from_line", "parse", "parse_directive",
    "parse_directives", "parse_file", "parse_heredoc_word", "parse_words",
]

MAX_LINE_BYTES = 65535  # bufio.Scanner's limit, less one
MAX_ONBUILD_DEPTH = 64  # ONBUILD ONBUILD ... (the instruction layer forbids even two)
_HEREDOC_KEYWORDS = frozenset({"run", "copy", "add"})
_set = object.__setattr__


def parse_words(text: str, escape: str = "\\") -> list[str]:
    """The quote-aware word splitter of ARG and ENV/LABEL: quotes and escapes are kept."""
    return split_words(text, escape)


def _check_line_lengths(parts: list[str]) -> None:
    # A character takes at most 4 bytes, so only lines of 16384+ characters need encoding.
    if max(map(len, parts)) * 4 <= MAX_LINE_BYTES:
        return
    for number, part in enumerate(parts, 1):
        if len(part.encode("utf-8", "surrogateescape")) > MAX_LINE_BYTES:
            raise ParseError(f"dockerfile line greater than max allowed size of {MAX_LINE_BYTES}",
                             line=number)


class _Parser:
    """One pass over the physical lines; ``i`` is the index of the next unread line."""

    def __init__(self, text: str, file: str, engine: Engine) -> None:
        if text.startswith("\ufeff"):
            text = text[1:]
        self.parts = text.split("\n")
        self.count = len(self.parts) - (self.parts[-1] == "")  # a final "\n" ends, not starts
        self.crlf = "\r" in text  # heredoc bodies compare lines with \r removed
        self.i = 0
        self.file = file
        self.engine = engine
        self.escape = "\\"
        self.head: Callable[[str], re.Match[str] | None] | None = None
        self.directives = DirectiveScanner()
        self.nodes: list[Node] = []
        self.warnings: list[Warning_] = []

    def run(self) -> Document:
        _check_line_lengths(self.parts)
        self._read_directives()
        if self.engine is FAST:
            self.head = head_matcher(self.escape)
        self._read_instructions()
        if not self.nodes:
            raise ParseError("file with no instructions", line=max(1, self.count))
        found = self.directives.found
        return make_document(
            nodes=tuple(self.nodes), directives={k: d.value for k, d in found.items()},
            escape=self.escape, warnings=tuple(self.warnings), file=self.file,
            start_line=self.nodes[0].start_line, end_line=self.nodes[-1].end_line)

    def _read_directives(self) -> None:
        """Consume the directive lines at the top; the first other line ends them for good."""
        while self.i < self.count:
            line = self.parts[self.i].rstrip("\r").lstrip(USPACE)
            directive = self.directives.feed(line, self.i + 1)
            if directive is None:
                return
            if directive.name == "escape":
                if directive.value not in ("\\", "`"):
                    raise ParseError(f"invalid escape token '{directive.value}' does not match "
                                     "` or \\", line=self.i + 1)
                self.escape = directive.value
            self.i += 1

    def _read_instructions(self) -> None:
        # The hot loop. Most lines are a whole instruction with nothing to trim and no heredoc:
        # those take one regex match and no method call. Any other goes to _careful
        # (trimming, continuations, heredocs, ONBUILD, a bare --).
        parts, count, escape, engine, head = self.parts, self.count, self.escape, self.engine, \
            self.head
        edge = USPACE + escape  # a last character that needs trimming or joins the next line
        forms, other = ARG_FORMS, ignored
        append = self.nodes.append
        new, node_class = object.__new__, Node
        i = self.i
        while i < count:
            line = parts[i]
            i += 1
            if not line or line[0] == "#":
                continue
            m = None
            if head is not None and line[0] not in USPACE and line[-1] not in edge \
                    and "<<" not in line:
                m = head(line)
            if m is None:
                i = self._careful(i - 1)
                continue
            word, raw_flags, rest = m.groups()
            keyword = word.lower()
            flags = decode_flags(raw_flags, escape) if raw_flags else ()
            if flags is None or keyword == "onbuild":
                i = self._careful(i - 1)
                continue
            rest = rest.lstrip(USPACE) if rest else ""
            try:
                args, is_json = forms.get(keyword, other)(rest, escape, engine)
            except ParseError as err:
                raise err.located(self.file, i) from None
            # Fields left at their defaults (no flags, heredocs or child, not JSON) are read
            # from the class, as for any dataclass default: a smaller dict is a cheaper node.
            values = {"keyword": keyword, "original": word, "args": args, "start_line": i,
                      "end_line": i, "raw": line, "rest": rest}
            if flags:
                values["flags"] = flags
            if is_json:
                values["json"] = True
            node = new(node_class)
            _set(node, "__dict__", values)
            append(node)
        self.i = i

    def _careful(self, index: int) -> int:
        """The instruction starting at physical line ``index``; returns the next line's index."""
        escape = self.escape
        start = index + 1
        line = self.parts[index].rstrip("\r").lstrip(USPACE)
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
            stripped = line.lstrip(USPACE)
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
        node = _node(logical, self.escape, start, self.i, 0, self.engine)
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
        name, parts, i = heredoc.name, self.parts, self.i
        if not heredoc.chomp and not self.crlf:  # the terminator is a whole line: look it up
            try:
                end = parts.index(name, i, self.count)
            except ValueError:
                raise ParseError("unterminated heredoc") from None
            self.i = end + 1
            content = "\n".join(parts[i:end]) + "\n" if end > i else ""
            return make_heredoc(name, content, heredoc.expand, heredoc.chomp, heredoc.fd)
        lines: list[str] = []
        last = len(parts) - 1
        while self.i < self.count:
            raw = parts[self.i]
            self.i += 1
            candidate = raw.rstrip("\r")
            if heredoc.chomp:
                candidate = candidate.lstrip("\t")
            if candidate == name:
                return make_heredoc(name, "".join(lines), heredoc.expand, heredoc.chomp,
                                    heredoc.fd)
            lines.append(raw + "\n" if self.i - 1 < last else raw)
        raise ParseError("unterminated heredoc")


def _node(line: str, escape: str, start: int, end: int, depth: int, engine: Engine) -> Node:
    """One logical line -> Node; ONBUILD's argument is parsed the same way, as its child."""
    word, flags, rest = engine.line(line.strip(USPACE), escape)
    return _finish_node(word, flags, rest, escape, start, end, depth, engine, line)


def _finish_node(word: str, flags: tuple[str, ...], rest: str, escape: str, start: int, end: int,
                 depth: int, engine: Engine, line: str) -> Node:
    keyword = word.lower()
    if keyword == "onbuild":
        if depth >= MAX_ONBUILD_DEPTH:
            raise ParseError("ONBUILD is nested too deeply")
        child = _node(rest, escape, start, end, depth + 1, engine) if rest else None
        return make_node(keyword, word, flags, (), False, child, start, end, line, rest)
    args, is_json = arguments(keyword, rest, escape, engine)
    return make_node(keyword, word, flags, args, is_json, None, start, end, line, rest)


def _to_text(text: str | bytes) -> str:
    if isinstance(text, bytes):
        return text.decode("utf-8", "surrogateescape")
    if isinstance(text, str):
        return text
    raise TypeError(f"parse() takes str or bytes, not {type(text).__name__}")


def parse(text: str | bytes, file: str = "Dockerfile", *, engine: str = "fast") -> Document:
    """Parse Dockerfile text. Raises ParseError (``FILE:LINE: message``) for broken syntax.

    ``engine="lalr"`` runs every logical line through lark's LALR parser instead of the regex
    fast path compiled from the same grammar: the same result, ten times slower.
    """
    if engine not in ENGINES:
        raise UsageError(f"unknown parser engine {engine!r} (fast, lalr)")
    try:
        return _Parser(_to_text(text), file, ENGINES[engine]).run()
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
