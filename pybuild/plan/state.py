"""The state a stage carries from instruction to instruction, and the instructions that only
change the image config (ARG, ENV, LABEL, CMD, ...). Pure functions: no filesystem, no store."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from pybuild.errors import ExpansionError, InstructionError
from pybuild.image.config import (
    DEFAULT_PATH,
    ContainerConfig,
    HealthConfig,
    HistoryEntry,
    ImageConfig,
)
from pybuild.instructions import (
    Arg,
    Cmd,
    Entrypoint,
    Env,
    Expose,
    Healthcheck,
    Instruction,
    Label,
    Maintainer,
    Onbuild,
    Shell,
    Stopsignal,
    User,
    Volume,
)
from pybuild.shell.words import expand as shell_expand
from pybuild.store.records import LayerRef

DEFAULT_SHELL = ("/bin/sh", "-c")


@dataclass(frozen=True)
class StageState:
    """An image being built: its config, its layers, the cache key of everything so far."""

    image: ImageConfig
    layers: tuple[LayerRef, ...]
    key: str
    args: Mapping[str, str] = field(default_factory=dict)  # ARGs in scope that have a value
    declared: tuple[str, ...] = ()  # ARG names declared in this stage, in order (for history)
    escape: str = "\\"
    cmd_set: bool = False  # CMD given in this stage (ENTRYPOINT then keeps it)
    created: str = ""

    @property
    def config(self) -> ContainerConfig:
        return self.image.config

    @property
    def diff_ids(self) -> tuple[str, ...]:
        return tuple(layer.diff_id for layer in self.layers)

    @property
    def shell(self) -> tuple[str, ...]:
        return self.config.shell or DEFAULT_SHELL

    @property
    def workdir(self) -> str:
        return self.config.working_dir or "/"

    def with_default_path(self) -> StageState:
        """BuildKit gives every stage a PATH when its base image has none."""
        if "PATH" in self.config.env_dict():
            return self
        config = self.config.with_env("PATH", DEFAULT_PATH)
        return replace(self, image=replace(self.image, config=config))

    def variables(self) -> dict[str, str]:
        """What ``$VAR`` sees in an instruction: ARG values, then ENV on top (ENV wins)."""
        out = dict(self.args)
        out.update(self.config.env_dict())
        return out

    def expand(self, word: str, line: int = 0) -> str:
        try:
            return shell_expand(word, self.variables(), escape=self.escape)
        except ExpansionError as err:  # reported at the instruction's line
            raise InstructionError(str(err), line=line) from None

    def expand_heredoc(self, text: str, line: int = 0) -> str:
        """A heredoc body: variables expanded, quotes left as written (as BuildKit)."""
        try:
            return shell_expand(text, self.variables(), escape=self.escape, plain_quotes=True)
        except ExpansionError as err:
            raise InstructionError(str(err), line=line) from None

    def run_env(self) -> tuple[str, ...]:
        """The environment of a RUN: ENV, plus ARGs ENV does not set, plus a default PATH."""
        env = dict(self.config.env_dict())
        for name, value in self.args.items():
            env.setdefault(name, value)
        env.setdefault("PATH", DEFAULT_PATH)
        return tuple(f"{k}={v}" for k, v in env.items())

    def with_config(self, config: ContainerConfig, created_by: str, *,
                    empty_layer: bool = True, author: str | None = None) -> StageState:
        entry = HistoryEntry(created=self.created, created_by=created_by,
                             empty_layer=empty_layer)
        image = replace(self.image, config=config, history=(*self.image.history, entry))
        if author is not None:
            image = replace(image, author=author)
        return replace(self, image=image)

    def with_layer(self, layer: LayerRef, created_by: str, key: str) -> StageState:
        entry = HistoryEntry(created=self.created, created_by=created_by)
        image = replace(self.image, diff_ids=(*self.image.diff_ids, layer.diff_id),
                        history=(*self.image.history, entry))
        return replace(self, image=image, layers=(*self.layers, layer), key=key)


def command_of(inst: Cmd | Entrypoint, shell: tuple[str, ...]) -> tuple[str, ...]:
    """Exec form as written; shell form wrapped in the stage's SHELL."""
    if inst.shell_form:
        return (*shell, " ".join(inst.command))
    return tuple(inst.command)


def _exposed(state: StageState, inst: Expose) -> list[str]:
    out = []
    for port in inst.ports:
        text = state.expand(port, inst.line)
        number, _, proto = text.partition("/")
        proto = (proto or "tcp").lower()
        low, _, high = number.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise InstructionError(f"invalid containerPort: {text}", line=inst.line)
        for value in range(int(low), int(high or low) + 1):
            out.append(f"{value}/{proto}")
    return out


def _pairs(state: StageState, inst: Env | Label) -> list[tuple[str, str]]:
    return [(state.expand(k, inst.line), state.expand(v, inst.line)) for k, v in inst.pairs]


def _text(pairs: list[tuple[str, str]]) -> str:
    return " ".join(f"{k}={v}" for k, v in pairs)


def apply_config(state: StageState, inst: Instruction) -> StageState | None:
    """The state after a config-only instruction, or None when ``inst`` is not one."""
    handler = _HANDLERS.get(type(inst))
    return handler(state, inst) if handler else None



