"""``import``, ``images``, ``tag``, ``rmi``, ``inspect``, ``history``: thin click commands."""

from __future__ import annotations

from typing import Any

import click

from pybuild.cli.common import (
    created_at,
    created_since,
    each,
    get_client,
    human_size,
    json_line,
    render_rows,
    short_id,
    show_inspected,
)

IMAGES_HEADERS = {"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID",
                  "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
                  "Digest": "DIGEST"}
HISTORY_HEADERS = {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
                   "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"}


@click.command("import")
@click.argument("source")
@click.argument("reference", required=False)
@click.option("-c", "--change", "changes", multiple=True,
              help="Apply a Dockerfile instruction (CMD, ENV, ...) to the image config.")
@click.option("-m", "--message", default="", help="Commit message for the imported image.")
@click.option("--platform", default=None, help="os/arch[/variant] to record (linux/amd64).")
@click.pass_context
def import_command(ctx: click.Context, source: str, reference: str | None,
                   changes: tuple[str, ...], message: str, platform: str | None) -> None:
    """Import the rootfs tarball SOURCE (a file or - for stdin) as image REFERENCE."""
    from pybuild.image.manifest import DEFAULT_PLATFORM, Platform

    plat = Platform.parse(platform) if platform else DEFAULT_PLATFORM
    image = get_client(ctx).images.import_(source, reference, changes=changes,
                                           message=message, platform=plat)
    click.echo(image.id)


def _image_rows(images: list[Any], *, trunc: bool) -> list[dict[str, Any]]:
    rows = []
    for image in images:
        names = [tag.rsplit(":", 1) for tag in image.tags] or [["<none>", "<none>"]]
        digests = {d.split("@", 1)[0]: d.split("@", 1)[1] for d in image.digests}
        if not image.tags and image.digests:
            names = [[repo, "<none>"] for repo in digests]
        for repo, tag in names:
            size = human_size(image.size)
            rows.append({
                "Containers": "N/A", "CreatedAt": created_at(image.created),
                "CreatedSince": created_since(image.created),
                "Digest": digests.get(repo, "<none>"), "ID": short_id(image.id, trunc=trunc),
                "Repository": repo, "SharedSize": "N/A", "Size": size, "Tag": tag,
                "UniqueSize": "N/A", "VirtualSize": size,
            })
    return rows


@click.command("images")
@click.argument("repository", required=False)
@click.option("-a", "--all", "all_", is_flag=True, help="Show intermediate images too.")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs.")
@click.option("--digests", is_flag=True, help="Show digests.")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output.")
@click.option("-f", "--filter", "filters", multiple=True,
              help="dangling=true|false, label=KEY[=VALUE], reference=PATTERN, before=, since=")
@click.option("--format", "fmt", default=None, help="'json', 'table' or a Go template.")
@click.pass_context
def images_command(ctx: click.Context, repository: str | None, all_: bool, quiet: bool,
                   digests: bool, no_trunc: bool, filters: tuple[str, ...],
                   fmt: str | None) -> None:
    """List images."""
    from pybuild.images.filters import parse_filters

    images = get_client(ctx).images.list(all=all_, name=repository,
                                         filters=parse_filters(filters))
    rows = _image_rows(images, trunc=not no_trunc)
    if quiet:
        seen: list[str] = []
        for row in rows:
            if row["ID"] not in seen:
                seen.append(row["ID"])
        click.echo("".join(f"{i}\n" for i in seen), nl=False)
        return
    if fmt == "json":
        click.echo("".join(json_line(row) + "\n" for row in rows), nl=False)
        return
    if not fmt or fmt == "table":
        digest_col = "{{.Digest}}\t" if digests else ""
        fmt = ("table {{.Repository}}\t{{.Tag}}\t" + digest_col
               + "{{.ID}}\t{{.CreatedSince}}\t{{.Size}}")
    click.echo(render_rows(fmt, rows, IMAGES_HEADERS), nl=False)


@click.command("tag")
@click.argument("source")
@click.argument("target")
@click.pass_context
def tag_command(ctx: click.Context, source: str, target: str) -> None:
    """Create a tag TARGET that refers to SOURCE."""
    get_client(ctx).images.tag(source, target)


@click.command("rmi")
@click.argument("images", nargs=-1, required=True)
@click.option("-f", "--force", is_flag=True, help="Remove an image tagged in several repositories.")
@click.pass_context
def rmi_command(ctx: click.Context, images: tuple[str, ...], force: bool) -> None:
    """Remove one or more images (untag; delete when no name is left)."""
    client = get_client(ctx)

    def remove(name: str) -> None:
        for removal in client.images.remove(name, force=force):
            click.echo(f"{removal.action}: {removal.subject}")

    each(ctx, images, remove)


@click.command("inspect")
@click.argument("images", nargs=-1, required=True)
@click.option("-f", "--format", "fmt", default=None, help="'json' or a Go template.")
@click.option("--type", "type_", type=click.Choice(["container", "image"]), default=None,
              help="Only containers, or only images (default: a container of that name "
                   "first, then an image).")
@click.pass_context
def inspect_command(ctx: click.Context, images: tuple[str, ...], fmt: str | None,
                    type_: str | None) -> None:
    """Show containers' or images' details as docker's JSON, or through a Go template."""
    from pybuild.errors import ContainerNotFound, PybuildError

    client = get_client(ctx)
    found: list[dict[str, Any]] = []
    failed: PybuildError | None = None
    for name in images:
        try:
            if type_ != "image":
                try:
                    found.append(client.containers.get(name).attrs)
                    continue
                except ContainerNotFound:
                    if type_ == "container":
                        raise
            found.append(client.images.inspect(name))
        except PybuildError as err:
            failed = err
    show_inspected(ctx, found, failed, fmt)


def _ellipsis(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def _history_rows(items: list[Any], *, trunc: bool, human: bool) -> list[dict[str, Any]]:
    rows = []
    for item in items:
        created_by = item.created_by.replace("\t", " ")
        image_id = item.id if item.id == "<missing>" else (
            short_id(item.id) if trunc else item.id)
        rows.append({
            "ID": image_id, "CreatedSince": created_since(item.created) if human
            else item.created, "CreatedAt": item.created,
            "CreatedBy": _ellipsis(created_by, 45) if trunc else created_by,
            "Size": human_size(item.size) if human else str(item.size),
            "Comment": item.comment,
        })
    return rows


@click.command("history")
@click.argument("image")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output.")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs.")
@click.option("-H", "--human", type=bool, default=True, show_default=True,
              help="Print sizes and dates in human readable format.")
@click.option("--format", "fmt", default=None, help="'json', 'table' or a Go template.")
@click.pass_context
def history_command(ctx: click.Context, image: str, no_trunc: bool, quiet: bool, human: bool,
                    fmt: str | None) -> None:
    """Show the history of an image."""
    items = get_client(ctx).images.history(image)
    rows = _history_rows(items, trunc=not no_trunc, human=human)
    if quiet:
        click.echo("".join(f"{row['ID']}\n" for row in rows), nl=False)
    elif fmt == "json":
        click.echo("".join(json_line(row) + "\n" for row in rows), nl=False)
    else:
        fmt = fmt if fmt and fmt != "table" else (
            "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}")
        click.echo(render_rows(fmt, rows, HISTORY_HEADERS), nl=False)
