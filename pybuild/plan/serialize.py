"""The JSON document ``pybuild parse --format json`` prints (what golden cases compare).

    {
      "file": "Dockerfile", "escape": "\\", "directives": {"check": "..."},
      "global_args": {"NAME": "value" | null, ...},     # declared before the first FROM
      "meta": [<instruction>, ...],                      # the ARG lines before the first FROM
      "stages": [{
          "index": 0, "name": "build" | null, "base": "alpine:3.19", "base_is_stage": false,
          "base_stage": null, "platform": null, "deps": [1], "images": ["nginx"],
          "from": <instruction>,
          "instructions": [<instruction> + {"scope": {"args": {...}, "env": {...}}}, ...],
          "final": {"args": {...}, "env": {...}}
      }, ...],
      "target": 1, "needed": [0, 1], "unused_build_args": ["X"]
    }

``<instruction>`` is ``pybuild.instructions.serialize.to_data``. ``scope`` is what the
instruction sees before it runs (the base image's environment, BuildKit's default PATH unless
``image_env`` says more, is not shown); it is omitted when both parts are empty. Automatic platform
ARGs are left out of ``global_args`` unless the Dockerfile declares them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pybuild.dockerfile.syntax import Document
from pybuild.instructions import Arg, From, Instruction
from pybuild.instructions.serialize import to_data
from pybuild.plan.args import PLATFORM_ARGS
from pybuild.plan.stages import BuildStages, Scope, Stage


def _scope(scope: Scope) -> dict[str, Any]:
    return {"args": dict(scope.args), "env": dict(scope.env)}


def _stage(stage: Stage) -> dict[str, Any]:
    body = []
    for inst, scope in zip(stage.instructions, stage.scopes):
        data = to_data(inst)
        if scope.args or scope.env:
            data["scope"] = _scope(scope)
        body.append(data)
    return {
        "index": stage.index, "name": stage.name, "base": stage.base,
        "base_is_stage": stage.base_is_stage, "base_stage": stage.base_stage,
        "platform": stage.platform, "deps": list(stage.deps), "images": list(stage.images),
        "from": to_data(stage.from_), "instructions": body, "final": _scope(stage.final),
    }


def build_data(doc: Document, instructions: Sequence[Instruction],
               stages: BuildStages) -> dict[str, Any]:
    meta: list[Instruction] = []
    for inst in instructions:
        if isinstance(inst, From):
            break
        meta.append(inst)
    declared = {a.name for inst in meta if isinstance(inst, Arg) for a in inst.args}
    global_args = {k: v for k, v in stages.global_args.items()
                   if k in declared or k not in PLATFORM_ARGS}
    return {
        "file": doc.file, "escape": doc.escape, "directives": dict(doc.directives),
        "global_args": global_args, "meta": [to_data(i) for i in meta],
        "stages": [_stage(s) for s in stages.stages], "target": stages.target_index,
        "needed": list(stages.needed), "unused_build_args": list(stages.unused_build_args),
    }
