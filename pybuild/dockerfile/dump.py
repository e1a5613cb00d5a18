"""BuildKit's s-expression dump of a parsed Dockerfile, with Go's string quoting."""

from __future__ import annotations

import unicodedata

from pybuild.dockerfile.syntax import Document, Node
from pybuild.spaces import GO_SPACES

_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
            "\v": "\\v", '"': '\\"', "\\": "\\\\"}


def _quote_char(ch: str) -> str:
    o = ord(ch)
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    if 0xDC80 <= o <= 0xDCFF:  # a byte that was not valid UTF-8 (surrogateescape)
        return f"\\x{o - 0xDC00:02x}"
    if ch == " " or unicodedata.category(ch)[0] in "LMNPS":
        return ch
    if o < 0x20 or o == 0x7F:
        return f"\\x{o:02x}"
    return f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}"


def go_quote(s: str) -> str:
    """Go's strconv.Quote: printable characters stay, everything else is escaped."""
    if s.isascii() and s.isprintable():
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return '"' + "".join(map(_quote_char, s)) + '"'


def dump_node(node: Node) -> str:
    """One instruction as BuildKit's Node.Dump() writes it (without the outer parentheses)."""
    out = node.keyword
    if node.flags:
        out += " [" + " ".join(map(go_quote, node.flags)) + "]"
    if node.child is not None:
        out += " (" + dump_node(node.child) + ")"
    for arg in node.args:
        out += " " + go_quote(arg)
    return out.strip(GO_SPACES)


def dump(doc: Document) -> str:
    """The whole document: one ``(...)`` line per instruction, each ending in a newline."""
    return "".join(f"({dump_node(node)})\n" for node in doc.nodes)
