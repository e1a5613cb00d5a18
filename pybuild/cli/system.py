"""``pybuild system``: df, prune, check."""

from __future__ import annotations

import click

from pybuild.cli.common import (
    confirm_prune,
    get_client,
    human_size,
    json_line,
    prune_options,
    render_rows,
)


@click.group("system")
def group() -> None:
    """Manage the store."""


@group.command("df")
@click.option("--format", "fmt", default=None, help="'json', 'table' or a Go template.")
@click.pass_context
def df_command(ctx: click.Context, fmt: str | None) -> None:
    """Show what takes space: images, unpacked layers, build cache, blobs."""
    rows = []
    for row in get_client(ctx).system.df():
        share = f" ({100 * row.reclaimable // row.size}%)" if row.size else ""
        rows.append({"Type": row.kind, "TotalCount": str(row.total), "Active": str(row.active),
                     "Size": human_size(row.size),
                     "Reclaimable": human_size(row.reclaimable) + share})
    if fmt == "json":
        click.echo("".join(json_line(r) + "\n" for r in rows), nl=False)
        return
    fmt = fmt if fmt and fmt != "table" else (
        "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}")
    headers = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
               "Reclaimable": "RECLAIMABLE"}
    click.echo(render_rows(fmt, rows, headers), nl=False)


@group.command("prune")
@prune_options("Also remove every image no container uses, not just dangling ones.")
def prune_command(ctx: click.Context, all_: bool, force: bool) -> None:
    """Remove dangling images, then blobs and unpacked layers no image references."""
    confirm_prune(force, "This will remove:\n  - all dangling images\n"
                         "  - all blobs and unpacked layers no image references")
    result = get_client(ctx).images.prune(all=all_)
    for title, items in (("Deleted Images:", result.images), ("Deleted blobs:", result.blobs),
                         ("Deleted unpacked layers:", result.layers)):
        if items:
            click.echo(title)
            click.echo("".join(f"{item}\n" for item in items))
    click.echo(f"Total reclaimed space: {human_size(result.reclaimed)}")


@group.command("check")
@click.option("--repair", is_flag=True,
              help="Drop broken blobs, records and names, and leftover temp files.")
@click.pass_context
def check_command(ctx: click.Context, repair: bool) -> None:
    """Verify every blob's digest and every record; one line per problem, exit 1 if any."""
    problems = get_client(ctx).system.check(repair=repair)
    for problem in problems:
        click.echo(f"{'removed: ' if repair else ''}{problem}")
    if problems and not repair:
        ctx.exit(1)
