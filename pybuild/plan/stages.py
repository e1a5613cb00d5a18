"""Stages and scope: which ARG and ENV values each instruction sees, which stages a target
needs, and how ``COPY --from`` and ``RUN --mount from=`` tie stages together.

Scoping follows BuildKit: ARGs before the first FROM are global and usable only in FROM
lines unless a stage redeclares them (``ARG NAME`` then takes the global value);
``--build-arg`` overrides declared ARGs only; ENV wins over ARG in expansion and is inherited
by stages built on another stage. The base image's own environment is unknown here.

References follow BuildKit too: ``FROM name`` only sees earlier stages (a later stage of that
name does not make it one), while ``COPY --from`` and ``RUN --mount from=`` may name any stage,
earlier or later, by name or index (BuildKit 0.8 gives a later one as its FROM line leaves it);
only a cycle (a stage using itself included) is refused. ``--from`` is taken as written, not
expanded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from pybuild.errors import DockerfileError, ExpansionError, StageError
from pybuild.image.config import DEFAULT_PATH
from pybuild.instructions import Arg, Env, From, Instruction
from pybuild.plan.args import PLATFORM_ARGS, is_builtin
from pybuild.plan.deps import find_cycle, reachable, references, resolve_ref
from pybuild.plan.expand import expand

ImageEnv = Callable[[str], Mapping[str, str]]  # image reference -> its configured environment


@dataclass(frozen=True)
class Scope:
    """What one instruction sees: declared ARGs (None = no value), ENV set by the Dockerfile
    so far, and the environment inherited from the base image (``image``)."""

    args: Mapping[str, str | None] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    image: Mapping[str, str] = field(default_factory=dict)

    def variables(self) -> dict[str, str]:
        """The expansion environment: ARGs with a value, overridden by any environment."""
        out = {k: v for k, v in self.args.items() if v is not None}
        out.update(self.image)
        out.update(self.env)
        return out


@dataclass(frozen=True)
class Stage:
    index: int
    name: str | None  # lower-cased ``AS`` name
    from_: From
    base: str  # the expanded base: an image reference, or a stage's name
    base_is_stage: bool
    base_stage: int | None
    platform: str | None  # expanded ``--platform``
    instructions: tuple[Instruction, ...]  # after FROM
    scopes: tuple[Scope, ...]  # visible at each instruction, before it runs
    final: Scope  # after the last instruction
    deps: tuple[int, ...]  # stages used by COPY --from / RUN --mount from= (not the base)
    images: tuple[str, ...] = ()  # images named by COPY --from / mount from=
    dep_lines: tuple[int, ...] = ()  # the line where each of ``deps`` is first used

    @property
    def display_name(self) -> str:
        return self.name or f"stage-{self.index}"


@dataclass(frozen=True)
class BuildStages:
    global_args: Mapping[str, str | None]  # global ARGs and automatic platform ARGs
    stages: tuple[Stage, ...]
    target_index: int
    needed: tuple[int, ...]  # indices the target needs, itself included, ascending
    unused_build_args: tuple[str, ...] = ()
    file: str = "Dockerfile"

    @property
    def target(self) -> Stage:
        return self.stages[self.target_index]

    def stage(self, ref: str | int) -> Stage | None:
        """Lookup by index or by name (case-insensitive)."""
        return _find(self.stages, ref)


def _find(stages: Sequence[Stage], ref: str | int) -> Stage | None:
    if isinstance(ref, int) or ref.isdigit():
        index = int(ref)
        return stages[index] if 0 <= index < len(stages) else None
    lowered = ref.lower()
    return next((s for s in stages if s.name == lowered), None)


def _expand(word: str, env: Mapping[str, str], line: int, escape: str) -> str:
    try:
        return expand(word, env, escape=escape)
    except ExpansionError as err:
        raise StageError(str(err), line=line) from None


class _Resolver:
    def __init__(self, build_args: Mapping[str, str | None], escape: str,
                 image_env: ImageEnv | None):
        self.image_env = image_env
        self.build_args = {k: v for k, v in build_args.items() if v is not None}
        self.escape = escape
        self.meta: dict[str, str | None] = dict(PLATFORM_ARGS)
        self.meta.update({k: v for k, v in self.build_args.items() if k in PLATFORM_ARGS})
        self.declared: set[str] = set()
        self.stages: list[Stage] = []

    def global_arg(self, inst: Arg) -> None:
        for item in inst.args:
            value = item.default
            if value is not None:
                env = {k: v for k, v in self.meta.items() if v is not None}
                value = _expand(value, env, inst.line, self.escape)
            self.meta[item.name] = self.build_args.get(item.name, value)
            self.declared.add(item.name)

    def stage_arg(self, inst: Arg, scope: Scope, args: dict, needed_names: set) -> None:
        for item in inst.args:
            value = item.default
            if value is not None:
                value = _expand(value, scope.variables(), inst.line, self.escape)
            elif item.name in self.meta:
                value = self.meta[item.name]
            args[item.name] = self.build_args.get(item.name, value)
            needed_names.add(item.name)

    def env(self, inst: Env, scope: Scope, env: dict) -> None:
        # Every pair sees the values from before the line (ENV a=1 b=$a takes the old $a).
        variables = scope.variables()
        for key, value in inst.pairs:
            key = _expand(key, variables, inst.line, self.escape)
            env[key] = _expand(value, variables, inst.line, self.escape)

    def base(self, inst: From, index: int) -> tuple[str, int | None, str | None]:
        env = {k: v for k, v in self.meta.items() if v is not None}
        name = _expand(inst.image, env, inst.line, self.escape)
        if not name:
            raise StageError(f"base name ({inst.image}) should not be blank", line=inst.line)
        platform = inst.platform
        if platform is not None:
            platform = _expand(platform, env, inst.line, self.escape)
        # FROM only sees the stages before it; a later stage of that name is not a base.
        earlier = _find(self.stages[:index], name) if not name.isdigit() else None
        return name, earlier.index if earlier else None, platform

    def stage(self, index: int, head: From, body: list[Instruction], used: set) -> Stage:
        base, base_stage, platform = self.base(head, index)
        if base_stage is not None:
            image = self.stages[base_stage].final.image
            env: dict[str, str] = dict(self.stages[base_stage].final.env)
        else:
            image, env = self.base_env(base), {}
        args: dict[str, str | None] = {}
        scopes = []
        for inst in body:
            scope = Scope(dict(args), dict(env), image)
            scopes.append(scope)
            if isinstance(inst, Arg):
                self.stage_arg(inst, scope, args, used)
            elif isinstance(inst, Env):
                self.env(inst, scope, env)
        return Stage(index=index, name=head.name, from_=head, base=base,
                     base_is_stage=base_stage is not None, base_stage=base_stage,
                     platform=platform, instructions=tuple(body), scopes=tuple(scopes),
                     final=Scope(args, env, image), deps=(), images=())

    def base_env(self, base: str) -> dict[str, str]:
        # BuildKit always sets PATH, even on scratch; an image's own env needs the image.
        env = dict(self.image_env(base)) if self.image_env and base != "scratch" else {}
        env.setdefault("PATH", DEFAULT_PATH)
        return env


def _split(instructions: Sequence[Instruction]) -> tuple[list[Arg], list[tuple[From, list]]]:
    meta: list[Arg] = []
    groups: list[tuple[From, list]] = []
    for inst in instructions:
        if isinstance(inst, From):
            groups.append((inst, []))
        elif groups:
            groups[-1][1].append(inst)
        elif isinstance(inst, Arg):
            meta.append(inst)
        else:
            raise StageError("no build stage in current context", line=inst.line)
    if not groups:
        raise StageError("no build stage in current context")
    return meta, groups


def resolve(
    instructions: Sequence[Instruction],
    build_args: Mapping[str, str | None] | None = None,
    target: str | None = None,
    *,
    escape: str = "\\",
    file: str = "Dockerfile",
    image_env: ImageEnv | None = None,
) -> BuildStages:
    """Stages, scopes and the stages ``target`` (default: the last stage) needs.

    ``build_args`` entries whose value is None are ignored (the CLI resolves
    ``--build-arg NAME`` from its environment). StageError on an unknown target, a blank
    base name, an out-of-range ``--from`` index or a dependency cycle. ``image_env(ref)`` gives
    a base image's environment when known; otherwise a base defines only BuildKit's default
    ``PATH``.
    """
    try:
        return _resolve(instructions, build_args or {}, target, escape, file, image_env)
    except DockerfileError as err:
        raise err.located(file) from None


resolve_stages = resolve  # the name ``pybuild`` exports


def _resolve(instructions, build_args, target, escape, file, image_env) -> BuildStages:
    meta, groups = _split(instructions)
    res = _Resolver(build_args, escape, image_env)
    for inst in meta:
        res.global_arg(inst)
    stage_args: list[set[str]] = []
    for index, (head, body) in enumerate(groups):
        stage_args.append(set())
        res.stages.append(res.stage(index, head, body, stage_args[-1]))
    stages = _with_deps(res.stages, escape)
    edges = [(*s.deps, *((s.base_stage,) if s.base_stage is not None else ())) for s in stages]
    cycle = find_cycle(edges)
    if cycle is not None:
        stage = stages[cycle]
        raise StageError(f"circular dependency detected on stage: {stage.display_name}",
                         line=stage.dep_lines[0] if stage.dep_lines else None)
    target_index = _target(stages, target)
    needed = reachable(edges, target_index)
    consumed = res.declared.union(*(stage_args[i] for i in needed))
    unused = sorted(k for k, v in build_args.items()
                    if v is not None and k not in consumed and not is_builtin(k))
    return BuildStages(global_args=dict(res.meta), stages=tuple(stages),
                       target_index=target_index, needed=needed,
                       unused_build_args=tuple(unused), file=file)


def _with_deps(stages: list[Stage], escape: str) -> list[Stage]:
    names = [s.name for s in stages]
    out = []
    for stage in stages:
        deps: list[int] = []
        lines: list[int] = []
        images: list[str] = []
        for inst, scope in zip(stage.instructions, stage.scopes):
            for ref in references(inst):
                ref = _expand(ref, scope.variables(), inst.line, escape)
                index = resolve_ref(ref, names, inst.line)
                if index is None:
                    images.append(ref)
                elif index not in deps:
                    deps.append(index)
                    lines.append(inst.line)
        out.append(replace(stage, deps=tuple(deps), images=tuple(dict.fromkeys(images)),
                           dep_lines=tuple(lines)))
    return out


def _target(stages: Sequence[Stage], target: str | None) -> int:
    if target is None:
        return len(stages) - 1
    found = _find(stages, target) if not target.isdigit() else None
    if found is None:
        raise StageError(f'target stage "{target}" could not be found')
    return found.index
