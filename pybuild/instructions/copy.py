"""COPY and ADD: sources (paths or heredoc files), a destination and their flags."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pybuild.dockerfile.syntax import Heredoc, Node
from pybuild.errors import InstructionError
from pybuild.instructions.base import Instruction, fail
from pybuild.instructions.flags import FlagSpec, located, parse_flags

_HEREDOC_WORD = re.compile(r"^(\d*)<<(-?)\s*([^<]*)$")
# Octal (0755), symbolic (u+x,g-w) or a variable left for build-time expansion.
_CHMOD = re.compile(r"^(?:[0-7]{1,4}|[ugoa]*[-+=][rwxXst]*(?:,[ugoa]*[-+=][rwxXst]*)*|.*\$.*)$")

COPY_FLAGS = FlagSpec({"from": "string", "chown": "string", "chmod": "string", "link": "bool",
                       "parents": "bool", "exclude": "strings"})
ADD_FLAGS = FlagSpec({"chown": "string", "chmod": "string", "link": "bool", "checksum": "string",
                      "keep-git-dir": "bool", "unpack": "bool", "exclude": "strings"})


@dataclass(frozen=True)
class Copy(Instruction):
    """``sources`` are paths as written; heredoc sources are in ``heredocs`` (name = file)."""

    sources: tuple[str, ...]
    dest: str
    heredocs: tuple[Heredoc, ...] = ()
    from_: str | None = None
    chown: str | None = None
    chmod: str | None = None
    link: bool = False
    parents: bool = False
    exclude: tuple[str, ...] = ()

    keyword = "COPY"


@dataclass(frozen=True)
class Add(Instruction):
    sources: tuple[str, ...]
    dest: str
    heredocs: tuple[Heredoc, ...] = ()
    chown: str | None = None
    chmod: str | None = None
    link: bool = False
    checksum: str | None = None
    keep_git_dir: bool = False
    unpack: bool | None = None  # None: BuildKit's default (unpack local archives, not URLs)
    exclude: tuple[str, ...] = ()

    keyword = "ADD"


def heredoc_name(word: str) -> str | None:
    """The terminator name when ``word`` is a heredoc marker such as ``<<EOF`` or ``<<-"X"``."""
    match = _HEREDOC_WORD.match(word)
    if not match or not match.group(3):
        return None
    return match.group(3).replace('"', "").replace("'", "")


def _sources(node: Node, name: str) -> tuple[tuple[str, ...], str, tuple[Heredoc, ...]]:
    if len(node.args) < 2:
        raise fail(f"{name} requires at least two arguments, but only one was provided. "
                   "Destination could not be determined", node)
    *srcs, dest = node.args
    if not node.heredocs:  # the parser attaches a heredoc to every marker it accepted
        return tuple(srcs), dest, ()
    if not node.json and heredoc_name(dest) is not None:
        raise fail(f"{name} cannot accept a heredoc as a destination", node)
    by_name = {h.name: h for h in node.heredocs}
    paths, docs = [], []
    for src in srcs:
        doc = by_name.get(heredoc_name(src) or "") if not node.json else None
        if doc is not None:
            docs.append(doc)
        else:
            paths.append(src)
    return tuple(paths), dest, tuple(docs)


def _chmod(value: str | None) -> str | None:
    if value is not None and not _CHMOD.match(value):
        raise InstructionError(f"invalid chmod parameter {value!r}: should be octal or symbolic")
    return value


def parse_copy(node: Node) -> Copy:
    f = parse_flags(node, COPY_FLAGS)
    chmod = located(node, _chmod, f.get("chmod"))
    sources, dest, docs = _sources(node, "COPY")
    return Copy(sources=sources, dest=dest, heredocs=docs, from_=f.get("from"),
                chown=f.get("chown"), chmod=chmod, link=f.get("link", False),
                parents=f.get("parents", False), exclude=f.get("exclude", ()), node=node)


def parse_add(node: Node) -> Add:
    f = parse_flags(node, ADD_FLAGS)
    chmod = located(node, _chmod, f.get("chmod"))
    sources, dest, docs = _sources(node, "ADD")
    return Add(sources=sources, dest=dest, heredocs=docs, chown=f.get("chown"), chmod=chmod,
               link=f.get("link", False), checksum=f.get("checksum"),
               keep_git_dir=f.get("keep-git-dir", False), unpack=f.get("unpack"),
               exclude=f.get("exclude", ()), node=node)
