"""Dockerfile text for typed instructions: the inverse of parsing, for round-trip tests and
for tools that rewrite Dockerfiles. Output parses back to an equal instruction."""

from __future__ import annotations

import json
from functools import singledispatch

import pybuild.instructions as ins
from pybuild.dockerfile.syntax import Heredoc


def _json(words) -> str:
    return json.dumps(list(words), ensure_ascii=False)


def _command(command: tuple[str, ...], shell_form: bool) -> str:
    return command[0] if shell_form and command else _json(command)


def _bodies(docs: tuple[Heredoc, ...]) -> str:
    return "".join(f"\n{d.content}{d.name}" for d in docs)


def mount_spec(m: ins.Mount) -> str:
    """The ``--mount`` value for ``m`` (keys BuildKit accepts, defaults left out)."""
    parts = [f"type={m.type}"]
    for key, value in (("source", m.source), ("target", m.target), ("from", m.from_),
                       ("id", m.id), ("sharing", m.sharing), ("size", m.size), ("env", m.env)):
        if value is not None:
            parts.append(f"{key}={value}")
    for key, value in (("uid", m.uid), ("gid", m.gid)):
        if value is not None:
            parts.append(f"{key}={value}")
    if m.mode is not None:
        parts.append(f"mode={m.mode:o}")
    if m.readonly != (m.type not in ("cache", "tmpfs")):
        parts.append("ro" if m.readonly else "rw")
    if m.required:
        parts.append("required")
    return ",".join(parts)


@singledispatch
def render(inst: ins.Instruction) -> str:
    """Dockerfile text for ``inst``, heredoc bodies included, without a final newline."""
    raise TypeError(f"cannot render {type(inst).__name__}")


@render.register
def _(inst: ins.From) -> str:
    platform = f"--platform={inst.platform} " if inst.platform is not None else ""
    name = f" AS {inst.name}" if inst.name else ""
    return f"FROM {platform}{inst.image}{name}"


@render.register
def _(inst: ins.Run) -> str:
    flags = [f"--mount={mount_spec(m)}" for m in inst.mounts]
    flags += [f"--network={inst.network}"] if inst.network else []
    flags += [f"--security={inst.security}"] if inst.security else []
    head = " ".join(["RUN", *flags, _command(inst.command, inst.shell_form)])
    return head + _bodies(inst.heredocs)


@render.register(ins.Cmd)
@render.register(ins.Entrypoint)
def _(inst) -> str:
    return f"{inst.keyword} {_command(inst.command, inst.shell_form)}"


@render.register
def _(inst: ins.Shell) -> str:
    return f"SHELL {_json(inst.shell)}"


@render.register(ins.User)
@render.register(ins.Workdir)
@render.register(ins.Maintainer)
@render.register(ins.Stopsignal)
def _(inst) -> str:
    value = {ins.User: "user", ins.Workdir: "path", ins.Maintainer: "maintainer",
             ins.Stopsignal: "signal"}
    return f"{inst.keyword} {getattr(inst, value[type(inst)])}"


@render.register(ins.Expose)
@render.register(ins.Volume)
def _(inst) -> str:
    words = inst.ports if isinstance(inst, ins.Expose) else inst.paths
    if any(not w or any(c.isspace() for c in w) for w in words):
        return f"{inst.keyword} {_json(words)}"
    return f"{inst.keyword} {' '.join(words)}"


@render.register(ins.Env)
@render.register(ins.Label)
def _(inst) -> str:
    if inst.legacy:
        key, value = inst.pairs[0]
        return f"{inst.keyword} {key} {value}"
    return f"{inst.keyword} " + " ".join(f"{k}={v}" for k, v in inst.pairs)


@render.register
def _(inst: ins.Arg) -> str:
    words = [a.name if a.default is None else f"{a.name}={a.default}" for a in inst.args]
    return "ARG " + " ".join(words)


def _copy_flags(inst: ins.Copy | ins.Add) -> list[str]:
    flags = []
    for name in ("from_", "chown", "chmod", "checksum"):
        value = getattr(inst, name, None)
        if value is not None:
            flags.append(f"--{name.rstrip('_')}={value}")
    for name in ("link", "parents", "keep_git_dir"):
        if getattr(inst, name, False):
            flags.append(f"--{name.replace('_', '-')}")
    if getattr(inst, "unpack", None) is not None:
        flags.append(f"--unpack={'true' if inst.unpack else 'false'}")
    return flags + [f"--exclude={e}" for e in inst.exclude]


@render.register(ins.Copy)
@render.register(ins.Add)
def _(inst) -> str:
    words = [*inst.sources, inst.dest]
    if any(any(c.isspace() for c in w) for w in words) and not inst.heredocs:
        args = _json(words)
    else:
        args = " ".join([*(f"<<{d.name}" for d in inst.heredocs), *words])
    return " ".join([inst.keyword, *_copy_flags(inst), args]) + _bodies(inst.heredocs)


def _duration(ns: int) -> str:
    return f"{ns // 1_000_000}ms" if ns % 1_000_000 == 0 else f"{ns}ns"


@render.register
def _(inst: ins.Healthcheck) -> str:
    if inst.test == ("NONE",):
        return "HEALTHCHECK NONE"
    flags = [f"--{name.replace('_', '-')}={_duration(getattr(inst, name))}"
             for name in ("interval", "timeout", "start_period", "start_interval")
             if getattr(inst, name)]
    flags += [f"--retries={inst.retries}"] if inst.retries else []
    kind, *command = inst.test
    body = command[0] if kind == "CMD-SHELL" else _json(command)
    return " ".join(["HEALTHCHECK", *flags, "CMD", body])


@render.register
def _(inst: ins.Onbuild) -> str:
    return f"ONBUILD {render(inst.instruction)}"
