"""Helpers the image and system commands share: the client for ``--root``, docker's units."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from pybuild.client import Client

LOCK_WAIT_MESSAGE = "waiting for the store lock held by another pybuild process..."


def get_client(ctx: click.Context) -> Client:
    """The library client for the root the top-level ``--root`` / PYBUILD_ROOT chose."""
    from pybuild.client import Client
    from pybuild.store.paths import DEFAULT_ROOT

    root = (ctx.find_root().obj or {}).get("root", DEFAULT_ROOT)
    return Client(root, on_wait=lambda: click.echo(LOCK_WAIT_MESSAGE, err=True))


def prune_options(all_help: str) -> Callable[[Callable[..., Any]], Any]:
    """Docker's ``-a/--all`` and ``-f/--force`` for ``image prune`` and ``system prune``,
    and the context; ``all_help`` says what ``--all`` adds to each."""
    def decorate(command: Callable[..., Any]) -> Any:
        command = click.pass_context(command)
        command = click.option("-f", "--force", is_flag=True,
                               help="Do not prompt for confirmation.")(command)
        return click.option("-a", "--all", "all_", is_flag=True, help=all_help)(command)

    return decorate


def confirm_prune(force: bool, warning: str) -> None:
    """Docker's prune prompt on stderr, ``WARNING! <warning>`` then the question; anything
    but yes aborts."""
    if not force:
        click.confirm(f"WARNING! {warning}\nAre you sure you want to continue?", abort=True,
                      err=True)


def short_id(image_id: str, *, trunc: bool = True) -> str:
    """``docker images``' IMAGE ID: 12 hex digits, or the full ``sha256:...`` untruncated."""
    return image_id[7:19] if trunc else image_id


def human_size(size: float) -> str:
    """Docker's units.HumanSizeWithPrecision(size, 3): decimal units, three significant digits."""
    units = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
    i = 0
    while size >= 1000 and i < len(units) - 1:
        size /= 1000.0
        i += 1
    return f"{size:.3g}{units[i]}"


def human_duration(seconds: float) -> str:
    """Docker's units.HumanDuration."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def created_since(created: str) -> str:
    from pybuild.image.config import parse_rfc3339

    epoch = parse_rfc3339(created)
    if epoch is None:
        return "N/A"
    return human_duration(max(0.0, time.time() - epoch)) + " ago"


def created_at(created: str) -> str:
    """Docker's CreatedAt: ``2024-01-02 03:04:05 +0000 UTC``."""
    from pybuild.image.config import parse_rfc3339

    epoch = parse_rfc3339(created)
    if epoch is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(epoch))


def render(template: str, data: Any) -> str:
    """A Go template (``--format``) against ``data``, through pybuild.cli.format.template."""
    from pybuild.cli.format.template import render as go_render

    return go_render(template, data)


def render_rows(fmt: str, rows: list[dict[str, Any]], headers: dict[str, str]) -> str:
    from pybuild.cli.format.template import render_rows as go_rows

    return go_rows(fmt, rows, headers)


def show_inspected(ctx: click.Context, found: list[Any], failed: Exception | None,
                   fmt: str | None) -> None:
    """``inspect``'s ending, as docker's: what was found (a JSON list, or each through a Go
    template), then the last failure as one line and its exit code."""
    import json

    if fmt and fmt != "json":
        for data in found:
            click.echo(render(fmt, data))
    else:
        click.echo(json.dumps(found, indent=4))
    if failed is not None:
        click.echo(f"error: {failed}", err=True)
        ctx.exit(getattr(failed, "exit_code", 1))


def show_list(rows: list[dict[str, Any]], *, quiet: bool, key: str, fmt: str | None,
              table: str, headers: dict[str, str]) -> None:
    """An ``ls``'s output as docker's: ``-q`` the ``key`` column, ``json`` one object a
    line, else the Go template (``table`` when none or "table" is given)."""
    if quiet:
        click.echo("".join(f"{row[key]}\n" for row in rows), nl=False)
    elif fmt == "json":
        click.echo("".join(json_line(row) + "\n" for row in rows), nl=False)
    else:
        click.echo(render_rows(fmt if fmt and fmt != "table" else table, rows, headers),
                   nl=False)


def inspect_group_command(what: str, collection: str) -> click.Command:
    """``<group> inspect NAME...`` for ``client.<collection>``, whose ``get(name).attrs`` is
    the inspect dict: found ones shown, then the last failure (docker shows the others,
    then fails)."""
    from pybuild.errors import PybuildError

    @click.command("inspect", help=f"Show {what} as docker's JSON list, or each through a "
                                   "Go template.")
    @click.argument("names", nargs=-1, required=True)
    @click.option("-f", "--format", "fmt", default=None, help="'json' or a Go template.")
    @click.pass_context
    def command(ctx: click.Context, names: tuple[str, ...], fmt: str | None) -> None:
        items = getattr(get_client(ctx), collection)
        found, failed = [], None
        for name in names:
            try:
                found.append(items.get(name).attrs)
            except PybuildError as err:
                failed = err
        show_inspected(ctx, found, failed, fmt)

    return command


def each(ctx: click.Context, names: tuple[str, ...], action: Callable[[str], None], *,
         prefix: str = "error: ") -> None:
    """docker's way with several names: ``action`` on each in turn, a failure printed as one
    line (after ``prefix``) and the rest still done, then the last failure's exit code."""
    from pybuild.errors import PybuildError

    failed: PybuildError | None = None
    for name in names:
        try:
            action(name)
        except PybuildError as err:
            click.echo(f"{prefix}{err}", err=True)
            failed = err
    if failed is not None:
        ctx.exit(failed.exit_code)


def json_line(data: Any) -> str:
    import json

    return json.dumps(data, separators=(",", ":"))
