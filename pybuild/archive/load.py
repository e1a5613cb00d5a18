"""``load``: images from a docker-archive (old or docker 25 format), an OCI archive or an OCI
layout directory into the store.

Every blob is checked against the digest and size that name it, every layer's uncompressed
digest against the config's ``rootfs.diff_ids``, all before anything is committed: a failed
load leaves the store as it was. Layers are stored uncompressed (blob digest == diff ID).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from pybuild.archive import layout
from pybuild.archive.names import normalize
from pybuild.archive.sources import DirSpool, read_tar
from pybuild.archive.spool import Spool
from pybuild.errors import ArchiveError, DigestMismatch, ReferenceError_
from pybuild.image import mediatypes as mt
from pybuild.image.reference import parse as parse_reference
from pybuild.store import LayerRef, Store
from pybuild.store.blobs import is_digest

MAX_INDEX_DEPTH = 4


@dataclass(frozen=True)
class LoadedImage:
    id: str
    tags: tuple[str, ...]   # normalised: docker.io/library/busybox:latest
    # (tag, id of the image it named before) for tags this load moved, as docker reports them
    renamed: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class _Found:
    image_id: str
    config: str             # entry names
    layers: tuple[str, ...]
    tags: tuple[str, ...]


@dataclass(frozen=True)
class _Ready:
    image_id: str
    config: bytes
    layers: tuple[tuple[str, str, int], ...]  # entry name, diff ID, uncompressed size
    tags: tuple[str, ...]


def load(store: Store, source: BinaryIO | str | os.PathLike) -> list[LoadedImage]:
    """Load every image in ``source``: a binary stream, a tar file's path or a layout dir."""
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if path.is_dir():
            return _load(store, DirSpool(store, path), None)
        try:
            with open(path, "rb") as stream:
                return _load(store, Spool(store), stream)
        except (FileNotFoundError, IsADirectoryError, PermissionError) as err:
            raise ArchiveError(f"cannot open {path}: {err.strerror}") from None
    return _load(store, Spool(store), source)


def _load(store: Store, spool: Spool, stream: BinaryIO | None) -> list[LoadedImage]:
    with store.writing():  # garbage collection must wait until the records are written
        try:
            if stream is not None:
                read_tar(stream, spool)
                _check_named_blobs(spool)
            ready = [_verify(spool, found) for found in find_images(spool)]
            return _commit(store, spool, ready)
        finally:
            spool.close()


def _check_named_blobs(spool: Spool) -> None:
    for name, entry in spool.entries.items():
        digest = layout.digest_of_name(name)
        if digest is not None and entry.digest != digest:
            raise DigestMismatch(f"blob {digest}: content has digest {entry.digest}")


def find_images(spool: Spool) -> list[_Found]:
    found: dict[str, _Found] = {}
    sources = []
    if spool.has(layout.INDEX_FILE):
        sources.append(_from_index(spool))
    if spool.has(layout.MANIFEST_FILE):
        sources.append(_from_manifest_json(spool))
    if not sources:
        raise ArchiveError("not an image archive: it has neither manifest.json nor index.json")
    for images in sources:
        for image in images:
            known = found.get(image.image_id)
            if known is not None:
                tags = known.tags + tuple(t for t in image.tags if t not in known.tags)
                image = _Found(known.image_id, known.config, known.layers, tags)
            found[image.image_id] = image
    if not found:
        raise ArchiveError("the archive holds no image")
    return list(found.values())


# --- OCI: index.json -> (index ->) manifest -> config, layers ---------------------------------
def _from_index(spool: Spool) -> Iterator[_Found]:
    index = spool.read_json(layout.INDEX_FILE)
    for desc in _descriptors(index, layout.INDEX_FILE):
        yield from _from_descriptor(spool, desc, _tags_of(desc), 0)


def _from_descriptor(spool: Spool, desc: dict[str, Any], tags: tuple[str, ...],
                     depth: int) -> Iterator[_Found]:
    media_type = desc.get("mediaType") or mt.OCI_MANIFEST
    if media_type in mt.INDEXES:
        if depth >= MAX_INDEX_DEPTH:
            raise ArchiveError(f"image index {desc['digest']} nests too deeply")
        children = _descriptors(_blob_json(spool, desc), desc["digest"])
        for child in _for_platform(children, desc["digest"]):
            yield from _from_descriptor(spool, child, tags, depth + 1)
    elif media_type in mt.MANIFESTS:
        manifest = _blob_json(spool, desc)
        where = f"manifest {desc['digest']}"
        if not isinstance(manifest, dict) or not isinstance(manifest.get("config"), dict):
            raise ArchiveError(f"{where} has no config")
        config = _descriptor(manifest["config"], where)
        layers = [_descriptor(d, where) for d in manifest.get("layers") or ()]
        for layer in layers:
            if not mt.is_layer(layer["mediaType"]) or "foreign" in layer["mediaType"]:
                raise ArchiveError(f"{where}: unsupported layer type {layer['mediaType']!r}")
        for blob in (config, *layers):
            spool.check_blob(layout.blob_name(blob["digest"]), blob["digest"], blob["size"])
        yield _Found(config["digest"], layout.blob_name(config["digest"]),
                     tuple(layout.blob_name(d["digest"]) for d in layers), tags)
    # anything else (signatures, attestations) is not an image: skipped


