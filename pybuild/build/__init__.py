"""``pybuild build``: a Dockerfile and a context become an image in the store.

Text -> syntax tree -> typed instructions -> stages -> steps (cache hit, or run) -> layers ->
image config and manifest -> tags. Events go to ``on_event`` as they happen; nothing prints.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

from pybuild.build.options import BuildOptions, BuildResult
from pybuild.errors import BuildError, ContextError, DockerfileError

if TYPE_CHECKING:
    from pybuild.progress import Event, EventHandler
    from pybuild.store import Store

__all__ = ["BuildOptions", "BuildResult", "build", "build_iter"]


def _read_dockerfile(options: BuildOptions) -> tuple[str, str]:
    if options.dockerfile_text is not None:
        return options.dockerfile_text, options.dockerfile or "Dockerfile"
    if options.dockerfile == "-":
        return sys.stdin.read(), "Dockerfile"
    path = options.dockerfile_path()
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ContextError(f"failed to read dockerfile: open {path}: no such file or "
                           "directory") from None
    except OSError as err:
        raise ContextError(f"failed to read dockerfile {path}: {err.strerror}") from None
    return data.decode("utf-8", "surrogateescape"), os.path.basename(path) or "Dockerfile"


def _check_options(options: BuildOptions) -> None:
    from pybuild.build.options import NETWORKS, platform_supported
    from pybuild.errors import UsageError

    if options.platform and not platform_supported(options.platform):
        raise BuildError(f"platform {options.platform} is not supported (only linux/amd64)")
    if options.network not in NETWORKS:
        raise UsageError(f"network {options.network!r} is not supported (use "
                         f"{', '.join(NETWORKS)})")


def _context(options: BuildOptions, memo):
    from pybuild.context.walk import BuildContext

    # BuildKit prefers <Dockerfile>.dockerignore next to a -f Dockerfile
    named = options.dockerfile_path() if options.dockerfile not in (None, "-") else None
    return BuildContext(options.context, memo=memo, dockerfile=named)


def build(store: Store, options: BuildOptions, on_event: EventHandler | None = None
          ) -> BuildResult:
    """Build ``options`` into ``store`` and tag the result.

    A failed step raises :class:`~pybuild.errors.BuildError` with the step, its exit status
    and the end of its log."""
    from pybuild import progress as ev
    from pybuild.build.executor import Executor
    from pybuild.build.failure import StepWatch
    from pybuild.build.finish import commit
    from pybuild.cache.filehashes import FileHashMemo
    from pybuild.dockerfile.parser import parse
    from pybuild.instructions import from_document
    from pybuild.plan.stages import resolve

    emit = on_event or (lambda event: None)
    started = time.monotonic()
    _check_options(options)
    if not os.path.isdir(options.context):
        raise ContextError(f"unable to prepare context: path {options.context!r} not found")
    text, name = _read_dockerfile(options)
    doc = parse(text, file=name)
    try:
        instructions = from_document(doc)
    except DockerfileError as err:
        raise err.located(name) from None
    stages = resolve(instructions, options.build_args, options.target, escape=doc.escape,
                     file=name)
    for arg in stages.unused_build_args:
        emit(ev.BuildWarning(f"build arg {arg} was given but not consumed"))
    memo = FileHashMemo.for_context(store.root / "cache", options.context)
    context = _context(options, memo)
    replayable = _replay_fields(options)
    before = _snapshot(context.root) if replayable else None
    started_ns = time.time_ns()
    emit(ev.BuildStarted(context.root, name))
    watch = StepWatch(emit)
    executor = Executor(store, options, stages, context, watch, name)
    executor.escape = doc.escape
    try:
        # Held from the first layer to the final commit: a concurrent prune must not collect
        # layers no record names yet.
        with store.writing():
            state = executor.run()
            result = commit(store, state, options)
    except BuildError as err:
        watch.annotate(err)
        raise
    finally:
        executor.cleanup()
        memo.save()
    if replayable is not None and before is not None:
        _remember(store, replayable, result.image_id, before, context, started_ns)
    emit(ev.BuildDone(result.image_id, result.tags, time.monotonic() - started))
    return result


def _replay_fields(options: BuildOptions) -> dict | None:
    """What :mod:`pybuild.cache.replay` keys a rerun of this build on; None for builds it must not
    answer (secrets, a Dockerfile from stdin or text). A ``--no-cache`` build is recorded
    too: it refreshed every cache record, so a cached rebuild gives exactly its image."""
    from pybuild.cache.replay import request_fields

    if (options.secrets or options.dockerfile == "-" or options.dockerfile_text is not None
            or options.docker_format):
        return None
    return request_fields(options.context, options.dockerfile, options.tags,
                          dict(options.build_args), options.target, dict(options.labels),
                          options.platform, options.network, options.source_date_epoch)


def _snapshot(root: str) -> dict | None:
    from pybuild.cache.replay import snapshot

    try:
        return snapshot(root)
    except OSError:
        return None


def _remember(store, fields: dict, image_id: str, before: dict, context,
              started_ns: int) -> None:
    """Record the result for replay, with the content hash of every file whose memo entry
    still matches its stat."""
    import contextlib

    from pybuild.cache.replay import remember
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
        remember(str(store.root), fields, image_id, before, hashes, started_ns)


def build_iter(store: Store, options: BuildOptions) -> Iterator[Event]:
    """Run a build in a thread and yield its events as they happen; the last is BuildDone
    (or the build's error is raised)."""
    import queue
    import threading

    events: queue.Queue[Event | None] = queue.Queue()
    failure: list[BaseException] = []

    def work() -> None:
        try:
            build(store, options, events.put)
        except BaseException as err:  # re-raised in the caller's thread
            failure.append(err)
        finally:
            events.put(None)  # the end: no event is None

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    while (item := events.get()) is not None:
        yield item
    thread.join()
    if failure:
        raise failure[0]


def with_defaults(options: BuildOptions) -> BuildOptions:
    """Fill SOURCE_DATE_EPOCH from the environment when the caller did not set it."""
    if options.source_date_epoch is None and os.environ.get("SOURCE_DATE_EPOCH", "").isdigit():
        return replace(options, source_date_epoch=int(os.environ["SOURCE_DATE_EPOCH"]))
    return options
