"""``pybuild pull``: a remote image into the store.

The path an archive load takes, with the registry as the source: the manifest (through an
index for the wanted platform), the config, then the layers, fetched in parallel and each
checked for size, blob digest and diff ID before anything is committed; then the layers, the
image record and last the names (tag and RepoDigest), each step atomic. A layer the store
already has is not fetched. For docker.io, daemon.json's registry-mirrors are asked first.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from pybuild.errors import DigestMismatch, RegistryError, UsageError
from pybuild.image import mediatypes as mt
from pybuild.image.manifest import Manifest, Platform
from pybuild.image.reference import Reference, parse
from pybuild.registry import distribution
from pybuild.registry.download import Layer, download
from pybuild.registry.events import BlobProgress, RegistryStatus
from pybuild.registry.manifests import Fetched, choose, digest_of
from pybuild.registry.remote import Repository, mirrors_for, open_repository
from pybuild.registry.transport import DEFAULT_BACKOFF
from pybuild.store import LayerRef, Store
from pybuild.store.blobs import BlobWriter, is_digest
from pybuild.store.images import set_repo_digest
from pybuild.store.records import ImageRecord

PARALLEL_DOWNLOADS = 3  # docker's max-concurrent-downloads default
MAX_CONFIG = 16 << 20


def pull(store: Store, repository: str, tag: str | None = None, *, platform: str | None = None,
         all_tags: bool = False, on_event: Callable[[Any], None] | None = None,
         backoff: tuple[float, ...] = DEFAULT_BACKOFF) -> list[ImageRecord]:
    """Pull ``repository`` (``name[:tag|@digest]``; ``tag`` may be given apart, as docker-py
    takes it); with ``all_tags`` every tag of the repository. The records pulled."""
    ref = _reference(repository, tag, all_tags)
    emit = _serialised(on_event)
    if not all_tags:
        return [_pull_one(store, ref.normalized(), platform, emit, backoff)]
    repo = open_repository(ref, backoff)
    try:
        tags = sorted(repo.tags())
    finally:
        repo.close()
    if not tags:
        raise RegistryError(f"{repo.shown}: the repository has no tags")
    return [_pull_one(store, ref.with_tag(t), platform, emit, backoff) for t in tags]


def _reference(repository: str, tag: str | None, all_tags: bool) -> Reference:
    ref = parse(repository)
    if tag:
        if ref.tag or ref.digest:
            raise UsageError(f"{repository} already names a tag or digest; tag {tag!r} too")
        ref = ref.with_digest(tag) if tag.startswith("sha256:") else ref.with_tag(tag)
    if all_tags and (ref.tag or ref.digest):
        raise UsageError("tag can't be used with --all-tags/-a")
    return ref


def _serialised(on_event: Callable[[Any], None] | None) -> Callable[[Any], None]:
    """Events come from the download threads: hand them over one at a time."""
    if on_event is None:
        return lambda _event: None
    lock = threading.Lock()

    def emit(event: Any) -> None:
        with lock:
            on_event(event)
    return emit


def _pull_one(store: Store, ref: Reference, platform: str | None, emit: Callable[[Any], None],
              backoff: tuple[float, ...]) -> ImageRecord:
    wanted = ref.digest or ref.tag or "latest"
    repo, top = _first_answer(ref, wanted, backoff)
    try:
        emit(RegistryStatus(f"{wanted}: Pulling from {ref.path}"))
        fetched = top
        if top.is_index:
            fetched = repo.manifest(choose(top.index(_where(repo, wanted)), platform,
                                           _where(repo, wanted)))
            if fetched.is_index:
                raise RegistryError(f"{_where(repo, wanted)}: an index inside an index")
        manifest = fetched.manifest(_where(repo, wanted))
        config = _config(store, repo, manifest, platform if not top.is_index else None)
        layers = _layers(manifest, config, _where(repo, wanted))
        record, fresh = _store(store, repo, manifest, config, layers, emit, backoff)
    finally:
        repo.close()
    _name(store, ref, top.digest, record)
    host = repo.transport.host
    for layer in layers:
        distribution.remember(store, layer.diff_id, distribution.RemoteBlob(
            layer.digest, layer.size, layer.media_type, (f"{host}/{ref.path}",)))
    emit(RegistryStatus(f"Digest: {top.digest}"))
    state = "Downloaded newer image" if fresh else "Image is up to date"
    emit(RegistryStatus(f"Status: {state} for {ref.familiar()}"))
    return record


def _where(repo: Repository, wanted: str) -> str:
    return f"{repo.shown}{'@' if wanted.startswith('sha256:') else ':'}{wanted}"


def _first_answer(ref: Reference, wanted: str,
                  backoff: tuple[float, ...]) -> tuple[Repository, Fetched]:
    """The first of the mirrors, then the registry itself, that has the manifest."""
    for mirror in mirrors_for(ref, ()):  # a mirror that is down is passed over at once
        try:
            return mirror, mirror.manifest(wanted)
        except RegistryError:
            mirror.close()  # a mirror that fails or lacks the image: the next one
    repo = open_repository(ref, backoff)
    try:
        return repo, repo.manifest(wanted)
    except BaseException:
        repo.close()
        raise


def _config(store: Store, repo: Repository, manifest: Manifest, platform: str | None) -> bytes:
    """The config blob: the store's copy when it has one (an image pulled again)."""
    desc = manifest.config
    where = f"{repo.shown}@{desc.digest}"
    if desc.size > MAX_CONFIG:
        raise RegistryError(f"{where}: the config is {desc.size} bytes, too large")
    if store.blobs.has(desc.digest):
        raw = store.blobs.read_bytes(desc.digest)
    else:
        response = repo.blob(desc.digest)
        try:
            raw = b""
            for chunk in response.iter_content(1 << 16):
                raw += chunk
                if len(raw) > desc.size:
                    break  # more than the descriptor says: wrong, whatever the rest is
        finally:
            response.close()
    if digest_of(raw) != desc.digest or len(raw) != desc.size:
        raise DigestMismatch(f"{where}: digest mismatch: the registry sent content with "
                             f"digest {digest_of(raw)}")
    if platform:
        data = json.loads(raw)
        got = Platform(data.get("architecture", ""), data.get("os", ""), data.get("variant", ""))
        want = Platform.parse(platform)
        if (got.os, got.architecture) != (want.os, want.architecture):
            raise RegistryError(f"{repo.shown}: the image is for {got}, not {want}")
    return raw