def _for_platform(children: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    """The host's manifest of a multi-platform index (linux/amd64 when undecidable)."""
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    fits = [c for c in children
            if not c.get("platform") or (c["platform"].get("os"), c["platform"].get(
                "architecture")) == ("linux", arch)]
    if not fits:
        raise ArchiveError(f"image index {where} has no manifest for linux/{arch}")
    return fits[:1]


def _blob_json(spool: Spool, desc: dict[str, Any]) -> Any:
    name = layout.blob_name(desc["digest"])
    spool.check_blob(name, desc["digest"], desc["size"])
    return spool.read_json(name)


def _descriptors(doc: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(doc, dict) or not isinstance(doc.get("manifests", []), list):
        raise ArchiveError(f"{where} is not an image index")
    return [_descriptor(d, where) for d in doc.get("manifests") or ()]


def _descriptor(desc: Any, where: str) -> dict[str, Any]:
    if not isinstance(desc, dict):
        raise ArchiveError(f"{where}: a descriptor is not an object")
    digest, size = desc.get("digest"), desc.get("size")
    if not isinstance(digest, str) or not is_digest(digest):
        raise ArchiveError(f"{where}: unsupported or malformed digest {digest!r}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ArchiveError(f"{where}: descriptor {digest} has a bad size {size!r}")
    return {**desc, "mediaType": desc.get("mediaType") or ""}


def _tags_of(desc: dict[str, Any]) -> tuple[str, ...]:
    notes = desc.get("annotations") or {}
    name = notes.get(layout.ANNOTATION_IMAGE_NAME) or ""
    ref_name = notes.get(layout.ANNOTATION_REF_NAME) or ""
    if not name and (":" in ref_name or "/" in ref_name):
        name = ref_name  # a bare tag ("latest") names no repository: the image stays untagged
    return (_normal_tag(name, layout.INDEX_FILE),) if name else ()


def _normal_tag(name: Any, where: str) -> str:
    try:
        ref = parse_reference(str(name))
    except ReferenceError_ as err:
        raise ArchiveError(f"{where}: invalid image name {name!r}: {err}") from None
    if ref.digest:
        raise ArchiveError(f"{where}: {name!r} is a digest, not a tag")
    return str(ref.normalized())


# --- docker-archive: manifest.json --------------------------------------------------------------
def _from_manifest_json(spool: Spool) -> Iterator[_Found]:
    entries = spool.read_json(layout.MANIFEST_FILE)
    if not isinstance(entries, list):
        raise ArchiveError("manifest.json is not a list")
    for i, item in enumerate(entries):
        where = f"manifest.json entry {i}"
        if not isinstance(item, dict) or not isinstance(item.get("Config"), str):
            raise ArchiveError(f"{where} has no Config")
        config = normalize(item["Config"], what=f"{where} Config")
        layers = [normalize(str(n), what=f"{where} layer") for n in item.get("Layers") or ()]
        tags = tuple(dict.fromkeys(_normal_tag(t, where) for t in item.get("RepoTags") or ()))
        for name in (config, *layers):
            if not spool.has(name):
                raise ArchiveError(f"{where} names {name!r}, which is not in the archive")
        entry = spool.get(config)
        named = layout.digest_of_name(config) or _hex_json_name(config)
        if named is not None and named != entry.digest:
            raise DigestMismatch(f"config {config}: content has digest {entry.digest}")
        yield _Found(entry.digest, config, tuple(layers), tags)


def _hex_json_name(name: str) -> str | None:
    """Old docker archives name the config ``<image id hex>.json``."""
    stem = name.removesuffix(".json")
    return f"sha256:{stem}" if stem != name and is_digest(f"sha256:{stem}") else None


# --- checks and commit ----------------------------------------------------------------------------
def _verify(spool: Spool, found: _Found) -> _Ready:
    raw = spool.read_bytes(found.config)
    try:
        diff_ids = json.loads(raw)["rootfs"]["diff_ids"]
        if not isinstance(diff_ids, list) or not all(isinstance(d, str) and is_digest(d)
                                                     for d in diff_ids):
            raise TypeError("diff_ids is not a list of sha256 digests")
    except (ValueError, KeyError, TypeError) as err:
        raise ArchiveError(f"image {found.image_id}: unreadable config: {err}") from None
    if len(diff_ids) != len(found.layers):
        raise ArchiveError(f"image {found.image_id}: the config lists {len(diff_ids)} layers, "
                           f"the archive {len(found.layers)}")
    layers = []
    for name, diff_id in zip(found.layers, diff_ids):
        digest, size = spool.plain(name)
        if digest != diff_id:
            raise DigestMismatch(f"layer {name}: uncompressed content is {digest}, "
                                 f"the config says {diff_id}")
        layers.append((name, diff_id, size))
    return _Ready(found.image_id, raw, tuple(layers), found.tags)


def _commit(store: Store, spool: Spool, ready: list[_Ready]) -> list[LoadedImage]:
    """Layers, then config, manifest and record, then names: each step atomic, in the order
    that never lets a record or a name point at something missing."""
    records = []
    for image in ready:
        for name, diff_id, _size in image.layers:
            spool.commit(name, diff_id)
        layers = [LayerRef(diff_id, size) for _name, diff_id, size in image.layers]
        records.append(store.commit_image(image.config, layers))
    names = {tag: image.image_id for image in ready for tag in image.tags}
    moved: dict[str, str] = {}

    def retag(tags: dict[str, str], _digests: dict[str, str]) -> None:
        moved.update({t: tags[t] for t, i in names.items() if tags.get(t, i) != i})
        tags.update(names)

    if names:
        store.refs.update(retag)
    loaded = [LoadedImage(record.id, image.tags,
                          tuple((t, moved[t]) for t in image.tags if t in moved))
              for record, image in zip(records, ready)]
    return loaded
