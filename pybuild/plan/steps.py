"""The pure step list: what a layer instruction (RUN, COPY, ADD, WORKDIR) becomes on the state
it runs on, before anything runs.

A plan holds the instruction with its flags and mounts expanded, the text, build args and
state inputs its cache key is made of, and its history line. What only files can tell (the
digest of COPY/ADD sources or of a RUN's bind mounts, the key of a stage a mount reads) is
added by the step modules in :mod:`pybuild.build`, which also run the step.
"""

from __future__ import annotations

import dataclasses
import json
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace

from pybuild.errors import BuildError
from pybuild.instructions import Add, Copy, Instruction, Run, Workdir
from pybuild.instructions import Mount as RunMount
from pybuild.plan.state import StageState, workdir_path

LAYER_STEPS = (Run, Copy, Add, Workdir)


@dataclass(frozen=True, kw_only=True)
class StepPlan:
    text: str  # the instruction as its cache key sees it
    history: str
    args: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class RunPlan(StepPlan):
    inst: Run  # mounts expanded
    argv: tuple[str, ...]
    network: str  # default|none|host


@dataclass(frozen=True, kw_only=True)
class CopyPlan(StepPlan):
    inst: Copy | Add  # flags expanded
    dest: str  # absolute; a trailing / says "a directory"


@dataclass(frozen=True, kw_only=True)
class WorkdirPlan(StepPlan):
    path: str


def plan_step(state: StageState, inst: Instruction, network: str) -> StepPlan:
    """The plan of layer step ``inst`` on ``state``; ``network`` is the build's default."""
    if isinstance(inst, Run):
        return plan_run(state, inst, network)
    if isinstance(inst, Workdir):
        return plan_workdir(state, inst)
    if isinstance(inst, (Copy, Add)):
        return plan_copy(state, inst)
    raise BuildError(f"{inst.keyword} does not add a layer")


# -- RUN

def plan_run(state: StageState, inst: Run, default_network: str) -> RunPlan:
    inst = expand_mounts(state, inst)
    argv = argv_of(state, inst)
    network = inst.network or default_network  # default (the default bridge), none or host
    if inst.security == "insecure":
        raise BuildError("RUN --security=insecure is not allowed")
    extra = {"env": json.dumps(list(state.config.env)), "user": state.config.user,
             "workdir": state.workdir}
    return RunPlan(text=_run_key_text(argv, inst, network),
                   history=run_history(argv, inst, state), args=dict(state.args),
                   extra=extra, inst=inst, argv=argv, network=network)


def expand_mounts(state: StageState, inst: Run) -> Run:
    """``--mount`` values take ARG/ENV values, as BuildKit expands them at build time."""
    def one(m: RunMount) -> RunMount:
        words = {f.name: getattr(m, f.name) for f in fields(m)
                 if f.name != "type" and isinstance(getattr(m, f.name), str)}
        return replace(m, **{k: state.expand(v, inst.line) for k, v in words.items()})

    if not inst.mounts:
        return inst
    return replace(inst, mounts=tuple(one(m) for m in inst.mounts))


def argv_of(state: StageState, inst: Run) -> tuple[str, ...]:
    """The process a RUN starts: exec form as written, shell form through SHELL; a lone
    heredoc (``RUN <<EOF``) runs its body, other heredocs go to the shell with the line."""
    if not inst.shell_form:
        return tuple(inst.command)
    text = " ".join(inst.command)
    if inst.heredocs:
        if len(inst.heredocs) == 1 and text.strip() == f"<<{_word(inst)}":
            return (*state.shell, _body(inst.heredocs[0]))
        parts = [text]
        for doc in inst.heredocs:
            parts.append(_body(doc) + doc.name)
        text = "\n".join(parts)
    return (*state.shell, text)


def _word(inst: Run) -> str:
    text = " ".join(inst.command).strip()
    return text[2:] if text.startswith("<<") else ""


def _body(doc) -> str:
    if doc.chomp:
        return "".join(line.lstrip("\t") for line in doc.content.splitlines(keepends=True))
    return doc.content


def run_history(argv: tuple[str, ...], inst: Run, state: StageState) -> str:
    """BuildKit's ``RUN |N A=1 B=2 cmd``: the ARGs declared in the stage (an ENV of the same
    name shows its value), never undeclared ones such as the predefined proxy args."""
    shown = " ".join(argv)  # BuildKit joins exec form too, no JSON
    prefix = ""
    if state.declared:
        env = state.config.env_dict()
        pairs = [f"{k}={env[k] if k in env else state.args.get(k, '')}" for k in state.declared]
        prefix = f"|{len(pairs)} {' '.join(pairs)} "
    return f"RUN {prefix}{shown} # buildkit"


def _run_key_text(argv: tuple[str, ...], inst: Run, network: str) -> str:
    mounts = [dataclasses.asdict(m) for m in inst.mounts]
    return json.dumps({"run": list(argv), "mounts": mounts, "network": network,
                       "security": inst.security}, sort_keys=True, default=str)


# -- COPY and ADD

def plan_copy(state: StageState, inst: Copy | Add) -> CopyPlan:
    inst = _expand_flags(state, inst)
    dest = _dest_path(state.workdir, state.expand(inst.dest, inst.line))
    shown = " ".join([*inst.sources, inst.dest])
    text = json.dumps({"op": inst.keyword, "dest": dest, "chown": inst.chown,
                       "chmod": inst.chmod, "from": getattr(inst, "from_", None),
                       "sources": list(inst.sources),
                       "parents": getattr(inst, "parents", False),
                       "exclude": list(inst.exclude)}, sort_keys=True)
    return CopyPlan(text=text, history=f"{inst.keyword} {shown} # buildkit", inst=inst,
                    dest=dest)


def _dest_path(workdir: str, raw: str) -> str:
    """Absolute and clean; a trailing ``/`` (or a bare ``.``) says "a directory", as in
    BuildKit's dispatchCopy."""
    dest = posixpath.normpath(posixpath.join(workdir, raw))
    if (raw.endswith(("/", "/.")) or raw == ".") and dest != "/":
        dest += "/"
    return dest


def _expand_flags(state: StageState, inst: Copy | Add) -> Copy | Add:
    """``--chown``, ``--chmod``, ``--checksum`` and ``--exclude`` take ARG/ENV values, as in
    BuildKit (``--from`` is expanded where the stage is looked up)."""
    def word(value: str | None) -> str | None:
        return state.expand(value, inst.line) if value else value

    changes = {"chown": word(inst.chown), "chmod": word(inst.chmod),
               "exclude": tuple(state.expand(e, inst.line) for e in inst.exclude)}
    if isinstance(inst, Add):
        changes["checksum"] = word(inst.checksum)
    return replace(inst, **changes)


# -- WORKDIR

def plan_workdir(state: StageState, inst: Workdir) -> WorkdirPlan:
    path = workdir_path(state, inst.path, inst.line)
    return WorkdirPlan(text=f"WORKDIR {posixpath.normpath(path)}", history=f"WORKDIR {path}",
                       extra={"user": state.config.user}, path=path)
