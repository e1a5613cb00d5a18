"""BuildKit's build checks that need no image: warnings with BuildKit's rule names and text.

``run_checks(doc)`` returns the warnings that the ``# check=`` directive does not skip;
``check_config(doc)`` says whether they are to fail the build (``error=true``). Base images
are never pulled, so their environment is unknown: a stage built on an image is assumed to
define ``PATH`` only (pass ``image_env`` to ``resolve`` and the result as ``stages`` to know
better), and InvalidBaseImagePlatform, which needs the image, is not checked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pybuild.dockerfile.syntax import Document
from pybuild.errors import ParseError, PybuildError
from pybuild.instructions import (
    Add,
    Arg,
    Cmd,
    Copy,
    Entrypoint,
    Env,
    Expose,
    From,
    Healthcheck,
    Instruction,
    Label,
    Maintainer,
    Shell,
    Stopsignal,
    User,
    Volume,
    Workdir,
    from_document,
)
from pybuild.instructions.base import suggest
from pybuild.plan.args import PLATFORM_ARGS
from pybuild.plan.expand import expand, expand_matches, unmatched
from pybuild.plan.stages import BuildStages, Stage, resolve

_URL = "https://docs.docker.com/go/dockerfile/rule/"
URLS = {name: _URL + re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower().replace("j-s-o-n", "json")
        + "/" for name in (
    "StageNameCasing", "FromAsCasing", "NoEmptyContinuation", "ConsistentInstructionCasing",
    "DuplicateStageName", "ReservedStageName", "JSONArgsRecommended", "MaintainerDeprecated",
    "UndefinedArgInFrom", "WorkdirRelativePath", "UndefinedVar", "MultipleInstructionsDisallowed",
    "LegacyKeyValueFormat", "RedundantTargetPlatform", "SecretsUsedInArgOrEnv",
    "InvalidDefaultArgInFrom", "ExposeProtoCasing", "FromPlatformFlagConstDisallowed")}
RESERVED_STAGE_NAMES = ("context", "scratch")
_SECRET = re.compile(r"(?i)(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword"
                     r"|passwd|secret|token)(?:_|$)")
_ALLOWED = re.compile(r"(?i)(?:_|^)(?:public|file|version)(?:_|$)")
_REFERENCE = re.compile(
    r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[\w][\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$"
)
_SINGLE = {Cmd: "CMD", Entrypoint: "ENTRYPOINT", Healthcheck: "HEALTHCHECK"}


@dataclass(frozen=True)
class CheckWarning:
    rule: str
    message: str
    line: int
    url: str = ""


@dataclass(frozen=True)
class CheckConfig:
    skip: frozenset[str] = frozenset()
    skip_all: bool = False
    error: bool = False


_BOOLS = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
          "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}


def check_config(doc: Document) -> CheckConfig:
    """The ``# check=skip=A,B;error=true`` directive; ParseError when malformed."""
    text = doc.directives.get("check", "").strip()
    skip, skip_all, error = frozenset(), False, False
    for part in filter(None, text.split(";", 1)) if text else ():
        key, eq, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or key not in ("skip", "error"):
            raise ParseError(f'invalid check option "{part if not eq else key}"', file=doc.file)
        if key == "skip" and value == "all":
            skip_all = True
        elif key == "skip":
            skip = frozenset(v.strip() for v in value.split(","))
        elif value not in _BOOLS:
            raise ParseError(f'failed to parse check option "{part}"', file=doc.file)
        else:
            error = _BOOLS[value]
    return CheckConfig(skip, skip_all, error)


class _Collector:
    def __init__(self) -> None:
        self.out: list[CheckWarning] = []

    def __call__(self, rule: str, message: str, line: int) -> None:
        self.out.append(CheckWarning(rule, message, line, URLS.get(rule, "")))


def run_checks(doc: Document, instructions: Sequence[Instruction] | None = None,
               stages: BuildStages | None = None) -> list[CheckWarning]:
    """Warnings for ``doc`` in line order, minus those its ``# check=`` directive skips."""
    config = check_config(doc)
    if config.skip_all:
        return []
    instructions = from_document(doc) if instructions is None else instructions
    stages = resolve(instructions, escape=doc.escape, file=doc.file) if stages is None else stages
    warn = _Collector()
    for w in doc.warnings:
        if w.rule in ("", "NoEmptyContinuation"):  # the parser's text names the whole line
            warn("NoEmptyContinuation", "Empty continuation line", w.line)
    _casing(doc, warn)
    _per_instruction(instructions, warn)
    _from_lines(stages, instructions, doc.escape, warn)
    for stage in stages.stages:
        _stage_rules(stage, stages, warn)
        _undefined_vars(stage, doc.escape, warn)
    kept = [w for w in warn.out if w.rule not in config.skip]
    return sorted(kept, key=lambda w: w.line)