def _layers(manifest: Manifest, config: bytes, where: str) -> list[Layer]:
    diff_ids = _diff_ids(config, where)
    if len(diff_ids) != len(manifest.layers):
        raise RegistryError(f"{where}: the config lists {len(diff_ids)} layers, the manifest "
                            f"{len(manifest.layers)}")
    for desc in manifest.layers:
        kind = desc.media_type
        if not mt.is_layer(kind) or "foreign" in kind or "nondistributable" in kind:
            raise RegistryError(f"{where}: unsupported layer type {kind!r}")
    return [Layer(d.digest, d.size, d.media_type, diff_id)
            for d, diff_id in zip(manifest.layers, diff_ids)]


def _diff_ids(config: bytes, where: str) -> list[str]:
    with contextlib.suppress(ValueError, KeyError, TypeError):
        diff_ids = json.loads(config)["rootfs"]["diff_ids"]
        if isinstance(diff_ids, list) and all(isinstance(d, str) and is_digest(d)
                                              for d in diff_ids):
            return diff_ids
    raise RegistryError(f"{where}: the image config has no rootfs.diff_ids")


def _store(store: Store, repo: Repository, manifest: Manifest, config: bytes,
           layers: list[Layer], emit: Callable[[Any], None],
           backoff: tuple[float, ...]) -> tuple[ImageRecord, bool]:
    image_id = digest_of(config)
    fresh = not store.records.has(image_id)
    with store.writing():  # garbage collection waits until the record names the layers
        missing: dict[str, Layer] = {}
        for layer in layers:
            if store.blobs.has(layer.diff_id):
                emit(BlobProgress(layer.digest, "Already exists"))
            elif layer.diff_id not in missing:
                missing[layer.diff_id] = layer
                emit(BlobProgress(layer.digest, "Pulling fs layer", 0, layer.size))
        writers = _download_all(store, repo, list(missing.values()), emit, backoff)
        try:
            for layer in missing.values():
                writers[layer.diff_id].commit(layer.diff_id)
                emit(BlobProgress(layer.digest, "Pull complete", layer.size, layer.size))
        finally:
            for writer in writers.values():
                if writer.info is None:
                    writer.abort()
        refs = [LayerRef(ly.diff_id, store.blobs.size(ly.diff_id)) for ly in layers]
        record = store.commit_image(config, refs,
                                    docker=manifest.media_type == mt.DOCKER_MANIFEST)
    return record, fresh


def _download_all(store: Store, repo: Repository, layers: list[Layer],
                  emit: Callable[[Any], None],
                  backoff: tuple[float, ...]) -> dict[str, BlobWriter]:
    """Every layer into an uncommitted writer; on any failure none is kept."""
    if not layers:
        return {}
    with ThreadPoolExecutor(max_workers=PARALLEL_DOWNLOADS,
                            thread_name_prefix="pybuild-pull") as pool:
        futures = {ly.diff_id: pool.submit(download, store, repo, ly, emit, backoff)
                   for ly in layers}
        wait(futures.values())
    writers: dict[str, BlobWriter] = {}
    failure: BaseException | None = None
    for diff_id, future in futures.items():
        error = future.exception()
        if error is None:
            writers[diff_id] = future.result()
        elif failure is None or isinstance(error, DigestMismatch):
            failure = error  # a digest mismatch is the news, not what it interrupted
    if failure is not None:
        for writer in writers.values():
            writer.abort()
        raise failure
    return writers


def _name(store: Store, ref: Reference, digest: str, record: ImageRecord) -> None:
    if ref.tag:
        store.refs.update(lambda tags, _digests: tags.__setitem__(str(ref), record.id))
    set_repo_digest(store, ref.with_digest(digest), record.id)
