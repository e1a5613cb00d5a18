"""``save`` and ``load``: thin click commands over pybuild.archive."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pybuild.cli.common import get_client

if TYPE_CHECKING:
    pass


@click.command("save")
@click.argument("images", nargs=-1, required=True)
@click.option("-o", "--output", default=None,
              help="Write to this file (a directory with --format oci-dir), not stdout.")
@click.option("--compression", type=click.Choice(["gzip", "zstd", "none"]), default="gzip",
              show_default=True, help="How layers are compressed in the archive.")
@click.option("--format", "fmt", type=click.Choice(["tar", "oci-dir"]), default="tar",
              show_default=True, help="One tar (docker-archive + OCI layout) or a layout dir.")
@click.pass_context
def save_command(ctx: click.Context, images: tuple[str, ...], output: str | None,
                 compression: str, fmt: str) -> None:
    """Save IMAGE... to a tar that docker, podman, skopeo and umoci all read."""
    from pybuild.errors import UsageError

    client = get_client(ctx)
    if fmt == "oci-dir":
        if not output or output == "-":
            raise UsageError("--format oci-dir needs -o DIRECTORY")
        client.images.save(list(images), compression=compression, format=fmt, dest_dir=output)
        return
    if output and output != "-":
        client.images.save(list(images), Path(output), compression=compression)
        return
    stdout = click.get_binary_stream("stdout")
    if stdout.isatty():
        raise UsageError("refusing to write an archive to a terminal: use -o FILE or a pipe")
    client.images.save(list(images), stdout, compression=compression)


@click.command("load")
@click.option("-i", "--input", "source", default=None,
              help="Read this tar file or OCI layout directory instead of stdin.")
@click.option("-q", "--quiet", is_flag=True,
              help="Accepted as docker's; load shows no progress, only what it loaded.")
@click.pass_context
def load_command(ctx: click.Context, source: str | None, quiet: bool) -> None:
    """Load images from a docker-archive, an OCI archive or an OCI layout directory."""
    from pybuild.errors import UsageError
    from pybuild.image.reference import parse as parse_reference

    client = get_client(ctx)
    if source is None or source == "-":
        stdin = click.get_binary_stream("stdin")
        if stdin.isatty():
            raise UsageError("requested load from stdin, but stdin is a terminal: "
                             "use -i FILE or a pipe")
        loaded = client.images.load(stdin)
    else:
        loaded = client.images.load(source)
    for image in loaded:  # names as docker prints them: busybox:latest, not docker.io/library/
        for tag, old in image.renamed:
            click.echo(f"The image {parse_reference(tag).familiar()} already exists, renaming "
                       f"the old one with ID {old} to empty string")
        for tag in image.tags:
            click.echo(f"Loaded image: {parse_reference(tag).familiar()}")
        if not image.tags:
            click.echo(f"Loaded image ID: {image.id}")
    sys.stdout.flush()
