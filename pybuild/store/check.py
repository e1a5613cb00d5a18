"""``system check``: verify every blob and record; with ``repair``, drop what is broken.

Temp files under tmp/ are not corruption (a killed writer leaves them); ``repair`` removes them.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass

from pybuild.errors import CorruptStore, ImageError, PybuildError
from pybuild.image.config import ImageConfig
from pybuild.image.manifest import Manifest
from pybuild.image.reference import parse as parse_reference
from pybuild.store import Store
from pybuild.store.blobs import is_digest
from pybuild.store.gc import clean_tmp


@dataclass(frozen=True)
class Problem:
    kind: str  # "blob", "image", "ref", "compressed", "layer"
    subject: str  # the digest, image id, name or path concerned
    message: str

    def __str__(self) -> str:
        return f"{self.kind} {self.subject}: {self.message}"


def check(store: Store, *, repair: bool = False) -> list[Problem]:
    """Every problem found, one per item; with ``repair``, each is also dropped."""
    guard = (store.collecting() if repair else store.writing())
    with guard:
        problems = _check_blobs(store)
        bad_blobs = {p.subject for p in problems}
        problems += _check_records(store, bad_blobs)
        bad_images = {p.subject for p in problems if p.kind == "image"}
        problems += _check_refs(store, bad_images)
        problems += _check_compressed(store, bad_blobs)
        problems += _check_layers(store)
        if repair:
            _repair(store, problems)
    return problems


def _check_blobs(store: Store) -> list[Problem]:
    problems = []
    for digest in store.blobs.digests():
        message = store.blobs.verify(digest)
        if message is not None:
            problems.append(Problem("blob", digest, message.removeprefix(f"blob {digest}: ")))
    return problems


def _check_records(store: Store, bad_blobs: set[str]) -> list[Problem]:
    problems = []
    if store.records.root.is_dir():
        for name in sorted(os.listdir(store.records.root)):
            image_id = "sha256:" + name.removesuffix(".json")
            if not name.endswith(".json") or not is_digest(image_id):
                problems.append(Problem("image", name, "not an image record name"))
                continue
            message = _record_problem(store, image_id, bad_blobs)
            if message:
                problems.append(Problem("image", image_id, message))
    return problems


def _record_problem(store: Store, image_id: str, bad_blobs: set[str]) -> str | None:
    try:
        record = store.records.get(image_id)
    except (CorruptStore, ImageError) as err:
        return str(err)
    for digest in (record.id, record.manifest_digest, *record.diff_ids):
        if digest in bad_blobs:
            return f"references corrupt blob {digest}"
        if not store.blobs.has(digest):
            return f"references missing blob {digest}"
    try:
        config = ImageConfig.from_bytes(store.blobs.read_bytes(record.id))
        manifest = Manifest.from_bytes(store.blobs.read_bytes(record.manifest_digest))
    except PybuildError as err:
        return str(err)
    if config.diff_ids != record.diff_ids:
        return "config rootfs.diff_ids differ from the record's layers"
    if manifest.config.digest != record.id:
        return "manifest names another config"
    if [(d.digest, d.size) for d in manifest.layers] != [
            (ly.diff_id, ly.size) for ly in record.layers]:
        return "manifest layers differ from the record's layers"
    for layer in record.layers:
        if store.blobs.size(layer.diff_id) != layer.size:
            return f"layer {layer.diff_id} has the wrong size"
    return None


def _check_refs(store: Store, bad_images: set[str]) -> list[Problem]:
    try:
        table = store.refs.load()
    except CorruptStore as err:
        return [Problem("ref", "refs.json", str(err))]
    problems = []
    for name, image_id in sorted({**table.tags, **table.digests}.items()):
        try:
            parse_reference(name)
        except ImageError as err:
            problems.append(Problem("ref", name, str(err)))
            continue
        if image_id in bad_images:
            problems.append(Problem("ref", name, f"names broken image {image_id}"))
        elif not is_digest(image_id) or not store.records.has(image_id):
            problems.append(Problem("ref", name, f"names missing image {image_id}"))
    return problems


def _check_compressed(store: Store, bad_blobs: set[str]) -> list[Problem]:
    problems = []
    root = store.compressed.root
    for path in sorted(root.glob("*.json")) if root.is_dir() else []:
        try:
            data = json.loads(path.read_bytes())
            digests = [v["digest"] for v in data.values()]
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            problems.append(Problem("compressed", path.name, f"malformed: {err!r}"))
            continue
        for digest in digests:
            if digest in bad_blobs or not is_digest(digest) or not store.blobs.has(digest):
                problems.append(Problem("compressed", path.name, f"names bad blob {digest}"))
                break
    return problems


def _check_layers(store: Store) -> list[Problem]:
    root = store.layers.root
    names = sorted(os.listdir(root)) if root.is_dir() else []
    return [Problem("layer", name, "not an unpacked layer (chain id) directory")
            for name in names if not is_digest("sha256:" + name)
            or not (root / name).is_dir()]


def _repair(store: Store, problems: list[Problem]) -> None:
    with store.lock():
        for problem in problems:
            _drop(store, problem)
        bad_images = {p.subject for p in problems if p.kind == "image"}
        doomed = {p.subject for p in problems if p.kind == "ref"}

        def change(tags: dict[str, str], digests: dict[str, str]) -> None:
            for table in (tags, digests):
                for name, image_id in list(table.items()):
                    if name in doomed or image_id in bad_images:
                        del table[name]

        if any(p.subject == "refs.json" for p in problems):
            with contextlib.suppress(FileNotFoundError):
                store.refs.path.unlink()
        else:
            store.refs.update(change)
        clean_tmp(store)


def _drop(store: Store, problem: Problem) -> None:
    with contextlib.suppress(FileNotFoundError):
        if problem.kind == "blob":
            store.blobs.delete(problem.subject)
        elif problem.kind == "image":
            name = problem.subject.removeprefix("sha256:")
            path = store.records.root / (name if name.endswith(".json") else f"{name}.json")
            path.unlink()
        elif problem.kind == "compressed":
            (store.compressed.root / problem.subject).unlink()
        elif problem.kind == "layer":
            path = store.layers.root / problem.subject
            if path.is_dir():
                from pybuild.store.fsutil import remove_tree
                remove_tree(path, store.tmp)
            else:
                path.unlink()
