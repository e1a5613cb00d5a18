"""Build events and their renderers."""

from __future__ import annotations

import dataclasses
import io
import json
import re

import pytest

from pybuild.errors import UsageError
from pybuild.progress import (
    BuildDone,
    BuildReplayed,
    BuildStarted,
    BuildWarning,
    CacheMiss,
    JsonRenderer,
    LogLine,
    PlainRenderer,
    QuietRenderer,
    StepCached,
    StepDone,
    StepFailed,
    StepStarted,
    TtyRenderer,
    make_renderer,
)

EVENTS = [
    BuildStarted("ctx", "Dockerfile", 3),
    StepStarted(1, "", 1, 3, "FROM busybox"),
    StepDone(1, 0.04),
    StepStarted(2, "", 2, 3, "COPY . ./"),
    StepCached(2),
    StepStarted(3, "", 3, 3, "RUN make"),
    CacheMiss(3, "build arg APP_VERSION changed"),
    LogLine(3, "stdout", b"cc -o app\nlinking", 0.125),
    LogLine(3, "stdout", b" app\n", 0.25),
    StepDone(3, 0.4),
    BuildWarning("JSONArgsRecommended: use JSON for CMD", "Dockerfile", 5),
    BuildDone("sha256:abc", ("localhost/app:latest",), 1.2),
]


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def render(renderer, events=EVENTS) -> str:
    for event in events:
        renderer(event)
    return renderer.stream.getvalue()


def test_events_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        EVENTS[2].seconds = 1  # type: ignore[misc]


def test_plain_is_buildkit_style():
    out = render(PlainRenderer(io.StringIO(), clock=FakeClock()))
    assert out == (
        "#1 [1/3] FROM busybox\n#1 DONE 0.0s\n\n"
        "#2 [2/3] COPY . ./\n#2 CACHED\n\n"
        "#3 [3/3] RUN make\n#3 cache miss: build arg APP_VERSION changed\n"
        "#3 0.125 cc -o app\n#3 0.250 linking app\n#3 DONE 0.4s\n"
        "WARNING: JSONArgsRecommended: use JSON for CMD (Dockerfile:5)\n\n"
        "#4 exporting to image\n#4 writing image sha256:abc done\n"
        "#4 naming to localhost/app:latest done\n")


def test_plain_stage_names_clock_times_and_failures():
    clock = FakeClock()
    r = PlainRenderer(io.StringIO(), clock=clock)
    r(StepStarted(7, "builder", 2, 5, "RUN false", cached=False))
    clock.now += 0.5
    r(LogLine(7, "stderr", "half a line"))  # no newline yet: held back until the step ends
    r(StepFailed(7, 'process "/bin/sh -c false" did not complete successfully: exit code: 1',
                 ("0.5 half a line",)))
    assert r.stream.getvalue() == (
        "#7 [builder 2/5] RUN false\n#7 0.500 half a line\n"
        '#7 ERROR: process "/bin/sh -c false" did not complete successfully: exit code: 1\n'
        "------\n > [builder 2/5] RUN false:\n0.5 half a line\n------\n")


def test_cached_flag_on_start_prints_cached():
    out = render(PlainRenderer(io.StringIO()), [StepStarted(2, "", 2, 3, "COPY a b", True)])
    assert out == "#2 [2/3] COPY a b\n#2 CACHED\n"


def test_json_is_one_object_per_line():
    lines = render(JsonRenderer(io.StringIO())).splitlines()
    docs = [json.loads(line) for line in lines]
    assert len(docs) == len(EVENTS)
    assert docs[1] == {"event": "step_started", "step": 1, "stage": "", "index": 1, "total": 3,
                       "text": "FROM busybox", "cached": False}
    assert docs[7]["event"] == "log_line" and docs[7]["data"] == "cc -o app\nlinking"
    assert docs[-1] == {"event": "build_done", "image_id": "sha256:abc",
                        "tags": ["localhost/app:latest"], "seconds": 1.2}


