"""Image-level operations over the store: resolve a name or id, tag, untag, remove, prune.

Semantics follow docker's: ``rmi NAME`` untags and deletes the image when nothing names it any
more; ``rmi ID`` of an image tagged in several repositories needs ``force``; a tag's removal
also drops that repository's digest references when no tag of it is left.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pybuild.errors import ImageError, ImageNotFound, ReferenceError_
from pybuild.image.reference import Reference
from pybuild.image.reference import parse as parse_reference
from pybuild.store import Store
from pybuild.store.records import ImageRecord
from pybuild.store.refs import RefTable

if TYPE_CHECKING:
    from pybuild.store.gc import GcResult

_HEX_PREFIX = re.compile(r"(?:sha256:)?([a-f0-9]{1,64})")


@dataclass(frozen=True)
class Removal:
    """One line of ``rmi`` output: ("Untagged", "busybox:latest") or ("Deleted", id)."""

    action: str
    subject: str


def resolve(store: Store, name_or_id: str, table: RefTable | None = None) -> ImageRecord:
    """The image a name (``busybox``, ``x@sha256:..``) or an id (full or a prefix) names."""
    table = table or store.refs.load()
    ref = _try_reference(name_or_id)
    if ref is not None:
        key = str(ref.normalized())
        image_id = table.digests.get(key) if ref.digest else table.tags.get(key)
        if image_id is not None and store.records.has(image_id):
            return store.records.get(image_id)
    match = _HEX_PREFIX.fullmatch(name_or_id)
    if match is not None:
        ids = store.records.match_prefix(match.group(1))
        if len(ids) == 1:
            return store.records.get(ids[0])
        if len(ids) > 1 and len(match.group(1)) < 64:
            raise ImageError(f"image id prefix {name_or_id!r} is ambiguous ({len(ids)} images)")
    raise ImageNotFound(f"No such image: {name_or_id}")


def _try_reference(text: str) -> Reference | None:
    try:
        return parse_reference(text)
    except ReferenceError_:
        return None


def tag(store: Store, source: str, target: str) -> Reference:
    """Name the image ``source`` resolves to ``target`` (normalised, ``:latest`` by default)."""
    ref = parse_reference(target)
    if ref.digest:
        raise ReferenceError_(f"refusing to create a tag with a digest reference: {target}")
    ref = ref.normalized()
    with store.lock():
        record = resolve(store, source)
        store.refs.update(lambda tags, _digests: tags.__setitem__(str(ref), record.id))
    return ref


def set_repo_digest(store: Store, ref: Reference, image_id: str) -> None:
    """Remember ``repo@digest`` (from a pull or push) for an image."""
    if not ref.digest:
        raise ReferenceError_(f"{ref} has no digest")
    key = str(ref.with_digest(ref.digest))
    store.refs.update(lambda _tags, digests: digests.__setitem__(key, image_id))


def remove(store: Store, name_or_id: str, *, force: bool = False) -> list[Removal]:
    """Untag, and delete the image when nothing names it any more (docker's rmi)."""
    with store.lock():
        table = store.refs.load()
        record = resolve(store, name_or_id, table)
        tags, digests = table.names_for(record.id)
        names = tags + digests
        key = _name_given(name_or_id, names)
        users = _containers_using(store, record.id)
        if key is not None:
            if users and not force and names == [key]:
                raise ImageError(f'conflict: unable to remove repository reference '
                                 f'"{name_or_id}" (must force) - container {users[0][:12]} is '
                                 f"using its referenced image {record.id[7:19]}")
            return _untag(store, record, key, keep=bool(users))
        if not force and len({parse_reference(n).name for n in names}) > 1:
            raise ImageError(f"conflict: unable to delete {record.id[7:19]} (must be forced) - "
                             "image is referenced in multiple repositories")
        if users and not force:
            raise ImageError(f"conflict: unable to delete {record.id[7:19]} (must be forced) - "
                             f"image is being used by stopped container {users[0][:12]}")
        if users:  # forced: the names go, the image stays for its containers (as docker)
            return _drop_names(store, names)
        return _delete(store, record, names)


def _name_given(name_or_id: str, names: list[str]) -> str | None:
    """The image's name ``name_or_id`` spells, or None when it is the id: an id prefix such
    as ``0123abcd`` parses as a name too, but not one of this image's."""
    ref = _try_reference(name_or_id)
    key = str(ref.normalized()) if ref is not None else None
    return key if key in names else None


def _containers_using(store: Store, image_id: str) -> list[str]:
    """The containers whose image this is (each keeps a gc root ``container-<id>``)."""
    return [name.removeprefix("container-") for name, blobs, _chains in store.gc_roots()
            if name.startswith("container-") and image_id in blobs]


def _untag(store: Store, record: ImageRecord, key: str, *, keep: bool = False) -> list[Removal]:
    out = [Removal("Untagged", parse_reference(key).familiar())]
    repo = parse_reference(key).name

    def change(tags: dict[str, str], digests: dict[str, str]) -> None:
        tags.pop(key, None)
        digests.pop(key, None)
        if not any(parse_reference(t).name == repo for t, i in tags.items() if i == record.id):
            for name in [d for d, i in digests.items() if i == record.id]:
                if parse_reference(name).name == repo:
                    del digests[name]
                    out.append(Removal("Untagged", parse_reference(name).familiar()))

    table = store.refs.update(change)
    if record.id not in table.targets() and not keep and not _children(store, record.id):
        out += _delete(store, record, [])  # with children it stays, as an intermediate image
    return out


def _children(store: Store, image_id: str) -> list[str]:
    return [r.id for r in store.records.list() if r.parent == image_id]


def _delete(store: Store, record: ImageRecord, names: list[str]) -> list[Removal]:
    if _children(store, record.id):
        raise ImageError(f"conflict: unable to delete {record.id[7:19]} (cannot be forced) - "
                         "image has dependent child images")
    out = _drop_names(store, names)
    store.records.delete(record.id)  # after the names, so no name ever points at nothing
    return out + [Removal("Deleted", record.id)]


def _drop_names(store: Store, names: list[str]) -> list[Removal]:
    """Untag all of ``names`` (tags and digests) in one refs update, each reported once."""
    doomed = set(names)

    def change(tags: dict[str, str], digests: dict[str, str]) -> None:
        for table in (tags, digests):
            for name in [n for n in table if n in doomed]:
                del table[name]

    if doomed:
        store.refs.update(change)
    return [Removal("Untagged", parse_reference(n).familiar()) for n in names]


def in_use(store: Store) -> set[str]:
    """Image ids other owners (containers, ...) registered as gc roots."""
    return {d for _name, blobs, _chains in store.gc_roots() for d in blobs
            if store.records.has(d)}


def prune(store: Store, *, all_images: bool = False) -> GcResult:
    """Remove dangling images (untagged, not a parent), or with ``all_images`` every image no
    container uses; then collect what they held."""
    removed = []
    with store.lock():
        table = store.refs.load()
        named = table.targets()
        keep = in_use(store)
        records = store.records.list()
        parents = {r.parent for r in records if r.parent}
        for record in records:
            if record.id in keep or (not all_images and (record.id in named
                                                          or record.id in parents)):
                continue
            tags, digests = table.names_for(record.id)
            store.refs.update(lambda t, d, names=set(tags + digests): [
                table_.pop(n, None) for table_ in (t, d) for n in names])
            store.records.delete(record.id)
            removed.append(record.id)
    from pybuild.store.gc import GcResult, collect

    result = collect(store)
    return GcResult(result.blobs, result.layers, result.reclaimed, tuple(removed))
