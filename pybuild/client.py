"""The library API: ``pybuild.Client(root=...)`` with ``.images``, ``.containers``,
``.volumes``, ``.networks`` and ``.system``.

Everything returns typed frozen objects; nothing prints. The CLI is a thin layer over this.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TypeAlias, TypedDict, Unpack

from pybuild.containers.api import ContainerCollection
from pybuild.errors import PybuildError
from pybuild.image.config import ImageConfig
from pybuild.image.reference import parse as parse_reference
from pybuild.images.inspect import HistoryItem, history_items, inspect_data
from pybuild.store import DEFAULT_ROOT, Store
from pybuild.store.records import ImageRecord

if TYPE_CHECKING:  # the modules behind these load only when their methods run
    from pybuild.archive.layout import SavedImage
    from pybuild.archive.load import LoadedImage
    from pybuild.build.options import BuildOptions
    from pybuild.image.manifest import Platform
    from pybuild.network.api import NetworkCollection
    from pybuild.progress import Event, EventHandler
    from pybuild.registry.push import Pushed
    from pybuild.store.check import Problem
    from pybuild.store.gc import GcResult, UsageRow
    from pybuild.store.images import Removal
    from pybuild.store.refs import RefTable
    from pybuild.volumes.api import VolumeCollection

# a document as json.loads gives it, e.g. one element of ``docker image inspect``
JsonValue: TypeAlias = "None | bool | int | float | str | list[JsonValue] | dict[str, JsonValue]"

__all__ = ["BuildKeywords", "Client", "HistoryItem", "Image", "ImageCollection", "SystemApi",
           "build_options"]


@dataclass(frozen=True)
class Image:
    id: str  # "sha256:<hex>", the config digest
    tags: tuple[str, ...]  # as docker shows them: "busybox:latest"
    digests: tuple[str, ...]  # repo digests: "busybox@sha256:..."
    config: ImageConfig
    created: str
    size: int  # bytes, uncompressed layers
    layers: tuple[str, ...]  # diff ids, bottom to top
    manifest_digest: str
    parent: str = ""

    @property
    def short_id(self) -> str:
        return self.id[7:19]

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.config.config.labels)


class ImageCollection:
    """``client.images``: import, get, list, tag, remove, history, inspect, prune, unpack.

    (``save``/``load`` are added by pybuild.archive.)"""

    def __init__(self, client: Client):
        self._client = client

    @property
    def _store(self) -> Store:
        return self._client.store

    def import_(self, source: str | Path | BinaryIO, reference: str | None = None, *,
                changes: list[str] | tuple[str, ...] = (), message: str = "",
                platform: Platform | None = None) -> Image:
        """``platform`` is linux/amd64 unless given."""
        from pybuild.image.manifest import DEFAULT_PLATFORM
        from pybuild.images.importer import import_image

        record = import_image(self._store, source, reference, changes=changes, message=message,
                              platform=platform or DEFAULT_PLATFORM)
        return self._image(record)

    def get(self, name_or_id: str) -> Image:
        from pybuild.store.images import resolve

        return self._image(resolve(self._store, name_or_id))

    def list(self, *, all: bool = False, name: str | None = None,  # noqa: A002
             filters: dict[str, list[str]] | None = None) -> list[Image]:
        """Newest first. Without ``all``, untagged images that are parents of others are hidden;
        ``name`` keeps images with a tag in that repository; ``filters`` as ``images --filter``
        (dangling, label, reference, before, since)."""
        records = self._store.records.list()
        parents = {r.parent for r in records if r.parent}
        table = self._store.refs.load()
        repo = parse_reference(name).name if name else None
        images = []
        for record in records:
            tags, _ = table.names_for(record.id)
            if not all and not tags and record.id in parents:
                continue
            if repo and not any(parse_reference(t).name == repo for t in tags):
                continue
            try:
                images.append(self._image(record, table))
            except PybuildError:  # a broken config: ``system check`` reports it
                continue
        if filters:
            from pybuild.images.filters import apply_filters

            images = apply_filters(images, filters, lambda n: self.get(n).created)
        return sorted(images, key=lambda i: (i.created, i.id), reverse=True)

    def tag(self, image: str, reference: str) -> str:
        from pybuild.store.images import tag

        return tag(self._store, image, reference).familiar()

    def remove(self, image: str, *, force: bool = False) -> list[Removal]:
        """Docker's rmi: a list of Removal("Untagged"|"Deleted", subject)."""
        from pybuild.store.images import remove

        return remove(self._store, image, force=force)

    def history(self, image: str) -> list[HistoryItem]:
        img = self.get(image)
        record = self._store.records.get(img.id)
        return history_items(record, img.config, img.tags)

    def inspect(self, image: str) -> dict[str, JsonValue]:
        """One element of ``docker image inspect``'s output."""
        img = self.get(image)
        return inspect_data(self._store.records.get(img.id), img.config, list(img.tags),
                            list(img.digests))

    def prune(self, *, all: bool = False) -> GcResult:  # noqa: A002
        """Remove dangling images (or all unused with ``all``); what went is in the result."""
        from pybuild.store.images import prune

        return prune(self._store, all_images=all)

    def unpack(self, image: str, dest: str | Path) -> Path:
        """The image's flattened rootfs into ``dest`` (which must be empty or absent)."""
        from pybuild.errors import UsageError

        dest = Path(dest)
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise UsageError(f"{dest} is not an empty directory")
        img = self.get(image)
        self._store.layers.unpack_to(img.layers, dest)
        return dest

    def save(self, images: list[str] | tuple[str, ...], out: BinaryIO | str | Path | None = None,
             *, compression: str = "gzip", format: str = "tar",  # noqa: A002
             dest_dir: str | Path | None = None) -> tuple[SavedImage, ...]:
        """Write images to one docker-archive + OCI layout tar, to a stream or a file path
        (replaced only once the archive is whole), or to an OCI layout directory."""
        from pybuild.archive import save

        return save(self._store, images, out, compression=compression, format=format,
                    dest_dir=dest_dir)

    def load(self, source: BinaryIO | str | Path) -> list[LoadedImage]:
        """Load every image of a docker-archive, OCI archive or layout dir."""
        from pybuild.archive import load

        return load(self._store, source)

    def build(self, path: str | Path, *, on_event: EventHandler | None = None,
              **options: Unpack[BuildKeywords]) -> Image:
        """Build ``path`` (options as :class:`BuildKeywords`); events go to ``on_event`` as
        they happen. A failed step raises :class:`~pybuild.errors.BuildError`."""
        from pybuild.build import build

        result = build(self._store, build_options(path, **options), on_event)
        output = options.get("output")
        if output:  # named by the first tag, as docker's archive is, so a load gets the name
            self.save([result.tags[0] if result.tags else result.image_id], output,
                      compression=options.get("output_compression", "gzip"))
        return self.get(result.image_id)

    def build_iter(self, path: str | Path, **options: Unpack[BuildKeywords]) -> Iterator[Event]:
        """Yield the build's events as they happen (the last is BuildDone); a failed build
        raises its error from the iterator."""
        from pybuild.build import build_iter

        yield from build_iter(self._store, build_options(path, **options))

    def pull(self, repository: str, tag: str | None = None, *, platform: str | None = None,
             all_tags: bool = False, on_event: EventHandler | None = None) -> Image | list[Image]:
        """docker-py's pull: ``repository`` may carry a tag or ``@digest``; one Image, or every
        tag's with ``all_tags``."""
        from pybuild.registry.pull import pull

        records = pull(self._store, repository, tag, platform=platform, all_tags=all_tags,
                       on_event=on_event)
        images = [self._image(r) for r in records]
        return images if all_tags else images[0]

    def push(self, repository: str, tag: str | None = None, *, all_tags: bool = False,
             on_event: EventHandler | None = None) -> list[Pushed]:
        """docker-py's push; what was pushed, with each manifest's digest."""
        from pybuild.registry.push import push

        return push(self._store, repository, tag, all_tags=all_tags, on_event=on_event)

    def _image(self, record: ImageRecord, table: RefTable | None = None) -> Image:
        table = table or self._store.refs.load()
        tags, digests = table.names_for(record.id)
        config = ImageConfig.from_bytes(self._store.blobs.read_bytes(record.id))
        return Image(record.id, tuple(parse_reference(t).familiar() for t in tags),
                     tuple(parse_reference(d).familiar() for d in digests), config,
                     config.created or record.created, record.size, record.diff_ids,
                     record.manifest_digest, record.parent)


