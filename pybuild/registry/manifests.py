"""The remote side of an image: which manifests to ask for, what came back, which one to use.

A tag may name an image manifest (OCI or docker schema2) or an index / manifest list, whose
entry for the wanted platform is fetched next. Docker schema 1 is refused in one line.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

from pybuild.errors import ImageError, RegistryError
from pybuild.image import mediatypes as mt
from pybuild.image.manifest import Index, Manifest, Platform

SCHEMA1 = frozenset({"application/vnd.docker.distribution.manifest.v1+json",
                     "application/vnd.docker.distribution.manifest.v1+prettyjws"})
ACCEPT = ", ".join((mt.OCI_INDEX, mt.DOCKER_MANIFEST_LIST, mt.OCI_MANIFEST, mt.DOCKER_MANIFEST))


@dataclass(frozen=True)
class Fetched:
    """A manifest or index as the registry sent it; ``digest`` is the sha256 of ``raw``."""

    raw: bytes
    media_type: str
    digest: str

    @property
    def is_index(self) -> bool:
        return self.media_type in mt.INDEXES

    def manifest(self, where: str) -> Manifest:
        try:
            return Manifest.from_bytes(self.raw)
        except ImageError as err:
            raise RegistryError(f"{where}: {err}") from None

    def index(self, where: str) -> Index:
        try:
            return Index.from_bytes(self.raw)
        except ImageError as err:
            raise RegistryError(f"{where}: {err}") from None


def digest_of(raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def classify(raw: bytes, content_type: str, where: str) -> Fetched:
    """What ``raw`` is: the ``mediaType`` it carries, else the Content-Type it came with."""
    try:
        doc: Any = json.loads(raw)
    except ValueError:
        raise RegistryError(f"{where}: the manifest is not JSON") from None
    if not isinstance(doc, dict):
        raise RegistryError(f"{where}: the manifest is not a JSON object")
    declared = content_type.split(";", 1)[0].strip()
    media_type = doc.get("mediaType") or declared
    if doc.get("schemaVersion") == 1 or media_type in SCHEMA1:
        raise RegistryError(f"{where}: Docker Image Format v1 and Docker Image manifest "
                            "version 2, schema 1 are not supported; push the image again "
                            "with a newer client")
    if media_type not in mt.MANIFESTS | mt.INDEXES:
        if "manifests" in doc:
            media_type = mt.OCI_INDEX
        elif "config" in doc:
            media_type = mt.OCI_MANIFEST
        else:
            raise RegistryError(f"{where}: unsupported manifest type {media_type!r}")
    return Fetched(raw, media_type, digest_of(raw))


def host_platform() -> Platform:
    machine = os.uname().machine
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)
    return Platform(arch, "linux")


def choose(index: Index, platform: str | None, where: str) -> str:
    """The digest of the index's manifest for ``platform`` (default: this host's)."""
    wanted = Platform.parse(platform) if platform else host_platform()
    try:
        return index.select(wanted).digest
    except ImageError:
        offered = ", ".join(sorted({str(m.platform) for m in index.manifests if m.platform}))
        raise RegistryError(f"{where}: no manifest for platform {wanted} "
                            f"(the index has {offered or 'none'})") from None
