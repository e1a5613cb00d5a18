"""``--cache-to`` / ``--cache-from`` values in docker buildx's syntax.

``type=local,dest=DIR`` / ``type=local,src=DIR`` name an OCI layout directory;
``type=registry,ref=HOST/REPO:TAG`` a tag in a registry; a value without ``=`` is a registry
ref, as buildx reads ``--cache-from user/app:cache``. ``mode=min`` (the default) exports only
the steps of the final image, ``mode=max`` every step the build passed. Attributes BuildKit
knows that change nothing here (``oci-mediatypes``, ``image-manifest``...) are accepted.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from pybuild.errors import UsageError

TYPES = ("local", "registry")
MODES = ("min", "max")
COMPRESSIONS = {"gzip": "gzip", "zstd": "zstd", "uncompressed": "none"}
# BuildKit attributes whose effect pybuild has anyway, or which do not apply to it
_IGNORED = frozenset({"oci-mediatypes", "image-manifest", "force-compression",
                      "compression-level", "store", "digest"})
_KNOWN = {
    "to": {"local": {"dest", "mode", "tag", "compression", "ignore-error"},
           "registry": {"ref", "mode", "compression", "ignore-error"}},
    "from": {"local": {"src", "tag"}, "registry": {"ref"}},
}


@dataclass(frozen=True)
class CacheSpec:
    """One cache location: ``path`` for type local (its dest or src), ``ref`` for registry."""

    type: str
    path: str = ""
    ref: str = ""
    tag: str = "latest"  # local: the name the cache has in the layout's index.json
    mode: str = "min"
    compression: str = "gzip"  # of exported layers: gzip, zstd or none
    ignore_error: bool = False  # an export that fails only warns


def _fields(text: str, flag: str) -> dict[str, str]:
    if "=" not in text:
        return {"type": "registry", "ref": text.strip()}
    out: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or not key:
            raise UsageError(f"invalid {flag} {text!r}: {part!r} is not KEY=VALUE")
        if key in out:
            raise UsageError(f"invalid {flag} {text!r}: {key}= given twice")
        out[key] = value.strip()
    return out


def parse(text: str, direction: str) -> CacheSpec:
    """One ``--cache-to`` (``direction`` "to") or ``--cache-from`` ("from") value; UsageError
    naming the value and what is wrong with it."""
    flag = f"--cache-{direction}"
    fields = _fields(text, flag)
    kind = fields.pop("type", "")
    if not kind:
        raise UsageError(f"invalid {flag} {text!r}: type= is required (local or registry)")
    if kind not in TYPES:
        raise UsageError(f"invalid {flag} {text!r}: unsupported cache type {kind!r} "
                         f"(pybuild has {', '.join(TYPES)})")
    known = _KNOWN[direction][kind]
    unknown = sorted(set(fields) - known - _IGNORED)
    if unknown:
        raise UsageError(f"invalid {flag} {text!r}: unknown attribute {unknown[0]}= for type "
                         f"{kind} (known: {', '.join(sorted(known))})")
    where = {"local": "dest" if direction == "to" else "src", "registry": "ref"}[kind]
    if not fields.get(where):
        raise UsageError(f"invalid {flag} {text!r}: {where}= is required for type {kind}")
    mode = fields.get("mode", "min")
    if mode not in MODES:
        raise UsageError(f"invalid {flag} {text!r}: mode must be min or max, not {mode!r}")
    compression = fields.get("compression", "gzip")
    if compression not in COMPRESSIONS:
        raise UsageError(f"invalid {flag} {text!r}: compression must be "
                         f"{', '.join(COMPRESSIONS)}, not {compression!r}")
    ignore = fields.get("ignore-error", "false").lower()
    if ignore not in ("true", "false"):
        raise UsageError(f"invalid {flag} {text!r}: ignore-error must be true or false")
    if kind == "registry":
        _check_ref(fields["ref"], flag, text)
    path = os.path.abspath(fields[where]) if kind == "local" else ""
    return CacheSpec(kind, path=path,
                     ref=fields.get("ref", ""), tag=fields.get("tag") or "latest", mode=mode,
                     compression=COMPRESSIONS[compression], ignore_error=ignore == "true")


def _check_ref(ref: str, flag: str, text: str) -> None:
    from pybuild.errors import ReferenceError_
    from pybuild.image.reference import parse_normalized

    try:
        parse_normalized(ref)
    except ReferenceError_ as err:
        raise UsageError(f"invalid {flag} {text!r}: {err}") from None


def parse_all(values: str | Sequence[str] | None, direction: str) -> tuple[CacheSpec, ...]:
    """Every value of a repeatable option (a lone string is one value)."""
    if not values:
        return ()
    if isinstance(values, str):
        values = (values,)
    return tuple(parse(v, direction) for v in values)
