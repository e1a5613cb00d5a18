"""Build progress: typed events the library emits, and the renderers the CLI writes them with.

The library only calls an ``on_event`` callback; it never prints. A renderer is a callable
taking one event. ``make_renderer`` picks one the way ``docker build --progress`` does:
``auto`` is ``tty`` on a terminal and ``plain`` elsewhere.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TextIO, Union

from pybuild.errors import UsageError
from pybuild.registry.events import BlobProgress, PlainLines, RegistryStatus, TtyLines


@dataclass(frozen=True)
class BuildStarted:
    context: str = ""
    dockerfile: str = ""
    total_steps: int = 0


@dataclass(frozen=True)
class StepStarted:
    """``step`` numbers steps across the build (BuildKit's ``#N``); ``index``/``total`` count
    within the stage; ``stage`` is "" for a single-stage build."""

    step: int
    stage: str
    index: int
    total: int
    text: str
    cached: bool = False


@dataclass(frozen=True)
class StepCached:
    step: int


@dataclass(frozen=True)
class CacheMiss:
    step: int
    reason: str


@dataclass(frozen=True)
class LogLine:
    """Output of a step; ``data`` may hold several lines or a partial one.

    ``seconds`` is the time since the step started, when the emitter knows it.
    """

    step: int
    stream: str  # "stdout" | "stderr"
    data: bytes | str
    seconds: float | None = None

    @property
    def text(self) -> str:
        if isinstance(self.data, bytes):
            return self.data.decode("utf-8", "replace")
        return self.data


@dataclass(frozen=True)
class StepDone:
    step: int
    seconds: float


@dataclass(frozen=True)
class StepFailed:
    step: int
    error: str
    log_tail: tuple[str, ...] = ()


@dataclass(frozen=True)
class BuildWarning:
    message: str
    file: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class BuildReplayed:
    """Nothing that could change the image moved since a recorded build of the same request,
    so its image is the answer and no step runs; BuildDone follows."""

    image_id: str


@dataclass(frozen=True)
class BuildDone:
    image_id: str
    tags: tuple[str, ...] = ()
    seconds: float = 0.0


# Every event a build emits; a handler can match on it exhaustively.
Event = Union[BuildStarted, StepStarted, StepCached, CacheMiss, LogLine, StepDone,  # noqa: UP007
              StepFailed, BuildWarning, BuildReplayed, BuildDone, RegistryStatus, BlobProgress]
# What ``on_event`` takes: the library calls it in the building thread, as events happen.
EventHandler = Callable[[Event], None]
Renderer = EventHandler  # a handler that writes the events to a stream


def step_label(event: StepStarted) -> str:
    """BuildKit's ``[stage 2/9] RUN make`` (``[2/9]`` without a stage name)."""
    where = f"{event.stage} " if event.stage else ""
    return f"[{where}{event.index}/{event.total}] {event.text}"


def _where(event: BuildWarning) -> str:
    if event.file and event.line:
        return f" ({event.file}:{event.line})"
    if event.line:
        return f" (line {event.line})"
    return f" ({event.file})" if event.file else ""


@dataclass
class _Step:
    label: str
    started: float
    cached: bool = False
    partial: dict[str, str] = field(default_factory=dict)  # stream -> unfinished line


class _Lines:
    """Splits log chunks into whole lines per step and stream, keeping unfinished tails."""

    @staticmethod
    def split(step: _Step, event: LogLine) -> list[str]:
        text = step.partial.pop(event.stream, "") + event.text.replace("\r\n", "\n")
        lines = text.split("\n")
        if lines[-1]:
            step.partial[event.stream] = lines[-1]
        return lines[:-1]

    @staticmethod
    def flush(step: _Step) -> list[str]:
        rest = [v for v in step.partial.values() if v]
        step.partial.clear()
        return rest


class PlainRenderer(PlainLines):
    """BuildKit's ``--progress=plain``: ``#3 [2/9] RUN make``, ``#3 0.123 line``, ..."""

    def __init__(self, stream: TextIO, clock: Callable[[], float] = time.monotonic):
        self.stream = stream
        self.clock = clock
        self.steps: dict[int, _Step] = {}
        self.last_step = 0

    def _write(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def __call__(self, event: Event) -> None:
        handler = getattr(self, "_on_" + type(event).__name__, None)
        if handler is not None:
            handler(event)

    def _on_StepStarted(self, e: StepStarted) -> None:  # noqa: N802
        if self.steps:
            self._write("")
        self.steps[e.step] = _Step(step_label(e), self.clock(), e.cached)
        self.last_step = max(self.last_step, e.step)
        self._write(f"#{e.step} {step_label(e)}")
        if e.cached:
            self._write(f"#{e.step} CACHED")

    def _on_StepCached(self, e: StepCached) -> None:  # noqa: N802
        self._write(f"#{e.step} CACHED")

    def _on_CacheMiss(self, e: CacheMiss) -> None:  # noqa: N802
        self._write(f"#{e.step} cache miss: {e.reason}")

    def _on_LogLine(self, e: LogLine) -> None:  # noqa: N802
        step = self._step(e.step)
        secs = e.seconds if e.seconds is not None else self.clock() - step.started
        for line in _Lines.split(step, e):
            self._write(f"#{e.step} {secs:.3f} {line}")

    def _flush(self, number: int) -> None:
        step = self._step(number)
        for line in _Lines.flush(step):
            self._write(f"#{number} {self.clock() - step.started:.3f} {line}")

    def _on_StepDone(self, e: StepDone) -> None:  # noqa: N802
        self._flush(e.step)
        self._write(f"#{e.step} DONE {e.seconds:.1f}s")

    def _on_StepFailed(self, e: StepFailed) -> None:  # noqa: N802
        self._flush(e.step)
        self._write(f"#{e.step} ERROR: {e.error}")
        self._write(failure_summary(self._step(e.step).label, e))

    def _on_BuildWarning(self, e: BuildWarning) -> None:  # noqa: N802
        self._write(f"WARNING: {e.message}{_where(e)}")

    def _on_BuildReplayed(self, e: BuildReplayed) -> None:  # noqa: N802
        from pybuild.cache.replay import REPLAYED  # the fast path prints the same words

        self.last_step += 1
        self._write(f"#{self.last_step} {REPLAYED}\n#{self.last_step} DONE 0.0s")

    def _on_BuildDone(self, e: BuildDone) -> None:  # noqa: N802
        n = self.last_step + 1
        lines = ["", f"#{n} exporting to image", f"#{n} writing image {e.image_id} done"]
        lines += [f"#{n} naming to {tag} done" for tag in e.tags]
        self._write("\n".join(lines))

    def _step(self, number: int) -> _Step:
        if number not in self.steps:
            self.steps[number] = _Step(f"step {number}", self.clock())
        return self.steps[number]


def failure_summary(label: str, e: StepFailed) -> str:
    """The block BuildKit prints after a failed step: its label and the end of its log."""
    body = [f" > {label}:"] + list(e.log_tail)
    return "\n".join(["------", *body, "------"])


class QuietRenderer:
    """``--quiet``: the image id at the end; a failed step's log so the error makes sense."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def __call__(self, event: Event) -> None:
        if isinstance(event, BuildDone):
            self.stream.write(event.image_id + "\n")
        elif isinstance(event, StepFailed) and event.log_tail:
            self.stream.write("\n".join(event.log_tail) + "\n")
        else:
            return
        self.stream.flush()


def event_name(event: Event) -> str:
    """``StepStarted`` -> ``step_started``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(event).__name__).lower()


class JsonRenderer:
    """One JSON object per line: ``{"event": "step_done", "step": 3, "seconds": 0.4}``."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def __call__(self, event: Event) -> None:
        doc = {"event": event_name(event), **asdict(event)}
        if isinstance(event, LogLine):
            doc["data"] = event.text
        self.stream.write(json.dumps(doc, separators=(",", ":"), ensure_ascii=False) + "\n")
        self.stream.flush()


class TtyRenderer(TtyLines):
    """A compact live view for terminals.

    Finished steps stay on screen as one line each; below them a live area (a header and
    each running step with its last few log lines) is redrawn in place: move the cursor up
    over the old live area, clear to the end of the screen, print. Lines are cut to the
    terminal width so a wrapped line never breaks that arithmetic.
    """

    def __init__(self, stream: TextIO, clock: Callable[[], float] = time.monotonic,
                 width: int = 80, log_lines: int = 6):
        self.stream = stream
        self.clock = clock
        self.width = max(width, 20)
        self.started = clock()
        self.steps: dict[int, _Step] = {}
        self.active: dict[int, deque[str]] = {}
        self.log_lines = log_lines
        self.done = 0
        self.finished = False
        self.live = 0  # lines of the live area now on screen

    def __call__(self, event: Event) -> None:
        handler = getattr(self, "_on_" + type(event).__name__, None)
        permanent = handler(event) if handler is not None else []
        self._redraw(permanent)

    def tick(self) -> None:
        """Redraw the live area so its clocks move during a step that prints nothing (the
        CLI may call this from a timer; events alone would leave the times frozen)."""
        self._redraw([])

    def _row(self, text: str, seconds: float) -> str:
        secs = f"{seconds:.1f}s"
        room = self.width - len(secs) - 2
        return f"{text[:room]:<{room}} {secs}"

    def _on_StepStarted(self, e: StepStarted) -> list[str]:  # noqa: N802
        self.steps[e.step] = _Step(step_label(e), self.clock(), e.cached)
        if e.cached:
            self.done += 1
            return [self._row(f" => CACHED {step_label(e)}", 0.0)]
        self.active[e.step] = deque(maxlen=self.log_lines)
        return []

    def _on_StepCached(self, e: StepCached) -> list[str]:  # noqa: N802
        self.active.pop(e.step, None)
        self.done += 1
        return [self._row(f" => CACHED {self._label(e.step)}", 0.0)]

    def _on_LogLine(self, e: LogLine) -> list[str]:  # noqa: N802
        step = self.steps.setdefault(e.step, _Step(f"step {e.step}", self.clock()))
        self.active.setdefault(e.step, deque(maxlen=self.log_lines)).extend(
            _Lines.split(step, e))
        return []

    def _on_StepDone(self, e: StepDone) -> list[str]:  # noqa: N802
        self.active.pop(e.step, None)
        self.done += 1
        return [self._row(f" => {self._label(e.step)}", e.seconds)]

    def _on_StepFailed(self, e: StepFailed) -> list[str]:  # noqa: N802
        self.active.pop(e.step, None)
        step = self.steps.get(e.step)
        took = self.clock() - step.started if step else 0.0
        label = self._label(e.step)
        return [self._row(f" => ERROR {label}", took), f"ERROR: {e.error}",
                failure_summary(label, e)]

    def _on_BuildWarning(self, e: BuildWarning) -> list[str]:  # noqa: N802
        return [f"WARNING: {e.message}{_where(e)}"]

    def _on_BuildReplayed(self, e: BuildReplayed) -> list[str]:  # noqa: N802
        from pybuild.cache.replay import REPLAYED

        return [self._row(f" => {REPLAYED}", 0.0)]

    def _on_BuildDone(self, e: BuildDone) -> list[str]:  # noqa: N802
        self.finished = True
        lines = [self._row(" => exporting to image", 0.0),
                 f" => => writing image {e.image_id}"]
        lines += [f" => => naming to {tag}" for tag in e.tags]
        lines.append(f"[+] Building {e.seconds:.1f}s ({self.done}/{len(self.steps)}) FINISHED")
        return lines

    def _label(self, number: int) -> str:
        step = self.steps.get(number)
        return step.label if step else f"step {number}"

    def _live_lines(self) -> list[str]:
        if self.finished:
            return []
        now = self.clock()
        lines = [f"[+] Building {now - self.started:.1f}s ({self.done}/{len(self.steps)})"]
        for number, logs in self.active.items():
            lines.append(self._row(f" => {self._label(number)}",
                                   now - self.steps[number].started))
            lines += [f" => => # {line}"[: self.width - 1] for line in logs]
        return lines

    def _redraw(self, permanent: list[str]) -> None:
        out = [f"\x1b[{self.live}F" if self.live else "\r", "\x1b[J"]
        out += [line + "\n" for line in permanent]
        live = self._live_lines()
        out += [line + "\n" for line in live]
        self.live = len(live)
        self.stream.write("".join(out))
        self.stream.flush()


MODES = ("auto", "tty", "plain", "quiet", "json")


def make_renderer(mode: str, stream: TextIO) -> Renderer:
    """The renderer for ``--progress MODE``; ``tty`` falls back to plain off a terminal."""
    if mode not in MODES:
        raise UsageError(f"invalid progress mode {mode!r}: expected one of {', '.join(MODES)}")
    if mode == "quiet":
        return QuietRenderer(stream)
    if mode == "json":
        return JsonRenderer(stream)
    is_tty = getattr(stream, "isatty", lambda: False)()
    if mode in ("auto", "tty") and is_tty:
        return TtyRenderer(stream, width=shutil.get_terminal_size().columns)
    return PlainRenderer(stream)
