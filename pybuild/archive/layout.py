"""File names and documents of the two archive formats pybuild writes as one.

docker 25 and later write a tar that is an OCI image layout (``oci-layout``, ``index.json``,
``blobs/sha256/*``) and a docker-archive (``manifest.json``, ``repositories``) at once, the
docker-archive's Config and Layers pointing into ``blobs/``. pybuild writes the same shape.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pybuild.image import mediatypes as mt
from pybuild.image.canonical import canonical_json
from pybuild.image.reference import parse as parse_reference

OCI_LAYOUT_FILE = "oci-layout"
INDEX_FILE = "index.json"
MANIFEST_FILE = "manifest.json"
REPOSITORIES_FILE = "repositories"
OCI_LAYOUT = canonical_json({"imageLayoutVersion": "1.0.0"})

# index.json annotations: containerd (and docker 25) read the full name, OCI tools the tag
ANNOTATION_IMAGE_NAME = "io.containerd.image.name"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"

_BLOB_NAME = re.compile(r"blobs/([a-z0-9]+)/([a-f0-9]+)")


def blob_name(digest: str) -> str:
    algorithm, _, hexpart = digest.partition(":")
    return f"blobs/{algorithm}/{hexpart}"


def digest_of_name(name: str) -> str | None:
    """``sha256:<hex>`` for ``blobs/sha256/<hex>``, else None."""
    match = _BLOB_NAME.fullmatch(name)
    return f"{match.group(1)}:{match.group(2)}" if match else None


@dataclass(frozen=True)
class SavedImage:
    """One image as it goes into an archive."""

    image_id: str
    tags: tuple[str, ...]               # normalised: docker.io/library/busybox:latest
    manifest_digest: str
    manifest_size: int
    layer_digests: tuple[str, ...]      # compressed blobs, bottom to top
    platform: dict[str, str]


def index_json(images: Sequence[SavedImage], media_type: str) -> bytes:
    """One descriptor per tag (one without annotations for an untagged image)."""
    manifests: list[dict[str, Any]] = []
    for image in images:
        desc = {"mediaType": media_type, "digest": image.manifest_digest,
                "size": image.manifest_size, "platform": image.platform}
        for tag in image.tags:
            ref = parse_reference(tag)
            manifests.append({**desc, "annotations": {ANNOTATION_IMAGE_NAME: str(ref),
                                                      ANNOTATION_REF_NAME: ref.tag or ""}})
        if not image.tags:
            manifests.append(desc)
    return canonical_json({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": manifests})


def manifest_json(images: Sequence[SavedImage]) -> bytes:
    """docker-archive's manifest.json; RepoTags in docker's short form, null when untagged."""
    entries = [{"Config": blob_name(image.image_id),
                "RepoTags": [parse_reference(t).familiar() for t in image.tags] or None,
                "Layers": [blob_name(d) for d in image.layer_digests]} for image in images]
    return canonical_json(entries)


def repositories_json(images: Sequence[SavedImage]) -> bytes:
    """The legacy ``repositories`` file: repo -> tag -> top layer (as docker 25 writes)."""
    repos: dict[str, dict[str, str]] = {}
    for image in images:
        if not image.layer_digests:
            continue
        for tag in image.tags:
            ref = parse_reference(tag)
            repos.setdefault(ref.familiar_name, {})[ref.tag or "latest"] = (
                image.layer_digests[-1].partition(":")[2])
    return canonical_json(repos)
