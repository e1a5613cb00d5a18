"""``pybuild import``: a rootfs tarball (plain, gzip, xz, bzip2 or zstd) becomes a one-layer image.

The tarball goes through the safe extractor into a temp dir inside the store, is written back
as a normalised layer (so hostile or sloppy entries never reach a layer), and the extracted
dir is then adopted as the layer's unpacked form, which saves the first build an extraction.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO

from pybuild.errors import LayerError, ReferenceError_, StoreError
from pybuild.image.changes import apply_changes
from pybuild.image.config import ContainerConfig, HistoryEntry, ImageConfig, created_now
from pybuild.image.manifest import DEFAULT_PLATFORM, Platform
from pybuild.image.reference import Reference
from pybuild.image.reference import parse as parse_reference
from pybuild.store import LayerRef, Store
from pybuild.store.records import ImageRecord


def import_image(store: Store, source: str | Path | BinaryIO, reference: str | None = None, *,
                 changes: list[str] | tuple[str, ...] = (), message: str = "",
                 platform: Platform = DEFAULT_PLATFORM, docker: bool = False) -> ImageRecord:
    """Import ``source`` (a path, ``-`` for stdin, or a binary stream) and tag it."""
    ref = parse_reference(reference).normalized() if reference else None
    if ref is not None and ref.digest:
        raise ReferenceError_(f"refusing to create a tag with a digest reference: {reference}")
    container_config = apply_changes(ContainerConfig(), list(changes))
    name = source if isinstance(source, str | Path) else "-"
    with store.writing(), _opened(source) as stream:
        layer = _write_layer(store, stream)
        created = created_now()
        comment = message or f"Imported from {name}"
        config = ImageConfig(
            architecture=platform.architecture, os=platform.os, variant=platform.variant,
            created=created, config=container_config, diff_ids=(layer.diff_id,),
            history=(HistoryEntry(created=created, comment=comment),),
            extra={"comment": comment} if message else {},
        )
        with store.lock():  # record and name together: no rmi can slip in between
            record = store.commit_image(config.to_bytes(), [layer], docker=docker)
            if ref is not None:
                _tag(store, ref, record.id)
    return record


def _tag(store: Store, ref: Reference, image_id: str) -> None:
    store.refs.update(lambda tags, _digests: tags.__setitem__(str(ref), image_id))


@contextlib.contextmanager
def _opened(source: str | Path | BinaryIO):
    if isinstance(source, str | Path):
        if str(source) == "-":
            yield sys.stdin.buffer
            return
        try:
            file = open(source, "rb")  # noqa: SIM115 - closed below
        except OSError as err:
            raise StoreError(f"cannot read {source}: {err.strerror}") from None
        with file:
            yield file
    else:
        yield source


def _write_layer(store: Store, stream: BinaryIO) -> LayerRef:
    from pybuild.layers.create import write_layer_from_tree
    from pybuild.layers.extract import apply_layer

    store.tmp.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=store.tmp, prefix="import-"))
    try:
        rootfs = work / "rootfs"
        rootfs.mkdir(mode=0o755)
        apply_layer(stream, rootfs, mode="apply", allow_devices=True)
        with store.blobs.writer() as out:
            info = write_layer_from_tree(rootfs, out, upper=False,
                                         source_date_epoch=_source_date_epoch())
            blob = out.commit()
        if info.diff_id != blob.digest:
            raise LayerError(f"layer writer reported {info.diff_id}, wrote {blob.digest}")
        os.chmod(rootfs, 0o755)
        store.layers.adopt(None, blob.digest, rootfs)
        return LayerRef(blob.digest, blob.size)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _source_date_epoch() -> int | None:
    value = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    return int(value) if value.isdigit() else None
