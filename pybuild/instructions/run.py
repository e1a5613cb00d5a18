"""RUN, CMD, ENTRYPOINT and SHELL: the instructions that carry a command line."""

from __future__ import annotations

from dataclasses import dataclass

from pybuild.dockerfile.syntax import Heredoc, Node
from pybuild.instructions.base import Instruction, fail
from pybuild.instructions.flags import NO_FLAGS, FlagSpec, located, parse_flags
from pybuild.instructions.runmount import Mount, parse_mount

NETWORK_MODES = ("default", "none", "host")
SECURITY_MODES = ("sandbox", "insecure")


@dataclass(frozen=True)
class Run(Instruction):
    """``command`` is the JSON array, or one element holding the shell-form text verbatim."""

    command: tuple[str, ...]
    shell_form: bool = True
    heredocs: tuple[Heredoc, ...] = ()
    mounts: tuple[Mount, ...] = ()
    network: str | None = None
    security: str | None = None

    keyword = "RUN"


@dataclass(frozen=True)
class Cmd(Instruction):
    command: tuple[str, ...]
    shell_form: bool = True

    keyword = "CMD"


@dataclass(frozen=True)
class Entrypoint(Instruction):
    command: tuple[str, ...]
    shell_form: bool = True

    keyword = "ENTRYPOINT"


@dataclass(frozen=True)
class Shell(Instruction):
    shell: tuple[str, ...]

    keyword = "SHELL"


_RUN_FLAGS = FlagSpec({"mount": "strings", "network": "string", "security": "string"})


def parse_run(node: Node) -> Run:
    f = parse_flags(node, _RUN_FLAGS)
    mounts = tuple(located(node, parse_mount, spec) for spec in f.get("mount", ()))
    network = f.get("network")
    if network is not None and network not in NETWORK_MODES:
        raise fail(f'unsupported network mode "{network}"', node)
    security = f.get("security")
    if security is not None and security not in SECURITY_MODES:
        raise fail(f'unsupported security mode "{security}"', node)
    return Run(command=node.args, shell_form=not node.json, heredocs=node.heredocs,
               mounts=mounts, network=network, security=security, node=node)


def parse_cmd(node: Node) -> Cmd:
    if node.flags:  # only to refuse them: these instructions take none
        parse_flags(node, NO_FLAGS)
    return Cmd(node=node, command=node.args, shell_form=not node.json)


def parse_entrypoint(node: Node) -> Entrypoint:
    if node.flags:  # only to refuse them: these instructions take none
        parse_flags(node, NO_FLAGS)
    return Entrypoint(node=node, command=node.args, shell_form=not node.json)


def parse_shell(node: Node) -> Shell:
    if node.flags:  # only to refuse them: these instructions take none
        parse_flags(node, NO_FLAGS)
    if not node.args:
        raise fail("SHELL requires at least one argument", node)
    if not node.json:
        raise fail("SHELL requires the arguments to be in JSON form", node)
    return Shell(shell=node.args, node=node)