def _casing(doc: Document, warn: _Collector) -> None:
    # BuildKit counts FROM lines and stage instructions; ARGs before the first FROM do not.
    first = next((i for i, n in enumerate(doc.nodes) if n.keyword == "from"), len(doc.nodes))
    nodes = doc.nodes[first:]
    consistent = [n.original for n in nodes if n.original in (n.original.lower(),
                                                              n.original.upper())]
    lower = sum(1 for w in consistent if w == w.lower())
    majority_lower = lower > len(consistent) - lower
    for node in nodes:
        word = node.original
        if majority_lower and word != word.lower():
            warn("ConsistentInstructionCasing",
                 f"Command '{word}' should match the case of the command majority (lowercase)",
                 node.start_line)
        elif not majority_lower and word != word.upper():
            warn("ConsistentInstructionCasing",
                 f"Command '{word}' should match the case of the command majority (uppercase)",
                 node.start_line)


def _per_instruction(instructions: Sequence[Instruction], warn: _Collector) -> None:
    for inst in instructions:
        if isinstance(inst, Maintainer):
            warn("MaintainerDeprecated",
                 "Maintainer instruction is deprecated in favor of using label", inst.line)
        elif isinstance(inst, (Env, Label)) and inst.legacy:
            name = _name(inst)
            warn("LegacyKeyValueFormat", f'"{name} key=value" should be used instead '
                 f'of legacy "{name} key value" format', inst.line)
        elif isinstance(inst, Expose):
            for port in inst.ports:
                proto = port.partition("/")[2]
                if proto and proto != proto.lower():
                    warn("ExposeProtoCasing", f"Defined protocol '{port}' in EXPOSE "
                         "instruction should be lowercase", inst.line)
        if isinstance(inst, (Arg, Env)):
            names = [a.name for a in inst.args] if isinstance(inst, Arg) else \
                [k for k, _ in inst.pairs]
            for name in names:
                if _SECRET.search(name) and not _ALLOWED.search(name):
                    warn("SecretsUsedInArgOrEnv", "Do not use ARG or ENV instructions for "
                         f'sensitive data ({inst.keyword} "{name}")', inst.line)


def _from_lines(stages: BuildStages, instructions: Sequence[Instruction], escape: str,
                warn: _Collector) -> None:
    defaults = _meta_defaults(instructions, escape)
    declared = {k: "" for k in stages.global_args}
    seen: set[str] = set()
    for stage in stages.stages:
        inst = stage.from_
        _stage_name(inst, seen, warn)
        for word in (inst.image, inst.platform or ""):
            for name in unmatched(word, declared, escape):
                near = suggest(name, sorted(declared))
                warn("UndefinedArgInFrom", f"FROM argument '{name}' is not declared"
                     + (f" (did you mean {near}?)" if near else ""), inst.line)
        try:
            image = expand(inst.image, defaults, escape=escape)
        except PybuildError:
            image = None  # the build reports a word that cannot be expanded
        if image is not None and not _REFERENCE.match(image):
            warn("InvalidDefaultArgInFrom", f"Default value for ARG {inst.image} results "
                 "in empty or invalid base image name", inst.line)
        if inst.platform is not None:
            _platform(inst, stages, escape, warn)


def _platform(inst: From, stages: BuildStages, escape: str, warn: _Collector) -> None:
    env = {k: v for k, v in stages.global_args.items() if v is not None}
    try:
        value, found, missing = expand_matches(inst.platform or "", env, escape)
    except PybuildError:
        return
    if found == {"TARGETPLATFORM"} and not missing and value == env.get("TARGETPLATFORM"):
        warn("RedundantTargetPlatform", f"Setting platform to predefined {inst.platform} "
             "in FROM is redundant as this is the default behavior", inst.line)
    parts = value.split("/")
    if found or missing or len(parts) not in (2, 3) or not all(parts):
        return
    if not any(p in (inst.name or "") for p in parts[:2]):
        warn("FromPlatformFlagConstDisallowed",
             f'FROM --platform flag should not use constant value "{value}"', inst.line)


def _meta_defaults(instructions: Sequence[Instruction], escape: str) -> dict[str, str]:
    """Global ARGs with their defaults only (no build-args), unset ones as empty strings."""
    values = dict(PLATFORM_ARGS)
    for inst in instructions:
        if isinstance(inst, From):
            break
        if isinstance(inst, Arg):
            for item in inst.args:
                try:
                    values[item.name] = expand(item.default or "", values, escape=escape)
                except PybuildError:  # treat as empty: the check then reports the FROM
                    values[item.name] = ""
    return values


