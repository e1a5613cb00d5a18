"""What a build is asked to do: the library's and the CLI's one description of it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pybuild.cache.cachespec import CacheSpec


@dataclass(frozen=True)
class BuildOptions:
    context: str
    dockerfile: str | None = None  # default: CONTEXT/Dockerfile; "-" reads stdin text below
    dockerfile_text: str | None = None
    tags: tuple[str, ...] = ()
    build_args: Mapping[str, str | None] = field(default_factory=dict)
    target: str | None = None
    no_cache: bool = False
    no_cache_filter: tuple[str, ...] = ()  # stage names whose steps never hit the cache
    secrets: Mapping[str, str] = field(default_factory=dict)  # id -> host file
    labels: Mapping[str, str] = field(default_factory=dict)
    platform: str | None = None
    network: str = "default"  # for RUN without --network: one of NETWORKS
    source_date_epoch: int | None = None
    docker_format: bool = False  # docker schema2 manifest instead of OCI
    cache_from: tuple[CacheSpec, ...] = ()  # shared caches whose entries steps may hit
    cache_to: tuple[CacheSpec, ...] = ()  # where the steps' entries are written afterwards
    pull: bool = False  # base images from the registry even when the store has them

    def dockerfile_path(self) -> str:
        import os

        if self.dockerfile and self.dockerfile != "-":
            return self.dockerfile
        return os.path.join(self.context, "Dockerfile")


@dataclass(frozen=True)
class BuildResult:
    image_id: str
    tags: tuple[str, ...]
    manifest_digest: str


NETWORKS = ("default", "none", "host")  # RUN's network when the step names none
SUPPORTED_PLATFORMS = ("linux/amd64", "linux/x86_64", "linux/amd64/v1", "amd64")


def platform_supported(platform: str) -> bool:
    """Only linux/amd64 can be built: the sandbox runs the host's binaries."""
    return platform.lower() in SUPPORTED_PLATFORMS
