"""What a failed build's :class:`~pybuild.errors.BuildError` carries: the step, the exit status
of its process and the end of its log, gathered from the events the build emitted."""

from __future__ import annotations

import re

from pybuild import progress as ev
from pybuild.errors import BuildError

# runstep words a failed RUN as BuildKit does: '... did not complete successfully: exit code: 2'
_EXIT = re.compile(r"exit code: (\d+)$")


class StepWatch:
    """An event handler in front of the caller's that keeps the failed step's details, so
    :meth:`annotate` can put them on the error the executor raises for it."""

    def __init__(self, emit: ev.EventHandler):
        self.emit = emit
        self.texts: dict[int, str] = {}
        self.failed: ev.StepFailed | None = None

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.StepStarted):
            self.texts[event.step] = event.text
        elif isinstance(event, ev.StepFailed):
            self.failed = event
        self.emit(event)

    def annotate(self, err: BuildError) -> None:
        failed = self.failed
        if failed is None or err.step is not None:
            return
        err.step = self.texts.get(failed.step)
        err.log_tail = err.log_tail or failed.log_tail
        err.returncode = _returncode(err)


def _returncode(err: BaseException) -> int | None:
    """The exit status of the failed process: from the first error in the chain that has one
    (the executor re-raises the step's error with the Dockerfile line in front), else from
    the message."""
    seen: BaseException | None = err
    while seen is not None:
        code = getattr(seen, "returncode", None)
        if isinstance(code, int):
            return code
        found = _EXIT.search(str(seen))
        if found:
            return int(found.group(1))
        seen = seen.__context__
    return None
