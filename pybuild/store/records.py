"""Image records: ``images/<hex>.json``, one per image, replaced atomically.

The image ID is the digest of its config blob, as in docker. A record names the config and
manifest blobs and the layers (diff IDs and uncompressed sizes) so listing images needs no
blob reads.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pybuild.errors import CorruptStore, ImageNotFound
from pybuild.image.canonical import canonical_json
from pybuild.store.blobs import hex_of, is_digest
from pybuild.store.fsutil import atomic_write


@dataclass(frozen=True)
class LayerRef:
    diff_id: str
    size: int


@dataclass(frozen=True)
class ImageRecord:
    id: str  # == config_digest
    manifest_digest: str
    manifest_media_type: str
    layers: tuple[LayerRef, ...]
    created: str = ""
    parent: str = ""  # set by the builder for images it built locally, as docker does

    @property
    def config_digest(self) -> str:
        return self.id

    @property
    def diff_ids(self) -> tuple[str, ...]:
        return tuple(layer.diff_id for layer in self.layers)

    @property
    def size(self) -> int:
        return sum(layer.size for layer in self.layers)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "manifest": self.manifest_digest,
            "manifestMediaType": self.manifest_media_type,
            "layers": [{"diffID": ly.diff_id, "size": ly.size} for ly in self.layers],
            "created": self.created, "parent": self.parent,
        }

    @classmethod
    def from_json(cls, data: Any) -> ImageRecord:
        try:
            record = cls(data["id"], data["manifest"], data["manifestMediaType"],
                         tuple(LayerRef(ly["diffID"], int(ly["size"])) for ly in data["layers"]),
                         data.get("created", ""), data.get("parent", ""))
        except (KeyError, TypeError, ValueError) as err:
            raise CorruptStore(f"malformed image record: {err!r}") from err
        for digest in (record.id, record.manifest_digest, *record.diff_ids):
            if not is_digest(digest):
                raise CorruptStore(f"malformed image record: bad digest {digest!r}")
        return record


class RecordStore:
    def __init__(self, root: Path, tmp: Path):
        self.root = root  # .../images
        self.tmp = tmp

    def path(self, image_id: str) -> Path:
        return self.root / f"{hex_of(image_id)}.json"

    def put(self, record: ImageRecord) -> None:
        atomic_write(self.path(record.id), canonical_json(record.to_json()), self.tmp)

    def has(self, image_id: str) -> bool:
        return self.path(image_id).is_file()

    def get(self, image_id: str) -> ImageRecord:
        try:
            raw = self.path(image_id).read_bytes()
        except FileNotFoundError:
            raise ImageNotFound(f"no such image: {image_id}") from None
        try:
            record = ImageRecord.from_json(json.loads(raw))
        except ValueError as err:
            raise CorruptStore(f"image record {image_id} is not JSON: {err}") from err
        if record.id != image_id:
            raise CorruptStore(f"image record {image_id} names another image {record.id}")
        return record

    def delete(self, image_id: str) -> bool:
        with contextlib.suppress(FileNotFoundError):
            self.path(image_id).unlink()
            return True
        return False

    def ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return ["sha256:" + name[:-5] for name in sorted(os.listdir(self.root))
                if name.endswith(".json") and len(name) == 69]

    def list(self, *, strict: bool = False) -> list[ImageRecord]:
        """Every record; one deleted meanwhile is skipped. A broken one is skipped too (``system
        check`` reports it) unless ``strict``, which garbage collection uses so it never frees
        what a broken record might still name."""
        out = []
        for image_id in self.ids():
            try:
                out.append(self.get(image_id))
            except ImageNotFound:
                continue
            except CorruptStore:
                if strict:
                    raise
        return out

    def match_prefix(self, prefix: str) -> list[str]:
        """Image IDs starting with ``prefix`` (with or without ``sha256:``)."""
        hexpart = prefix.removeprefix("sha256:")
        return [i for i in self.ids() if i[7:].startswith(hexpart)]