def apply_arg(state: StageState, inst: Arg, build_args: Mapping[str, str | None],
              global_args: Mapping[str, str | None]) -> StageState:
    """ARG: its value in scope (``--build-arg``, else its default, else the global ARG's),
    and BuildKit's ``ARG NAME=value`` history entry."""
    args = dict(state.args)
    shown = []
    for arg in inst.args:
        given, global_value = build_args.get(arg.name), global_args.get(arg.name)
        if given is not None:
            args[arg.name] = given
        elif arg.default is not None:
            args[arg.name] = state.expand(arg.default, inst.line)
        elif global_value is not None:
            args[arg.name] = global_value
        shown.append(f"{arg.name}={args[arg.name]}" if arg.name in args else arg.name)
    state = replace(state, args=args, declared=(*state.declared, *(a.name for a in inst.args)))
    return state.with_config(state.config, "ARG " + " ".join(shown))

def _env(state: StageState, inst: Env) -> StageState:
    pairs = _pairs(state, inst)
    config = state.config
    for key, value in pairs:
        config = config.with_env(key, value)
    return state.with_config(config, f"ENV {_text(pairs)}")


def _label(state: StageState, inst: Label) -> StageState:
    pairs = _pairs(state, inst)
    labels = {**state.config.labels, **dict(pairs)}
    return state.with_config(replace(state.config, labels=labels), f"LABEL {_text(pairs)}")


def _maintainer(state: StageState, inst: Maintainer) -> StageState:
    author = inst.maintainer  # verbatim, quotes included, as docker stores it
    return state.with_config(state.config, f"MAINTAINER {author}", author=author)


def _expose(state: StageState, inst: Expose) -> StageState:
    ports = tuple(sorted(set(state.config.exposed_ports) | set(_exposed(state, inst))))
    shown = " ".join(sorted(set(_exposed(state, inst))))
    return state.with_config(replace(state.config, exposed_ports=ports), f"EXPOSE {shown}")


def _volume(state: StageState, inst: Volume) -> StageState:
    new = [state.expand(p, inst.line) for p in inst.paths]
    if any(not p.strip() for p in new):
        raise InstructionError("VOLUME specified can not be an empty string", line=inst.line)
    volumes = tuple(sorted(set(state.config.volumes) | set(new)))
    return state.with_config(replace(state.config, volumes=volumes), f"VOLUME [{' '.join(new)}]")


def _user(state: StageState, inst: User) -> StageState:
    user = state.expand(inst.user, inst.line)
    return state.with_config(replace(state.config, user=user), f"USER {user}")


def _cmd(state: StageState, inst: Cmd) -> StageState:
    cmd = command_of(inst, state.shell)
    new = state.with_config(replace(state.config, cmd=cmd), f"CMD {_json(cmd)}")
    return replace(new, cmd_set=True)


def _entrypoint(state: StageState, inst: Entrypoint) -> StageState:
    entry = command_of(inst, state.shell)
    # A new ENTRYPOINT drops a CMD inherited from the base; one set in this stage stays.
    cmd = state.config.cmd if state.cmd_set else None
    config = replace(state.config, entrypoint=entry, cmd=cmd)
    return state.with_config(config, f"ENTRYPOINT {_json(entry)}")


def _shell(state: StageState, inst: Shell) -> StageState:
    shell = tuple(inst.shell)
    return state.with_config(replace(state.config, shell=shell), f"SHELL {_json(shell)}")


def _valid_signal(text: str) -> bool:
    """As moby's ParseSignal: a non-zero number, or a name with or without SIG, any case."""
    import signal

    if text.isdigit():
        return int(text) != 0
    name = text.upper().removeprefix("SIG")
    if name.startswith(("RTMIN", "RTMAX")):
        offset = name[5:]
        return offset == "" or (offset[:1] in "+-" and offset[1:].isdigit())
    return hasattr(signal, "SIG" + name) and not name.startswith("_")


def _stopsignal(state: StageState, inst: Stopsignal) -> StageState:
    sig = state.expand(inst.signal, inst.line)
    if not _valid_signal(sig):
        raise InstructionError(f"Invalid signal: {sig}", line=inst.line)
    return state.with_config(replace(state.config, stop_signal=sig), f"STOPSIGNAL {sig}")


def _healthcheck(state: StageState, inst: Healthcheck) -> StageState:
    test = tuple(inst.test)
    health = HealthConfig(test, inst.interval, inst.timeout, inst.start_period,
                          inst.start_interval, inst.retries)
    return state.with_config(replace(state.config, healthcheck=health),
                             f"HEALTHCHECK {_json(test)}")


def _onbuild(state: StageState, inst: Onbuild) -> StageState:
    text = onbuild_text(inst)
    triggers = (*state.config.on_build, text)
    return state.with_config(replace(state.config, on_build=triggers), f"ONBUILD {text}")


def onbuild_text(inst: Onbuild) -> str:
    """The trigger as docker stores it: the text after ``ONBUILD``."""
    return inst.expression


def _json(items: tuple[str, ...]) -> str:
    import json

    return json.dumps(list(items))


def workdir_path(state: StageState, path: str, line: int) -> str:
    """WORKDIR's new value, expanded: an absolute path as written (BuildKit keeps ``/tmp/``
    so in the config), a relative one joined onto the current one and cleaned."""
    value = state.expand(path, line)
    if not value:
        raise InstructionError("WORKDIR requires exactly one argument", line=line)
    if value.startswith("/"):
        return value
    return posixpath.normpath(posixpath.join("/", state.workdir, value))


_HANDLERS = {
    Env: _env, Label: _label, Maintainer: _maintainer, Expose: _expose, Volume: _volume,
    User: _user, Cmd: _cmd, Entrypoint: _entrypoint, Shell: _shell, Stopsignal: _stopsignal,
    Healthcheck: _healthcheck, Onbuild: _onbuild,
}
