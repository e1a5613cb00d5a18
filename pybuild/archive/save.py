"""``save``: images from the store to one tar that is a docker-archive and an OCI layout, or to
an OCI layout directory.

Deterministic: blobs in digest order, then the four documents; every header with uid/gid 0 and
one mtime (0, or SOURCE_DATE_EPOCH), so two saves of the same images are the same bytes. Layers
are compressed through the store's memo, so only the first save of a layer compresses it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pybuild.archive import layout
from pybuild.errors import ArchiveError, DigestMismatch, ReferenceError_, UsageError
from pybuild.image import mediatypes as mt
from pybuild.image.manifest import Descriptor, build_manifest
from pybuild.image.reference import parse as parse_reference
from pybuild.layers.tarformat import TarWriter
from pybuild.store import Store

_CHUNK = 1 << 20
COMPRESSIONS = ("gzip", "zstd", "none")
_ID = re.compile(r"sha256:[a-f0-9]{1,64}")  # would parse as repository "sha256" with a tag
FORMATS = ("tar", "oci-dir")


@dataclass(frozen=True)
class SavePlan:
    images: tuple[layout.SavedImage, ...]
    blobs: dict[str, int]          # store blobs to copy: digest -> size
    documents: dict[str, bytes]    # generated blobs (manifests): digest -> bytes
    files: dict[str, bytes]        # top-level files: name -> bytes

    def blob_names(self) -> list[str]:
        return sorted(set(self.blobs) | set(self.documents))


def save(store: Store, images: Sequence[str], out: BinaryIO | str | os.PathLike | None = None,
         *, compression: str = "gzip", format: str = "tar",
         dest_dir: str | os.PathLike | None = None) -> tuple[layout.SavedImage, ...]:
    """Write ``images`` (names or ids) to ``out`` (format "tar": a stream, or a file path,
    written beside it and renamed so a failed save leaves no half archive) or ``dest_dir``
    ("oci-dir")."""
    if isinstance(out, (str, os.PathLike)):
        return _save_to_file(store, images, Path(out), compression)
    if compression not in COMPRESSIONS:
        raise UsageError(f"unknown compression {compression!r}: use {', '.join(COMPRESSIONS)}")
    if format not in FORMATS:
        raise UsageError(f"unknown format {format!r}: use {', '.join(FORMATS)}")
    if not images:
        raise UsageError("save needs at least one image")
    with store.writing():  # garbage collection must not take blobs from under us
        plan = plan_save(store, images, compression)
        if format == "tar":
            if out is None:
                raise UsageError("save --format tar needs an output stream")
            write_tar(store, plan, out)
        else:
            if dest_dir is None:
                raise UsageError("save --format oci-dir needs a destination directory")
            write_dir(store, plan, Path(dest_dir))
    return plan.images


def _save_to_file(store: Store, images: Sequence[str], path: Path,
                  compression: str) -> tuple[layout.SavedImage, ...]:
    from pybuild.store.fsutil import AtomicFile

    try:
        out = AtomicFile(path)
    except OSError as err:
        raise ArchiveError(f"cannot write {path}: {err.strerror}") from None
    try:
        saved = save(store, images, out.file, compression=compression)
    except BaseException:
        out.abort()
        raise
    try:
        out.commit()
    except OSError as err:  # a full disk, or a path that is not a regular file
        raise ArchiveError(f"cannot write {path}: {err.strerror}") from None
    return saved


def plan_save(store: Store, names: Sequence[str], compression: str) -> SavePlan:
    selected: dict[str, list[str]] = {}
    for name in names:
        for image_id, tags in select(store, name):
            known = selected.setdefault(image_id, [])
            known += [t for t in tags if t not in known]
    saved, blobs, documents = [], {}, {}
    for image_id, tags in selected.items():
        image, manifest = _image_plan(store, image_id, tuple(tags), compression, blobs)
        documents[image.manifest_digest] = manifest
        saved.append(image)
    files = {layout.INDEX_FILE: layout.index_json(saved, mt.OCI_MANIFEST),
             layout.MANIFEST_FILE: layout.manifest_json(saved),
             layout.OCI_LAYOUT_FILE: layout.OCI_LAYOUT,
             layout.REPOSITORIES_FILE: layout.repositories_json(saved)}
    return SavePlan(tuple(saved), blobs, documents, files)


def _image_plan(store: Store, image_id: str, tags: tuple[str, ...], compression: str,
                blobs: dict[str, int]) -> tuple[layout.SavedImage, bytes]:
    record = store.records.get(image_id)
    config = store.blobs.read_bytes(image_id)
    blobs[image_id] = len(config)
    layers = []
    for layer in record.layers:
        digest, size, media_type = store.compressed_blob(layer.diff_id, compression)
        blobs[digest] = size
        layers.append(Descriptor(media_type, digest, size))
    manifest = build_manifest(Descriptor(mt.OCI_CONFIG, image_id, len(config)), layers)
    raw = manifest.to_bytes()
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    image = layout.SavedImage(image_id, tags, digest, len(raw),
                              tuple(d.digest for d in layers), _platform(config))
    return image, raw


def _platform(config: bytes) -> dict[str, str]:
    try:
        data = json.loads(config)
    except ValueError:
        data = {}
    out = {"architecture": data.get("architecture") or "amd64", "os": data.get("os") or "linux"}
    if data.get("variant"):
        out["variant"] = data["variant"]
    return out


def select(store: Store, name: str) -> list[tuple[str, list[str]]]:
    """The images ``name`` means and the tags to save with each, as docker does: a name with
    a tag saves that tag, a bare repository every tag of it, an id no tag."""
    from pybuild.store.images import resolve

    try:
        ref = None if _ID.fullmatch(name) else parse_reference(name)
    except ReferenceError_:
        ref = None
    table = store.refs.load()
    if ref is not None and ref.tag is None and ref.digest is None:
        by_image: dict[str, list[str]] = {}
        for tag in sorted(t for t in table.tags if parse_reference(t).name == ref.name):
            by_image.setdefault(table.tags[tag], []).append(tag)
        if by_image:
            return list(by_image.items())
    record = resolve(store, name, table)
    if ref is not None and ref.tag is not None:
        return [(record.id, [str(ref.normalized())])]
    return [(record.id, [])]


def write_tar(store: Store, plan: SavePlan, out: BinaryIO) -> None:
    writer = TarWriter(out, _mtime())
    writer.add_dir("blobs")
    writer.add_dir("blobs/sha256")
    for digest in plan.blob_names():
        name = layout.blob_name(digest)
        if digest in plan.documents:
            writer.add_bytes(name, plan.documents[digest])
            continue
        with store.blobs.open(digest, verify=False) as src:
            writer.add_chunks(name, plan.blobs[digest], verified(src, plan.blobs[digest], digest))
    for name in sorted(plan.files):
        writer.add_bytes(name, plan.files[name])
    writer.close()


def write_dir(store: Store, plan: SavePlan, dest: Path) -> None:
    """Build the layout next to ``dest`` and rename it into place: all or nothing."""
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ArchiveError(f"{dest} exists and is not an empty directory")
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.tmp-"))
    try:
        (work / "blobs" / "sha256").mkdir(parents=True)
        for digest in plan.blob_names():
            with open(work / layout.blob_name(digest), "wb") as dst:
                if digest in plan.documents:
                    dst.write(plan.documents[digest])
                    continue
                with store.blobs.open(digest, verify=False) as src:
                    for chunk in verified(src, plan.blobs[digest], digest):
                        dst.write(chunk)
        for name, data in plan.files.items():
            (work / name).write_bytes(data)
        os.chmod(work, 0o755)
        with contextlib.suppress(FileNotFoundError):
            dest.rmdir()
        os.rename(work, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def verified(src: BinaryIO, size: int, digest: str) -> Iterator[bytes]:
    """Exactly ``size`` bytes of ``src``, checked to hash to ``digest`` before the last chunk
    is handed on: a store blob that rotted must not leave as a well-formed archive."""
    hasher, left = hashlib.sha256(), size
    while left:
        chunk = src.read(min(_CHUNK, left))
        if not chunk:
            raise ArchiveError(f"blob {digest} ended {left} bytes early")
        hasher.update(chunk)
        left -= len(chunk)
        if not left and "sha256:" + hasher.hexdigest() != digest:
            raise DigestMismatch(f"blob {digest} in the store is corrupt; "
                                 "run `pybuild system check`")
        yield chunk


def _mtime() -> int:
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    return int(epoch) if epoch.isdigit() else 0
