"""The library's side of the no-change answer (:mod:`pybuild.cache.replay`): what a request is
keyed on, the recorded image when nothing moved, and the record a finished build leaves."""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

from pybuild.build.options import BuildOptions, BuildResult
from pybuild.cache import replay
from pybuild.errors import PybuildError

if TYPE_CHECKING:
    from pybuild.context.walk import BuildContext
    from pybuild.store import Store


def request(options: BuildOptions) -> dict | None:
    """The keyword arguments of ``replay.request_fields`` for ``options``, JSON-ready (the
    command-line memo stores them); None for builds never recorded: secrets (their content is
    not part of the key), a Dockerfile from stdin or text, the docker manifest format."""
    if (options.secrets or options.dockerfile == "-" or options.dockerfile_text is not None
            or options.docker_format):
        return None
    return {"context": options.context, "dockerfile": options.dockerfile,
            "tags": list(options.tags), "build_args": dict(options.build_args),
            "target": options.target, "labels": dict(options.labels),
            "platform": options.platform, "network": options.network,
            "source_date_epoch": options.source_date_epoch}


def may_answer(options: BuildOptions) -> bool:
    """Whether an unchanged rerun of ``options`` may be answered from its record: not when
    the cache is to be bypassed. (Such a build is still recorded: it refreshed the cache
    records it passed by, so a cached rebuild gives exactly its image.)"""
    if options.cache_to:  # the export needs the records a real pass through the steps gives
        return False
    if options.pull:  # the registry may have moved a base image on
        return False
    return not options.no_cache and not options.no_cache_filter and request(options) is not None


def fields(options: BuildOptions) -> dict | None:
    req = request(options)
    return replay.request_fields(**req) if req is not None else None


def answer(store: Store, options: BuildOptions, keyed: dict) -> BuildResult | None:
    """The result the recorded build of ``keyed`` gave, if nothing it read has moved."""
    if not may_answer(options):
        return None
    image = replay.lookup(str(store.root), keyed)
    if image is None:
        return None
    try:
        record = store.records.get(image)
    except PybuildError:  # removed or broken since lookup looked: build it
        return None
    return BuildResult(image, tuple(options.tags), record.manifest_digest)


def snapshot(root: str) -> dict | None:
    try:
        return replay.snapshot(root)
    except OSError:
        return None


def remember(store: Store, keyed: dict, image_id: str, before: dict, context: BuildContext,
             started_ns: int) -> None:
    """Record the result for replay, with the content hash of every file whose memo entry
    still matches its stat."""
    from pybuild.context.walk import stat_key

    hashes = {}
    for rel, entry in before.items():
        if entry[0] == 0o100000:
            with contextlib.suppress(OSError):
                key = stat_key(os.lstat(os.path.join(context.root, rel)))
                digest = context.memo.get(rel, key)
                if digest is not None:
                    hashes[rel] = digest
    with contextlib.suppress(OSError):
        replay.remember(str(store.root), keyed, image_id, before, hashes, started_ns)
