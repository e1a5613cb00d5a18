"""The pull/push renderer: docker's lines off a terminal, live rows with a bar on one."""

from __future__ import annotations

import io

from pybuild.cli.registry import LayerRenderer
from pybuild.registry.events import BlobProgress, RegistryStatus

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64


def events():
    return [RegistryStatus("1: Pulling from app"), BlobProgress(A, "Pulling fs layer", 0, 100),
            BlobProgress(B, "Already exists"), BlobProgress(A, "Downloading", 50, 100),
            BlobProgress(A, "Download complete", 100, 100),
            BlobProgress(A, "Pull complete", 100, 100), RegistryStatus("Digest: sha256:x")]


def test_plain_lines_are_dockers_without_the_byte_counts():
    out = io.StringIO()
    render = LayerRenderer(out, live=False)
    for event in events():
        render(event)
    assert out.getvalue() == (
        "1: Pulling from app\naaaaaaaaaaaa: Pulling fs layer\nbbbbbbbbbbbb: Already exists\n"
        "aaaaaaaaaaaa: Download complete\naaaaaaaaaaaa: Pull complete\nDigest: sha256:x\n")


def test_live_rows_redraw_in_place_with_a_bar():
    out = io.StringIO()
    render = LayerRenderer(out, live=True)
    for event in events()[:4]:
        render(event)
    text = out.getvalue()
    assert "\x1b[2A" in text  # back up over the two layer rows
    assert "aaaaaaaaaaaa: Downloading [===================>" in text and "50B/100B" in text
    for event in events()[4:]:
        render(event)
    assert out.getvalue().endswith("aaaaaaaaaaaa: Pull complete\n"
                                   "\x1b[2Kbbbbbbbbbbbb: Already exists\nDigest: sha256:x\n")


def test_a_builds_renderers_show_a_pull():
    from pybuild.progress import JsonRenderer, PlainRenderer, TtyRenderer

    plain, tty, js = io.StringIO(), io.StringIO(), io.StringIO()
    renderers = [PlainRenderer(plain), TtyRenderer(tty), JsonRenderer(js)]
    for event in events():
        for render in renderers:
            render(event)
    assert plain.getvalue().splitlines()[:3] == [
        "1: Pulling from app", "aaaaaaaaaaaa: Pulling fs layer", "bbbbbbbbbbbb: Already exists"]
    assert "Downloading" not in plain.getvalue()
    assert "aaaaaaaaaaaa: Pull complete" in tty.getvalue()
    assert '"event":"blob_progress"' in js.getvalue() and '"current":50' in js.getvalue()