class SystemApi:
    """``client.system``: disk usage, garbage collection, consistency check."""

    def __init__(self, client: Client):
        self._client = client

    def df(self) -> list[UsageRow]:
        """``system df``'s rows: images, unpacked layers, build cache, blobs (and containers),
        each with its size and what a prune would reclaim."""
        from pybuild.store.gc import disk_usage

        return disk_usage(self._client.store)

    def prune(self) -> GcResult:
        """Collect blobs and unpacked layers no image references."""
        from pybuild.store.gc import collect

        return collect(self._client.store)

    def check(self, *, repair: bool = False) -> list[Problem]:
        """Problems found (empty when the store is sound); ``repair`` drops broken items."""
        from pybuild.store.check import check

        return check(self._client.store, repair=repair)


class Client:
    def __init__(self, root: str | Path = DEFAULT_ROOT, *,
                 on_wait: Callable[[], None] | None = None, lock_timeout: float | None = None):
        self.store = Store(root, on_wait=on_wait, lock_timeout=lock_timeout)
        self.images = ImageCollection(self)
        self.system = SystemApi(self)
        self.containers = ContainerCollection(self)

    def login(self, username: str, password: str, registry: str | None = None) -> str:
        """docker-py's login: checks the credentials against ``registry`` (default docker.io)
        and stores them in config.json; the registry's status line."""
        from pybuild.registry.login import login

        return login(username, password, registry)

    def logout(self, registry: str | None = None) -> str:
        from pybuild.registry.login import logout

        return logout(registry)

    # loaded on first use: what an image command (or a run without volumes) does not need
    @functools.cached_property
    def volumes(self) -> VolumeCollection:
        """``client.volumes`` (pybuild.volumes.api)."""
        from pybuild.volumes.api import VolumeCollection

        return VolumeCollection(self)

    @functools.cached_property
    def networks(self) -> NetworkCollection:
        """``client.networks`` (pybuild.network.api)."""
        from pybuild.network.api import NetworkCollection

        return NetworkCollection(self)


