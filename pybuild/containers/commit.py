"""``commit`` and ``diff``: what a container changed, as a layer on its image or as a list.

The container's overlay upper dir holds exactly its changes (the sandbox removes the mount
points it had to make once the container stops), so it is written as a layer the way a RUN
step's is, whiteouts included.
"""

from __future__ import annotations

from dataclasses import replace

from pybuild.containers.model import ContainerConfig
from pybuild.store import Store
from pybuild.store.records import ImageRecord, LayerRef


def commit(store: Store, config: ContainerConfig, reference: str | None = None, *,
           changes: tuple[str, ...] = (), message: str = "", author: str = "") -> ImageRecord:
    """A new image: the container's image plus its changes as one layer, with ``changes``
    (Dockerfile instructions, as ``import --change``) applied to the config."""
    from pybuild.containers.lifecycle import dirs_of
    from pybuild.image.changes import apply_changes
    from pybuild.image.config import HistoryEntry, ImageConfig, created_now
    from pybuild.image.reference import parse as parse_reference
    from pybuild.layers.create import write_layer_from_tree

    base = store.records.get(config.image_id)
    image = ImageConfig.from_bytes(store.blobs.read_bytes(base.id))
    upper = dirs_of(store).path(config.id) / "upper"
    ref = parse_reference(reference).normalized() if reference else None
    with store.writing():
        with store.blobs.writer() as out:
            info = write_layer_from_tree(upper, out, upper=True)
            blob = out.commit(info.diff_id, info.size)
        created = created_now()
        new = replace(
            image, created=created, author=author or image.author,
            config=apply_changes(image.config, list(changes)),
            diff_ids=(*image.diff_ids, blob.digest),
            history=(*image.history, HistoryEntry(created=created, author=author,
                                                  created_by=" ".join(config.args),
                                                  comment=message)))
        with store.lock():
            record = store.commit_image(new.to_bytes(),
                                        [*base.layers, LayerRef(blob.digest, blob.size)],
                                        parent=base.id)
            if ref is not None:
                store.refs.update(lambda tags, _d: tags.__setitem__(str(ref), record.id))
    return record


def diff(store: Store, config: ContainerConfig) -> list[tuple[str, str]]:
    """docker diff's (kind, path): A added, C changed (a directory written into, or a file
    replaced), D deleted."""
    from pathlib import Path

    from pybuild.build.rootfs import RootfsView
    from pybuild.containers.lifecycle import dirs_of
    from pybuild.layers.walk import WHITEOUT_PREFIX, walk_tree

    view = RootfsView([Path(p) for p in reversed(config.lowerdirs)])
    out = []
    for node in walk_tree(dirs_of(store).path(config.id) / "upper", upper=True):
        path = "/" + node.path.decode(errors="surrogateescape")
        if node.kind == "opaque":
            continue
        if node.kind == "whiteout":
            head, _, name = path.rpartition("/")
            out.append(("D", f"{head}/{name.removeprefix(WHITEOUT_PREFIX.decode())}"))
        else:
            out.append(("C" if view.lookup(path) is not None else "A", path))
    return sorted(out, key=lambda row: row[1])
