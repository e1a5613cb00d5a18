"""``pybuild pull``, ``pybuild push`` and ``pybuild manifest inspect``, in docker's words."""

from __future__ import annotations

import sys
from typing import Any, TextIO

import click

from pybuild.cli.common import get_client

_BAR = 40


class LayerRenderer:
    """Pull and push events as docker prints them: a line per layer state off a terminal, or
    one live row per layer (with a bar while bytes move) on one."""

    def __init__(self, stream: TextIO, *, live: bool | None = None):
        self.stream = stream
        self.live = stream.isatty() if live is None else live
        self.rows: dict[str, str] = {}
        self.drawn = 0

    def __call__(self, event: Any) -> None:
        from pybuild.registry.events import BlobProgress, line

        if not isinstance(event, BlobProgress):
            self._permanent(event.message)
            return
        if not self.live:
            text = line(event)
            if text is not None:
                self._write(text + "\n")
            return
        self.rows[event.short] = f"{event.short}: {event.status}{_bar(event)}"
        self._redraw()

    def _permanent(self, text: str) -> None:
        if self.live and self.drawn:
            self._redraw()
        self._write(text + "\n")
        if self.live:
            self.rows, self.drawn = {}, 0

    def _redraw(self) -> None:
        up = f"\x1b[{self.drawn}A" if self.drawn else ""
        self._write(up + "".join(f"\x1b[2K{row}\n" for row in self.rows.values()))
        self.drawn = len(self.rows)

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


def _bar(event: Any) -> str:
    from pybuild.registry.events import PROGRESS_STATES

    if event.status not in PROGRESS_STATES or not event.total:
        return ""
    from pybuild.cli.common import human_size

    done = min(_BAR, _BAR * event.current // event.total)
    arrow = "=" * max(done - 1, 0) + (">" if done < _BAR else "=")
    return (f" [{arrow:<{_BAR}}] {human_size(event.current)}/{human_size(event.total)}")


@click.command("pull")
@click.argument("name")
@click.option("--platform", default=None, help="os/arch[/variant] to pull from an index.")
@click.option("-a", "--all-tags", "all_tags", is_flag=True,
              help="Download all tagged images in the repository.")
@click.option("-q", "--quiet", is_flag=True, help="Suppress verbose output.")
@click.pass_context
def pull_command(ctx: click.Context, name: str, platform: str | None, all_tags: bool,
                 quiet: bool) -> None:
    """Download an image from a registry."""
    from pybuild.image.reference import parse

    ref = parse(name)
    if not quiet and not all_tags and not ref.tag and not ref.digest:
        click.echo("Using default tag: latest")
    render = None if quiet else LayerRenderer(sys.stdout)
    get_client(ctx).images.pull(name, platform=platform, all_tags=all_tags, on_event=render)
    click.echo(ref.name if all_tags else str(ref.normalized()))


@click.command("push")
@click.argument("name")
@click.option("-a", "--all-tags", "all_tags", is_flag=True,
              help="Push all tags of the repository.")
@click.option("-q", "--quiet", is_flag=True, help="Suppress verbose output.")
@click.pass_context
def push_command(ctx: click.Context, name: str, all_tags: bool, quiet: bool) -> None:
    """Upload an image to a registry."""
    render = None if quiet else LayerRenderer(sys.stdout)
    pushed = get_client(ctx).images.push(name, all_tags=all_tags, on_event=render)
    for item in pushed if quiet else ():  # otherwise the last event said it
        click.echo(item.reference)


@click.group("manifest")
def manifest_group() -> None:
    """Inspect the manifest of a remote image."""


@manifest_group.command("inspect")
@click.argument("name")
def inspect_command(name: str) -> None:
    """Print the raw manifest or index NAME names in its registry."""
    from pybuild.registry.remote import remote_manifest

    raw = remote_manifest(name).raw
    click.echo(raw.decode("utf-8", "replace").rstrip("\n"))