class BuildKeywords(TypedDict, total=False):
    """The options of ``images.build``: docker-py's names where docker-py has the option, and
    every option of ``pybuild build`` (``output``: its --output archive)."""

    dockerfile: str | None  # default PATH/Dockerfile; "-" reads it from stdin
    tag: str | Sequence[str] | None
    buildargs: Mapping[str, str | None] | None  # a None value leaves the ARG's default
    target: str | None
    nocache: bool
    no_cache_filter: Sequence[str]  # stages whose steps never come from the cache
    secrets: Mapping[str, str] | None  # id -> host file, for RUN --mount=type=secret
    labels: Mapping[str, str] | None
    platform: str | None  # only linux/amd64 can be built
    network_mode: str | None  # RUN's network: "default", "none" or "host"
    source_date_epoch: int | None  # default: $SOURCE_DATE_EPOCH
    output: str | Path | None  # also write the image to this archive (docker-archive + OCI)
    output_compression: str  # of that archive's layers: gzip (default), zstd or none
    cache_from: str | Sequence[str] | None  # type=local,src=DIR | type=registry,ref=R | R
    cache_to: str | Sequence[str] | None  # type=local,dest=DIR | type=registry,ref=R [,mode=]
    pull: bool  # ask the registry for every base image, even one the store has


def build_options(path: str | Path, **options: Unpack[BuildKeywords]) -> BuildOptions:
    """What ``images.build(path, **options)`` builds: SOURCE_DATE_EPOCH from the environment
    when not given, stage names in ``no_cache_filter`` case-folded as Dockerfiles fold them."""
    from pybuild.build import BuildOptions, with_defaults
    from pybuild.cache.cachespec import parse_all

    unknown = sorted(set(options) - set(BuildKeywords.__annotations__))
    if unknown:  # **options takes any name at run time; a typo must not pass unseen
        raise TypeError(f"unexpected build option(s): {', '.join(unknown)}")
    tag = options.get("tag")
    return with_defaults(BuildOptions(
        context=str(path), dockerfile=options.get("dockerfile"),
        tags=(tag,) if isinstance(tag, str) else tuple(tag or ()),
        build_args=dict(options.get("buildargs") or {}), target=options.get("target"),
        no_cache=options.get("nocache", False),
        no_cache_filter=tuple(s.lower() for s in options.get("no_cache_filter", ())),
        secrets=dict(options.get("secrets") or {}), labels=dict(options.get("labels") or {}),
        platform=options.get("platform"), network=options.get("network_mode") or "default",
        source_date_epoch=options.get("source_date_epoch"), pull=options.get("pull", False),
        cache_from=parse_all(options.get("cache_from"), "from"),
        cache_to=parse_all(options.get("cache_to"), "to")))