def test_quiet_prints_only_the_image_id_or_the_failure():
    assert render(QuietRenderer(io.StringIO())) == "sha256:abc\n"
    failed = [StepStarted(1, "", 1, 1, "RUN x"), StepFailed(1, "exit code: 2", ("boom",))]
    assert render(QuietRenderer(io.StringIO()), failed) == "boom\n"


def screen(raw: str) -> list[str]:
    """What a terminal shows after ``raw``: handles the renderer's \\r, ESC[nF and ESC[J."""
    lines: list[str] = [""]
    row = 0
    for token in re.split(r"(\x1b\[\d*[FJ]|\r|\n)", raw):
        if token == "\n":
            row += 1
            if row == len(lines):
                lines.append("")
        elif token == "\r":
            pass
        elif token.startswith("\x1b[") and token.endswith("F"):
            row -= int(token[2:-1] or 1)
        elif token == "\x1b[J":
            del lines[row + 1:]
            lines[row] = ""
        elif token:
            lines[row] += token
    return [line.rstrip() for line in lines if line.strip()]


def test_tty_redraws_live_area_and_leaves_a_compact_log():
    clock = FakeClock()
    r = TtyRenderer(io.StringIO(), clock=clock, width=60, log_lines=2)
    for event in EVENTS[:8]:
        r(event)
    live = screen(r.stream.getvalue())
    assert live[-2].startswith(" => [3/3] RUN make") and live[-1] == " => => # cc -o app"
    assert "\x1b[" in r.stream.getvalue()
    assert all(len(line) < 60 for line in r._live_lines())  # never wraps: cursor math holds
    for event in EVENTS[8:]:
        r(event)
    final = screen(r.stream.getvalue())
    assert [re.sub(r"\s+", " ", line) for line in final] == [
        " => [1/3] FROM busybox 0.0s",
        " => CACHED [2/3] COPY . ./ 0.0s",
        " => [3/3] RUN make 0.4s",
        "WARNING: JSONArgsRecommended: use JSON for CMD (Dockerfile:5)",
        " => exporting to image 0.0s",
        " => => writing image sha256:abc",
        " => => naming to localhost/app:latest",
        "[+] Building 1.2s (3/3) FINISHED",
    ]


def test_make_renderer_modes():
    assert isinstance(make_renderer("auto", io.StringIO()), PlainRenderer)
    assert isinstance(make_renderer("tty", io.StringIO()), PlainRenderer)  # not a terminal
    assert isinstance(make_renderer("plain", io.StringIO()), PlainRenderer)
    assert isinstance(make_renderer("quiet", io.StringIO()), QuietRenderer)
    assert isinstance(make_renderer("json", io.StringIO()), JsonRenderer)

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert isinstance(make_renderer("auto", Terminal()), TtyRenderer)
    with pytest.raises(UsageError):
        make_renderer("fancy", io.StringIO())


def test_tty_tick_moves_the_clock_without_new_lines():
    clock = FakeClock()
    r = TtyRenderer(io.StringIO(), clock=clock, width=60)
    r(StepStarted(1, "", 1, 1, "RUN sleep 3"))
    clock.now += 2.5
    r.tick()
    shown = screen(r.stream.getvalue())
    assert shown[0] == "[+] Building 2.5s (0/1)" and shown[1].endswith("2.5s") and len(shown) == 2


def test_an_answered_build_renders_as_the_early_answer_prints_it():
    from pybuild.cache.replay import REPLAYED, summary

    events = [BuildStarted("ctx", "Dockerfile"), BuildReplayed("sha256:abc"),
              BuildDone("sha256:abc", ("a:1", "b"), 0.01)]
    plain = render(PlainRenderer(io.StringIO(), FakeClock()), events)
    assert plain == summary("sha256:abc", ["a:1", "b"])
    assert REPLAYED in render(TtyRenderer(io.StringIO(), FakeClock()), events)
    assert render(QuietRenderer(io.StringIO()), events) == "sha256:abc\n"
    assert '"event":"build_replayed"' in render(JsonRenderer(io.StringIO()), events)
