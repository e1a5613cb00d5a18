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

    A request whose every input is as a recorded build found it is answered with that
    build's image at once (:mod:`pybuild.build.unchanged`; events BuildStarted,
    BuildReplayed, BuildDone). A failed step raises :class:`~pybuild.errors.BuildError` with
    the step, its exit status and the end of its log."""
    from pybuild import progress as ev
    from pybuild.build import unchanged

    emit = on_event or (lambda event: None)
    started = time.monotonic()
    _check_options(options)
    if not os.path.isdir(options.context):
        raise ContextError(f"unable to prepare context: path {options.context!r} not found")
    keyed = unchanged.fields(options)
    answered = unchanged.answer(store, options, keyed) if keyed is not None else None
    if answered is not None and keyed is not None:
        emit(ev.BuildStarted(keyed["context"], os.path.basename(keyed["dockerfile"])))
        emit(ev.BuildReplayed(answered.image_id))
    else:
        answered = _build(store, options, emit, keyed)
    emit(ev.BuildDone(answered.image_id, answered.tags, time.monotonic() - started))
    return answered


def _build(store: Store, options: BuildOptions, emit: EventHandler, keyed: dict | None
           ) -> BuildResult:
    """Every step, each from the step cache or run; recorded for the no-change answer when
    ``keyed`` (the request's replay fields) is given."""
    from pybuild import progress as ev
    from pybuild.build import unchanged
    from pybuild.build.executor import Executor
    from pybuild.build.finish import commit
    from pybuild.cache.filehashes import FileHashMemo
    from pybuild.dockerfile.parser import parse
    from pybuild.instructions import from_document
    from pybuild.plan.stages import resolve

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
    before = unchanged.snapshot(context.root) if keyed is not None else None
    started_ns = time.time_ns()
    emit(ev.BuildStarted(context.root, name))
    executor = Executor(store, options, stages, context, emit, name)
    executor.escape = doc.escape
    shared = _shared_cache(store, options, executor, emit)
    try:
        # Held from the first layer to the final commit: a concurrent prune must not collect
        # layers no record names yet.
        with store.writing():
            state = executor.run()
            result = commit(store, state, options)
            if shared is not None and options.cache_to:
                from pybuild.cache.shared import export

                export(store, options.cache_to, shared.used, state.key, emit)
    finally:
        executor.cleanup()
        memo.save()
        if shared is not None:
            shared.close()
    if keyed is not None and before is not None:
        unchanged.remember(store, keyed, result.image_id, before, context, started_ns)
    return result


def _shared_cache(store: Store, options: BuildOptions, executor, emit: EventHandler):
    """With --cache-from or --cache-to, the executor's index seen through the imported caches
    and remembering what the build used (pybuild.cache.shared); else None."""
    if not options.cache_from and not options.cache_to:
        return None
    from pybuild.cache.shared import SharedIndex, open_sources

    shared = SharedIndex(executor.index, store, open_sources(options.cache_from, emit), emit)
    executor.index = shared
    return shared


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
