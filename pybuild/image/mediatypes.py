"""Media types pybuild reads and writes (OCI image-spec and docker image manifest v2.2)."""

from __future__ import annotations

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

MANIFESTS = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEXES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})

# the docker schema2 equivalent of each OCI media type (docker has no zstd layer type of its own;
# docker itself writes the OCI zstd type into schema2 manifests, so it is kept)
_TO_DOCKER = {
    OCI_MANIFEST: DOCKER_MANIFEST,
    OCI_INDEX: DOCKER_MANIFEST_LIST,
    OCI_CONFIG: DOCKER_CONFIG,
    OCI_LAYER: DOCKER_LAYER,
    OCI_LAYER_GZIP: DOCKER_LAYER_GZIP,
}
_TO_OCI = {docker: oci for oci, docker in _TO_DOCKER.items()}


def to_docker(media_type: str) -> str:
    """The docker schema2 name for an OCI media type (unchanged if there is none)."""
    return _TO_DOCKER.get(media_type, media_type)


def to_oci(media_type: str) -> str:
    """The OCI name for a docker schema2 media type (unchanged if there is none)."""
    return _TO_OCI.get(media_type, media_type)


def is_layer(media_type: str) -> bool:
    oci = to_oci(media_type)
    return oci.startswith("application/vnd.oci.image.layer.") or "rootfs.diff.tar" in oci
