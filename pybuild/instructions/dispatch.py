"""The one table from keyword to converter, ONBUILD (which recurses through it), and the
entry points that turn a syntax tree into typed instructions."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from pybuild.dockerfile.syntax import Document, Node
from pybuild.errors import DockerfileError
from pybuild.instructions import config, copy, from_, healthcheck, run
from pybuild.instructions.base import Instruction, fail, with_suggestion

_ONBUILD_PREFIX = re.compile(r"^\s*ONBUILD\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Onbuild(Instruction):
    """``ONBUILD <instruction>``: the typed trigger and its text as stored in the image."""

    instruction: Instruction
    expression: str

    keyword = "ONBUILD"


def parse_onbuild(node: Node) -> Onbuild:
    child = node.child
    if child is None:
        raise fail("ONBUILD requires at least one argument", node)
    trigger = child.keyword.upper()
    if trigger == "ONBUILD":
        raise fail("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed", node)
    if trigger in ("MAINTAINER", "FROM"):
        raise fail(f"{trigger} isn't allowed as an ONBUILD trigger", node)
    expression = _ONBUILD_PREFIX.sub("", node.raw, count=1)
    for doc in child.heredocs:
        expression += "\n" + doc.content + doc.name
    return Onbuild(instruction=convert(child), expression=expression, node=node)


CONVERTERS: dict[str, Callable[[Node], Instruction]] = {
    "add": copy.parse_add,
    "arg": config.parse_arg,
    "cmd": run.parse_cmd,
    "copy": copy.parse_copy,
    "entrypoint": run.parse_entrypoint,
    "env": config.parse_env,
    "expose": config.parse_expose,
    "from": from_.parse_from,
    "healthcheck": healthcheck.parse_healthcheck,
    "label": config.parse_label,
    "maintainer": config.parse_maintainer,
    "onbuild": parse_onbuild,
    "run": run.parse_run,
    "shell": run.parse_shell,
    "stopsignal": config.parse_stopsignal,
    "user": config.parse_user,
    "volume": config.parse_volume,
    "workdir": config.parse_workdir,
}
KEYWORDS = tuple(sorted(k.upper() for k in CONVERTERS))


def convert(node: Node) -> Instruction:
    """The typed instruction for one node; InstructionError located at its first line."""
    converter = CONVERTERS.get(node.keyword.lower())
    if converter is None:
        message = with_suggestion(f"unknown instruction {node.original}", node.original,
                                  KEYWORDS)
        raise fail(message, node)
    return converter(node)


def from_document(doc: Document) -> list[Instruction]:
    """Every node of ``doc`` as a typed instruction, in file order.

    Errors are DockerfileErrors rendering as ``FILE:LINE: message``.
    """
    out = []
    converters = CONVERTERS
    for node in doc.nodes:
        try:
            # the parser's keywords are lower-case already; convert() covers anything else
            converter = converters.get(node.keyword)
            out.append(converter(node) if converter is not None else convert(node))
        except DockerfileError as err:
            raise err.located(doc.file, node.start_line) from None
    return out
