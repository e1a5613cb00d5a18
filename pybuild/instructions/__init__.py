"""Typed, frozen instructions made from the parser's syntax tree.

``from_document(doc)`` converts a whole Document; ``convert(node)`` one node. Every
instruction keeps the syntax ``node`` it came from (its ``span`` and ``raw`` text are read from
it); the node takes no part in equality. Values are kept as written (quotes and ``$VAR``
included) because BuildKit expands them only when an instruction is dispatched; see
``pybuild.plan``.
"""

from __future__ import annotations

from pybuild.instructions.base import Instruction, Span
from pybuild.instructions.config import (
    Arg,
    ArgDef,
    Env,
    Expose,
    Label,
    Maintainer,
    Stopsignal,
    User,
    Volume,
    Workdir,
)
from pybuild.instructions.copy import Add, Copy
from pybuild.instructions.dispatch import CONVERTERS, KEYWORDS, Onbuild, convert, from_document
from pybuild.instructions.from_ import From
from pybuild.instructions.healthcheck import Healthcheck, parse_duration
from pybuild.instructions.run import Cmd, Entrypoint, Run, Shell
from pybuild.instructions.runmount import Mount, parse_mount

# The public name (``pybuild.parse_instructions``) for the document-level entry point.
parse_instructions = from_document

__all__ = [
    "CONVERTERS", "KEYWORDS", "Add", "Arg", "ArgDef", "Cmd", "Copy", "Entrypoint", "Env",
    "Expose", "From", "Healthcheck", "Instruction", "Label", "Maintainer", "Mount", "Onbuild",
    "Run", "Shell", "Span", "Stopsignal", "User", "Volume", "Workdir", "convert",
    "from_document", "parse_duration", "parse_instructions", "parse_mount",
]
