"""The end of a build: the image config and manifest written to the store, then the tags."""

from __future__ import annotations

from dataclasses import replace

from pybuild.build.options import BuildOptions, BuildResult
from pybuild.build.state import StageState


def commit(store, executor, state: StageState, options: BuildOptions) -> BuildResult:
    from pybuild.store.images import tag

    config = state.config
    if options.labels:
        config = replace(config, labels={**config.labels, **options.labels})
    image = replace(state.image, config=config, created=state.created,
                    architecture=state.image.architecture or "amd64",
                    os=state.image.os or "linux")
    record = store.commit_image(image.to_bytes(), state.layers, docker=options.docker_format)
    for name in options.tags:
        tag(store, record.id, name)
    return BuildResult(record.id, tuple(options.tags), record.manifest_digest)
