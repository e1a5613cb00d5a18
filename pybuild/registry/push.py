"""``pybuild push``: a stored image to a registry.

Each layer: the registry may have it already (HEAD of a compressed form the store knows from
a pull or an earlier push), another repository on the same host may lend it (cross-repository
mount), else it is compressed (gzip, once: the store's memo) and uploaded. Then the config and
last the manifest, in the media types the image is stored with (docker schema2 or OCI); the
manifest's digest is recorded as a RepoDigest. A push changes no image or name in the store
until its manifest is accepted.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pybuild.errors import ImageNotFound, RegistryError, UsageError
from pybuild.image import mediatypes as mt
from pybuild.image.manifest import Descriptor, build_manifest
from pybuild.image.reference import Reference, parse
from pybuild.registry import distribution
from pybuild.registry.events import BlobProgress, RegistryStatus
from pybuild.registry.pull import _serialised
from pybuild.registry.remote import Repository, open_repository
from pybuild.registry.upload import DEFAULT_POLICY, UploadPolicy, upload_blob, upload_bytes
from pybuild.store import Store
from pybuild.store.images import resolve, set_repo_digest
from pybuild.store.records import ImageRecord

PARALLEL_UPLOADS = 5  # docker's max-concurrent-uploads default
COMPRESSION = "gzip"


@dataclass(frozen=True)
class Pushed:
    reference: str  # "127.0.0.1:5000/app:1", as given (familiar)
    tag: str
    digest: str     # the manifest's
    size: int       # the manifest's length in bytes


def push(store: Store, repository: str, tag: str | None = None, *, all_tags: bool = False,
         on_event: Callable[[Any], None] | None = None,
         policy: UploadPolicy = DEFAULT_POLICY) -> list[Pushed]:
    """Push ``repository[:tag]`` (``:latest`` by default), or with ``all_tags`` every tag the
    store has for the repository."""
    emit = _serialised(on_event)
    return [_push_one(store, ref, emit, policy) for ref in _references(store, repository, tag,
                                                                       all_tags)]


def _references(store: Store, repository: str, tag: str | None,
                all_tags: bool) -> list[Reference]:
    ref = parse(repository)
    if ref.digest:
        raise UsageError(f"cannot push a digest reference: {repository}")
    if tag:
        ref = ref.with_tag(tag)
    if not all_tags:
        return [ref.normalized()]
    if ref.tag:
        raise UsageError("tag can't be used with --all-tags/-a")
    found = sorted(parse(t) for t in store.refs.load().tags if parse(t).name == ref.name)
    if not found:
        raise UsageError(f"An image does not exist locally with the tag: {ref.familiar_name}")
    return found


def _push_one(store: Store, ref: Reference, emit: Callable[[Any], None],
              policy: UploadPolicy) -> Pushed:
    try:
        record = resolve(store, str(ref))
    except ImageNotFound:
        raise ImageNotFound(f"An image does not exist locally with the tag: {ref.familiar()}") \
            from None
    docker = record.manifest_media_type == mt.DOCKER_MANIFEST
    emit(RegistryStatus(f"The push refers to repository [{ref.familiar_name}]"))
    repo = open_repository(ref)
    try:
        layers = _push_layers(store, repo, record, emit, policy)
        config = store.blobs.read_bytes(record.id)
        if repo.has_blob(record.id) is None:
            upload_bytes(repo, config, record.id)
        manifest = build_manifest(Descriptor(mt.OCI_CONFIG, record.id, len(config)),
                                  [layers[ly.diff_id] for ly in record.layers], docker=docker)
        raw = manifest.to_bytes()
        digest = repo.put_manifest(ref.tag or "latest", raw, manifest.media_type)
    finally:
        repo.close()
    host = repo.transport.host
    for diff_id, desc in layers.items():
        distribution.remember(store, diff_id, distribution.RemoteBlob(
            desc.digest, desc.size, desc.media_type, (f"{host}/{ref.path}",)))
    set_repo_digest(store, ref.with_digest(digest), record.id)
    emit(RegistryStatus(f"{ref.tag}: digest: {digest} size: {len(raw)}"))
    return Pushed(ref.familiar(), ref.tag or "latest", digest, len(raw))


def _push_layers(store: Store, repo: Repository, record: ImageRecord,
                 emit: Callable[[Any], None], policy: UploadPolicy) -> dict[str, Descriptor]:
    diff_ids = list(dict.fromkeys(record.diff_ids))
    for diff_id in diff_ids:
        emit(BlobProgress(diff_id, "Preparing"))
    with ThreadPoolExecutor(max_workers=PARALLEL_UPLOADS,
                            thread_name_prefix="pybuild-push") as pool:
        futures = {d: pool.submit(_push_layer, store, repo, d, emit, policy) for d in diff_ids}
        return {d: f.result() for d, f in futures.items()}


def _push_layer(store: Store, repo: Repository, diff_id: str, emit: Callable[[Any], None],
                policy: UploadPolicy) -> Descriptor:
    known = distribution.known(store, diff_id)
    for blob in known:
        if repo.has_blob(blob.digest) is not None:
            emit(BlobProgress(diff_id, "Layer already exists"))
            return Descriptor(blob.media_type, blob.digest, blob.size)
    host = repo.transport.host
    for blob in known:
        for source in _same_host(blob.repos, host, repo.path):
            try:
                location = repo.mount(blob.digest, source)
            except RegistryError:
                continue  # no pull permission on the source (or it is gone): upload instead
            if location is None:
                emit(BlobProgress(diff_id, f"Mounted from {source}"))
                return Descriptor(blob.media_type, blob.digest, blob.size)
            _cancel(repo, location)
    digest, size, media_type = store.compressed_blob(diff_id, COMPRESSION)
    if repo.has_blob(digest) is not None:
        emit(BlobProgress(diff_id, "Layer already exists"))
    else:
        emit(BlobProgress(diff_id, "Pushing", 0, size))
        upload_blob(store, repo, digest, size, emit_as(emit, diff_id), policy)
        emit(BlobProgress(diff_id, "Pushed", size, size))
    return Descriptor(media_type, digest, size)


def emit_as(emit: Callable[[Any], None], diff_id: str) -> Callable[[BlobProgress], None]:
    """Upload progress named by the layer's diff ID, as the other push events are."""
    return lambda e: emit(BlobProgress(diff_id, e.status, e.current, e.total))


def _same_host(repos: tuple[str, ...], host: str, path: str) -> list[str]:
    return [r[len(host) + 1:] for r in repos if r.startswith(f"{host}/") and
            r[len(host) + 1:] != path]


def _cancel(repo: Repository, location: str) -> None:
    """A mount the registry refused opened an upload instead: give it back."""
    with contextlib.suppress(RegistryError):
        repo.transport.request("DELETE", location, what=repo.shown,
                               scope=repo.scope("pull", "push"), ok=(404,), retry=False)
