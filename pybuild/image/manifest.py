"""Descriptors, image manifests and indexes (OCI manifest.md / image-index.md, docker schema2)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pybuild.errors import ImageError
from pybuild.image import mediatypes as mt
from pybuild.image.canonical import canonical_json


@dataclass(frozen=True)
class Platform:
    architecture: str = "amd64"
    os: str = "linux"
    variant: str = ""

    def to_json(self) -> dict[str, str]:
        out = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        return out

    def __str__(self) -> str:
        return f"{self.os}/{self.architecture}" + (f"/{self.variant}" if self.variant else "")

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ImageError(f"invalid platform {text!r}: want os/arch[/variant]")
        return cls(parts[1], parts[0], parts[2] if len(parts) == 3 else "")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Platform:
        return cls(data.get("architecture", ""), data.get("os", ""), data.get("variant", ""))


DEFAULT_PLATFORM = Platform()


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] = field(default_factory=dict)
    platform: Platform | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest,
                               "size": self.size}
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Descriptor:
        try:
            platform = data.get("platform")
            return cls(data.get("mediaType", ""), data["digest"], int(data["size"]),
                       dict(data.get("annotations") or {}),
                       Platform.from_json(platform) if platform else None)
        except (KeyError, TypeError, ValueError) as err:
            raise ImageError(f"malformed descriptor: {err}") from err


def _document(media_type: str, annotations: dict[str, str], **fields: Any) -> dict[str, Any]:
    """A manifest or index as JSON: annotations only when there are some, as docker writes."""
    out: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type, **fields}
    if annotations:
        out["annotations"] = dict(annotations)
    return out


@dataclass(frozen=True)
class Manifest:
    config: Descriptor
    layers: tuple[Descriptor, ...]
    media_type: str = mt.OCI_MANIFEST
    annotations: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return _document(self.media_type, self.annotations, config=self.config.to_json(),
                         layers=[layer.to_json() for layer in self.layers])

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_json())

    @classmethod
    def from_bytes(cls, raw: bytes) -> Manifest:
        try:
            data = json.loads(raw)
            config = Descriptor.from_json(data["config"])
            layers = tuple(Descriptor.from_json(d) for d in data.get("layers") or ())
        except (ValueError, KeyError, TypeError) as err:
            raise ImageError(f"malformed image manifest: {err}") from err
        media_type = data.get("mediaType") or (
            mt.DOCKER_MANIFEST if config.media_type == mt.DOCKER_CONFIG else mt.OCI_MANIFEST)
        if media_type not in mt.MANIFESTS:
            raise ImageError(f"not an image manifest: {media_type}")
        return cls(config, layers, media_type, dict(data.get("annotations") or {}))


def build_manifest(config: Descriptor, layers: list[Descriptor] | tuple[Descriptor, ...], *,
                   docker: bool = False, annotations: dict[str, str] | None = None) -> Manifest:
    """A manifest in OCI media types, or docker schema2 ones when ``docker`` is set."""
    convert = mt.to_docker if docker else mt.to_oci
    config = Descriptor(convert(config.media_type), config.digest, config.size)
    layers = tuple(Descriptor(convert(d.media_type), d.digest, d.size, d.annotations)
                   for d in layers)
    kind = mt.DOCKER_MANIFEST if docker else mt.OCI_MANIFEST
    return Manifest(config, layers, kind, dict(annotations or {}))


@dataclass(frozen=True)
class Index:
    manifests: tuple[Descriptor, ...]
    media_type: str = mt.OCI_INDEX
    annotations: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return _document(self.media_type, self.annotations,
                         manifests=[m.to_json() for m in self.manifests])

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_json())

    @classmethod
    def from_bytes(cls, raw: bytes) -> Index:
        try:
            data = json.loads(raw)
            manifests = tuple(Descriptor.from_json(d) for d in data.get("manifests") or ())
        except (ValueError, TypeError, AttributeError) as err:
            raise ImageError(f"malformed image index: {err}") from err
        return cls(manifests, data.get("mediaType") or mt.OCI_INDEX,
                   dict(data.get("annotations") or {}))

    def select(self, platform: Platform = DEFAULT_PLATFORM) -> Descriptor:
        """The manifest for ``platform`` (variant ignored when the platform names none)."""
        for desc in self.manifests:
            p = desc.platform
            if p and p.os == platform.os and p.architecture == platform.architecture and (
                    not platform.variant or p.variant == platform.variant):
                return desc
        raise ImageError(f"no manifest for platform {platform} in the index")
