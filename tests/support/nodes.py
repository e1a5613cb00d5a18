"""Hand-built syntax nodes for instruction-layer tests that must not depend on the parser."""

from pybuild.dockerfile.syntax import Document, Node


def node(keyword: str, *args: str, flags: tuple[str, ...] = (), line: int = 1, **kw) -> Node:
    raw = kw.pop("raw", " ".join([keyword.upper(), *flags, *args]))
    return Node(keyword.lower(), kw.pop("original", keyword.upper()), flags=flags, args=args,
                start_line=line, end_line=line, raw=raw, **kw)


def doc(*nodes: Node, **kw) -> Document:
    numbered = [n if n.start_line != 1 or i == 0 else
                Node(**{**n.__dict__, "start_line": i + 1, "end_line": i + 1})
                for i, n in enumerate(nodes)]
    return Document(nodes=tuple(numbered), **kw)
