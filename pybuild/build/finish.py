"""The end of a build: the image config and manifest written to the store, then the tags."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from pybuild.build.options import BuildOptions, BuildResult
from pybuild.image.config import ImageConfig
from pybuild.plan.state import StageState

if TYPE_CHECKING:
    from pybuild.store import Store


def commit(store: Store, state: StageState, options: BuildOptions) -> BuildResult:
    from pybuild.store.images import tag

    config = state.config
    if options.labels:
        config = replace(config, labels={**config.labels, **options.labels})
    image = replace(state.image, config=config, created=state.created,
                    architecture=state.image.architecture or "amd64",
                    os=state.image.os or "linux")
    if options.source_date_epoch is None:
        image = _reuse_created(store, image)
    record = store.commit_image(image.to_bytes(), state.layers, docker=options.docker_format)
    for name in options.tags:
        tag(store, record.id, name)
    return BuildResult(record.id, tuple(options.tags), record.manifest_digest)


def _reuse_created(store: Store, image: ImageConfig) -> ImageConfig:
    """A rebuild that changes nothing gives the same image id, as BuildKit's does: the
    timestamps of the first build with this exact content are kept."""
    import hashlib

    from pybuild.store.fsutil import atomic_write

    now = image.created

    def stamped(created: str) -> ImageConfig:
        history = tuple(replace(h, created=created) if h.created == now else h
                        for h in image.history)
        return replace(image, created=created, history=history)

    blank = stamped("")
    path = store.root / "cache" / "created" / hashlib.sha256(blank.to_bytes()).hexdigest()
    try:
        created = path.read_text()
    except OSError:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, now.encode(), store.tmp)
        return image
    return stamped(created)
