"""FROM: the start of a build stage."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pybuild.dockerfile.syntax import Node
from pybuild.instructions.base import Instruction, fail
from pybuild.instructions.flags import FlagSpec, parse_flags

_FROM_FLAGS = FlagSpec({"platform": "string"})
STAGE_NAME = re.compile(r"^[a-z][a-z0-9-_.]*$")


@dataclass(frozen=True)
class From(Instruction):
    """``FROM [--platform=P] image [AS name]``; ``image`` and ``platform`` are unexpanded."""

    image: str
    platform: str | None = None
    name: str | None = None  # lower-cased stage name

    keyword = "FROM"


def parse_from(node: Node) -> From:
    args = node.args
    name = None
    if len(args) == 3 and args[1].lower() == "as":
        name = args[2].lower()
        if not STAGE_NAME.match(name):
            raise fail(
                f'invalid name for build stage: "{args[2]}", '
                "name can't start with a number or contain symbols",
                node,
            )
    elif len(args) != 1:
        raise fail("FROM requires either one or three arguments", node)
    platform = parse_flags(node, _FROM_FLAGS).get("platform") if node.flags else None
    return From(node=node, image=args[0], platform=platform, name=name)
