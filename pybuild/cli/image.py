"""``pybuild image``: ls, rm, tag, inspect, history, prune, import, unpack."""

from __future__ import annotations

import click

from pybuild.cli import LazyGroup
from pybuild.cli.common import confirm_prune, get_client, human_size, prune_options
from pybuild.cli.images import (
    history_command,
    images_command,
    import_command,
    inspect_command,
    rmi_command,
    tag_command,
)

# docker's ``image save`` / ``image load``, loaded only when used
_LAZY = {
    "save": ("archive", "save_command", "Write images to a tar archive."),
    "load": ("archive", "load_command", "Load images from a tar archive or OCI layout."),
}


@click.group("image", cls=LazyGroup, lazy=_LAZY)
def group() -> None:
    """Manage images."""


group.add_command(images_command, "ls")
group.add_command(images_command, "list")
group.add_command(rmi_command, "rm")
group.add_command(tag_command, "tag")
group.add_command(inspect_command, "inspect")
group.add_command(history_command, "history")
group.add_command(import_command, "import")


@group.command("prune")
@prune_options("Remove all unused images, not just dangling ones.")
def prune_command(ctx: click.Context, all_: bool, force: bool) -> None:
    """Remove unused images."""
    what = "all images without at least one container associated to them" if all_ \
        else "all dangling images"
    confirm_prune(force, f"This will remove {what}.")
    result = get_client(ctx).images.prune(all=all_)
    if result.images:
        click.echo("Deleted Images:")
        for image_id in result.images:
            click.echo(f"deleted: {image_id}")
        click.echo()
    click.echo(f"Total reclaimed space: {human_size(result.reclaimed)}")


@group.command("unpack")
@click.argument("image")
@click.argument("dest", type=click.Path(file_okay=False))
@click.pass_context
def unpack_command(ctx: click.Context, image: str, dest: str) -> None:
    """Write IMAGE's flattened root filesystem into the empty directory DEST."""
    get_client(ctx).images.unpack(image, dest)
