"""The instructions that only change image configuration or build variables.

Values are kept as written, quotes and ``$VAR`` included: BuildKit expands (and removes
quotes from) them with the shell lexer when the instruction is dispatched, and so does
``pybuild.plan`` through ``pybuild.shell.words``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pybuild.dockerfile.syntax import Node
from pybuild.instructions.base import Instruction, at_least_one, exactly_one, fail
from pybuild.instructions.flags import NO_FLAGS, parse_flags

_PORT = re.compile(r"^(\d+)(?:-(\d+))?(?:/([^/]*))?$")
PROTOCOLS = ("tcp", "udp", "sctp")


@dataclass(frozen=True)
class User(Instruction):
    user: str
    keyword = "USER"


@dataclass(frozen=True)
class Workdir(Instruction):
    path: str
    keyword = "WORKDIR"


@dataclass(frozen=True)
class Maintainer(Instruction):
    maintainer: str
    keyword = "MAINTAINER"


@dataclass(frozen=True)
class Stopsignal(Instruction):
    signal: str
    keyword = "STOPSIGNAL"


@dataclass(frozen=True)
class Volume(Instruction):
    paths: tuple[str, ...]
    keyword = "VOLUME"


@dataclass(frozen=True)
class Expose(Instruction):
    """Ports as written (``80``, ``80/tcp``, ``8000-8010/udp``, ``${PORT}``)."""

    ports: tuple[str, ...]
    keyword = "EXPOSE"


@dataclass(frozen=True)
class Env(Instruction):
    """``pairs`` keep values verbatim; ``legacy`` is the ``ENV key value`` form."""

    pairs: tuple[tuple[str, str], ...]
    legacy: bool = False
    keyword = "ENV"


@dataclass(frozen=True)
class Label(Instruction):
    pairs: tuple[tuple[str, str], ...]
    legacy: bool = False
    keyword = "LABEL"


@dataclass(frozen=True)
class ArgDef:
    name: str
    default: str | None = None  # None: declared without a value


@dataclass(frozen=True)
class Arg(Instruction):
    args: tuple[ArgDef, ...]
    keyword = "ARG"


def parse_user(node: Node) -> User:
    user = exactly_one(node, "USER")
    if node.flags:  # only to refuse them: these instructions take none
        parse_flags(node, NO_FLAGS)
    return User(node=node, user=user)


def parse_workdir(node: Node) -> Workdir:
    path = exactly_one(node, "WORKDIR")
    if node.flags:  # only to refuse them: these instructions take none
        parse_flags(node, NO_FLAGS)
    return Workdir(node=node, path=path)


def parse_maintainer(node: Node) -> Maintainer:
    text = exactly_one(node, "MAINTAINER")
    if node.flags:  # only to refuse them: these instructions take none
        parse_flags(node, NO_FLAGS)
    return Maintainer(maintainer=text, node=node)


def parse_stopsignal(node: Node) -> Stopsignal:
    # BuildKit checks the signal name only once it is expanded, at build time.
    return Stopsignal(signal=exactly_one(node, "STOPSIGNAL"), node=node)


def parse_volume(node: Node) -> Volume:
    paths = at_least_one(node, "VOLUME")
    if node.flags:  # only to refuse them: these instructions take none
        parse_flags(node, NO_FLAGS)
    if any(not p.strip() for p in paths):
        raise fail("VOLUME specified can not be an empty string", node)
    return Volume(node=node, paths=tuple(p.strip() for p in paths))


def check_port(node: Node, word: str) -> None:
    """Refuse a malformed port now; words with ``$`` are checked after expansion."""
    if "$" in word:
        return
    port, slash, proto = word.partition("/")
    if port.isdecimal() and int(port) <= 65535 and (not slash or proto.lower() in PROTOCOLS):
        return  # the common shapes (80, 80/tcp), which _PORT would accept
    match = _PORT.match(word)
    if not match:
        raise fail(f"invalid containerPort: {word.split('/')[0]}", node)
    start, end, proto = match.groups()
    if end is not None and int(end) < int(start):
        raise fail(f"invalid range specified for containerPort: {start}-{end}", node)
    if int(end or start) > 65535:
        raise fail(f"invalid containerPort: {word.split('/')[0]}", node)
    if proto is not None and proto.lower() not in PROTOCOLS:
        raise fail(f"invalid proto: {proto}", node)


def parse_expose(node: Node) -> Expose:
    ports = at_least_one(node, "EXPOSE")
    if node.flags:  # only to refuse them: these instructions take none
        parse_flags(node, NO_FLAGS)
    for word in ports:
        check_port(node, word)
    return Expose(node=node, ports=ports)


def _pairs(node: Node, name: str) -> tuple[tuple[tuple[str, str], ...], bool]:
    args = node.args
    if not args:
        raise fail(f"{name} requires at least one argument", node)
    if len(args) % 3:
        raise fail(f"Bad input to {name}, too many arguments", node)
    keys = args[0::3]
    if not all(keys):
        raise fail(f"{name} names can not be blank", node)
    return tuple(zip(keys, args[1::3])), args[2] == ""


def parse_env(node: Node) -> Env:
    if node.flags:  # only to refuse them: these instructions take none
        parse_flags(node, NO_FLAGS)
    pairs, legacy = _pairs(node, "ENV")
    return Env(node=node, pairs=pairs, legacy=legacy)


def parse_label(node: Node) -> Label:
    if node.flags:  # only to refuse them: these instructions take none
        parse_flags(node, NO_FLAGS)
    pairs, legacy = _pairs(node, "LABEL")
    return Label(node=node, pairs=pairs, legacy=legacy)


def parse_arg(node: Node) -> Arg:
    words = at_least_one(node, "ARG")
    defs = []
    for word in words:
        name, eq, value = word.partition("=")
        if not name:
            raise fail("ARG names can not be blank", node)
        defs.append(ArgDef(name=name, default=value if eq else None))
    if node.flags:  # only to refuse them: these instructions take none
        parse_flags(node, NO_FLAGS)
    return Arg(node=node, args=tuple(defs))