def _stage_name(inst: From, seen: set[str], warn: _Collector) -> None:
    node = inst.node
    if node is None or len(node.args) != 3:
        return
    as_word, written = node.args[1], node.args[2]
    if written != written.lower():
        warn("StageNameCasing", f"Stage name '{written}' should be lowercase", inst.line)
    from_word = node.original
    if (from_word == from_word.lower()) != (as_word == as_word.lower()):
        warn("FromAsCasing", f"'{as_word}' and '{from_word}' keywords' casing do not match",
             inst.line)
    if inst.name in seen:
        warn("DuplicateStageName",
             f'Duplicate stage name "{inst.name}", stage names should be unique', inst.line)
    seen.add(inst.name or "")
    if inst.name in RESERVED_STAGE_NAMES:
        warn("ReservedStageName", "Stage name should not use the same name as reserved stage "
             f'"{inst.name}"', inst.line)


def _name(inst: Instruction) -> str:
    """The instruction word as written: BuildKit's messages quote it in its own case."""
    return inst.node.original if inst.node is not None else inst.keyword


def _ancestors(stage: Stage, stages: BuildStages) -> list[Stage]:
    chain = []
    while stage.base_stage is not None:
        stage = stages.stages[stage.base_stage]
        chain.append(stage)
    return chain


def _stage_rules(stage: Stage, stages: BuildStages, warn: _Collector) -> None:
    ancestors = _ancestors(stage, stages)
    inherited = [i for s in ancestors for i in s.instructions]
    shell_set = any(isinstance(i, Shell) for i in inherited)
    workdir_set = any(isinstance(i, Workdir) for i in inherited)
    seen: dict[str, list[Instruction]] = {}
    for inst, scope in zip(stage.instructions, stage.scopes):
        if type(inst) in _SINGLE:
            seen.setdefault(_SINGLE[type(inst)], []).append(inst)
            if len(seen[_SINGLE[type(inst)]]) > 1:  # the earlier one is the one ignored
                earlier = seen[_SINGLE[type(inst)]][-2]
                warn("MultipleInstructionsDisallowed", f"Multiple {_name(inst)} instructions "
                     "should not be used in the same stage because only the last one will be "
                     "used", earlier.line)
        if isinstance(inst, Shell):
            shell_set = True
        elif isinstance(inst, (Cmd, Entrypoint)) and inst.shell_form and inst.command:
            if not shell_set:
                warn("JSONArgsRecommended", f"JSON arguments recommended for {_name(inst)} "
                     "to prevent unintended behavior related to OS signals", inst.line)
        elif isinstance(inst, Workdir):
            path = _quiet_expand(inst.path, scope.variables())
            if not path.startswith("/") and not workdir_set:
                warn("WorkdirRelativePath", f'Relative workdir "{path}" can have unexpected '
                     "results if the base image changes", inst.line)
            workdir_set = True


def _quiet_expand(word: str, env: dict[str, str]) -> str:
    try:
        return expand(word, env)
    except PybuildError:  # the build reports bad words; a check only looks
        return word


def _words(inst: Instruction) -> list[str]:
    """The words BuildKit expands for ``inst`` (RUN, CMD and friends are left to the shell)."""
    if isinstance(inst, (Env, Label)):
        return [w for pair in inst.pairs for w in pair]
    if isinstance(inst, Arg):
        return [a.default for a in inst.args if a.default is not None]
    if isinstance(inst, (Copy, Add)):
        return [*inst.sources, inst.dest, inst.chown or "", inst.chmod or ""]
    if isinstance(inst, Workdir):
        return [inst.path]
    if isinstance(inst, User):
        return [inst.user]
    if isinstance(inst, Stopsignal):
        return [inst.signal]
    if isinstance(inst, (Expose, Volume)):
        return list(inst.ports if isinstance(inst, Expose) else inst.paths)
    return []


def _undefined_vars(stage: Stage, escape: str, warn: _Collector) -> None:
    for inst, scope in zip(stage.instructions, stage.scopes):
        # Declared ARGs count as defined even without a value, as in BuildKit.
        known = {**{k: "" for k in scope.args}, **scope.variables()}
        reported: set[str] = set()
        for word in _words(inst):
            try:
                names = unmatched(word, known, escape)
            except PybuildError:  # bad words are the build's to report
                continue
            for name in names:
                if name in reported:
                    continue
                reported.add(name)
                near = suggest(name, sorted(known))
                warn("UndefinedVar", f"Usage of undefined variable '${name}'"
                     + (f" (did you mean ${near}?)" if near else ""), inst.line)
