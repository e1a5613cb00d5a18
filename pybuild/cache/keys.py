"""Cache keys for build steps, and why one step's key differs from its last build.

A step's key is the sha256 of canonical JSON over its parent's key, the expanded instruction
text, the build args it uses, the digest of its COPY/ADD sources (content, mode, ownership,
never mtime) and any extra inputs the step names (for RUN: its environment, user and workdir,
and the key of each stage it mounts).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

KEY_VERSION = 1  # bump when the key recipe changes, so old records stop matching
_SHOWN_FILES = 3  # files named in a "source files changed" explanation


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def step_key(parent_key: str, instruction_text: str, used_args: Mapping[str, str],
             sources_digest: str | None, extra: Mapping[str, str] | None = None) -> str:
    """The ``sha256:`` cache key of one step; equal inputs give equal keys in any process."""
    doc = {"v": KEY_VERSION, "parent": parent_key, "instruction": instruction_text,
           "args": dict(used_args), "sources": sources_digest, "extra": dict(extra or {})}
    return "sha256:" + hashlib.sha256(_canonical(doc)).hexdigest()


def _pairs(mapping: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), str(v)) for k, v in mapping.items()))


@dataclass(frozen=True)
class KeyInputs:
    """Everything a step's key was made from, kept so a later miss can be explained.

    ``sources`` is the optional per-file manifest ((relpath, entry digest), ...) behind
    ``sources_digest``; it only feeds explanations, never the key.
    """

    parent: str
    instruction: str
    args: tuple[tuple[str, str], ...] = ()
    sources_digest: str | None = None
    extra: tuple[tuple[str, str], ...] = ()
    sources: tuple[tuple[str, str], ...] = ()

    @classmethod
    def make(cls, parent_key: str, instruction_text: str, used_args: Mapping[str, str],
             sources_digest: str | None = None, extra: Mapping[str, str] | None = None,
             sources: tuple[tuple[str, str], ...] = ()) -> KeyInputs:
        return cls(parent_key, instruction_text, _pairs(used_args), sources_digest,
                   _pairs(extra or {}), tuple((str(p), str(d)) for p, d in sources))

    def key(self) -> str:
        return step_key(self.parent, self.instruction, dict(self.args), self.sources_digest,
                        dict(self.extra))

    def without_manifest(self) -> KeyInputs:
        return KeyInputs(self.parent, self.instruction, self.args, self.sources_digest,
                         self.extra)

    def to_json(self) -> dict[str, Any]:
        return {"parent": self.parent, "instruction": self.instruction,
                "args": [list(p) for p in self.args], "sources_digest": self.sources_digest,
                "extra": [list(p) for p in self.extra],
                "sources": [list(p) for p in self.sources]}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> KeyInputs:
        """Inverse of :meth:`to_json`; KeyError/TypeError/ValueError on a malformed doc."""
        def pairs(name: str) -> tuple[tuple[str, str], ...]:
            return tuple((str(a), str(b)) for a, b in doc.get(name, ()))

        digest = doc["sources_digest"]
        return cls(str(doc["parent"]), str(doc["instruction"]), pairs("args"),
                   None if digest is None else str(digest), pairs("extra"), pairs("sources"))


def explain_miss(old: KeyInputs | None, new: KeyInputs) -> str:
    """Which input of a step changed since ``old`` was cached, in one line.

    The parent is named last: when an earlier step changed, that step already said why.
    """
    if old is None:
        return "no earlier build of this step"
    reasons = [r for r in (_instruction(old, new), _args(old, new), _sources(old, new),
                           _extra(old, new)) if r]
    if not reasons and old.parent != new.parent:
        reasons.append("parent step changed")
    return "; ".join(reasons) or "no cached result with these inputs"


def _instruction(old: KeyInputs, new: KeyInputs) -> str:
    return "instruction changed" if old.instruction != new.instruction else ""


def _changed_names(old: tuple[tuple[str, str], ...], new: tuple[tuple[str, str], ...]
                   ) -> tuple[list[str], list[str], list[str]]:
    a, b = dict(old), dict(new)
    changed = sorted(k for k in a.keys() & b.keys() if a[k] != b[k])
    return changed, sorted(b.keys() - a.keys()), sorted(a.keys() - b.keys())


def _args(old: KeyInputs, new: KeyInputs) -> str:
    changed, added, removed = _changed_names(old.args, new.args)
    names = sorted(changed + added + removed)
    if not names:
        return ""
    return f"build arg{'s' if len(names) > 1 else ''} {', '.join(names)} changed"


def _name_files(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN_FILES])
    more = len(names) - _SHOWN_FILES
    return f"{shown} and {more} more" if more > 0 else shown


def _sources(old: KeyInputs, new: KeyInputs) -> str:
    if old.sources_digest == new.sources_digest:
        return ""
    if not old.sources or not new.sources:
        return "source files changed"
    changed, added, removed = _changed_names(old.sources, new.sources)
    parts = []
    for label, names in (("changed", changed), ("added", added), ("removed", removed)):
        if names:
            parts.append(f"source files {label}: {_name_files(names)}")
    return "; ".join(parts) or "source files changed"


def _extra(old: KeyInputs, new: KeyInputs) -> str:
    changed, added, removed = _changed_names(old.extra, new.extra)
    names = sorted(changed + added + removed)
    return f"{', '.join(names)} changed" if names else ""
