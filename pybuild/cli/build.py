"""``pybuild build``: docker build's flags over pybuild.build."""

from __future__ import annotations

import os
import signal
import sys
from typing import TYPE_CHECKING

import click

from pybuild.build.options import NETWORKS
from pybuild.cli.buildargs import build_args_from
from pybuild.errors import UsageError

if TYPE_CHECKING:
    from pybuild.client import BuildKeywords


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    out = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise UsageError(f"invalid {what} {value!r}: expected KEY=VALUE")
        out[key] = val
    return out


def _secrets(values: tuple[str, ...], temps: list[str]) -> dict[str, str]:
    """id -> file; an ``env=`` secret is written to a private temp file (added to ``temps``,
    removed after the build)."""
    out = {}
    for value in values:
        fields = dict(part.partition("=")[::2] for part in value.split(","))
        sid = fields.get("id")
        src = fields.get("src") or fields.get("source")
        if not sid:
            raise UsageError(f"invalid --secret {value!r}: id= is required")
        if not src and "env" in fields:
            src = _env_secret(sid, fields["env"])
            temps.append(src)
        out[sid] = os.path.abspath(src or sid)
    return out


def _env_secret(sid: str, name: str) -> str:
    import tempfile

    fd, path = tempfile.mkstemp(prefix=f"secret-{sid}-")
    os.write(fd, os.environ.get(name, "").encode())
    os.close(fd)
    return path


def _output(value: str | None) -> tuple[str, str] | None:
    if not value:
        return None
    fields = dict(part.partition("=")[::2] for part in value.split(","))
    kind, dest = fields.get("type", "docker"), fields.get("dest")
    if kind not in ("docker", "oci") or not dest:
        raise UsageError(f"invalid --output {value!r}: use type=docker|oci,dest=FILE")
    return kind, dest


def _raise_interrupt(signum, frame):  # SIGTERM unwinds like Ctrl-C, so cleanup runs
    raise KeyboardInterrupt


@click.command("build")
@click.argument("context", default=".")
@click.option("-t", "--tag", "tags", multiple=True, help="Name and tag the image (repeatable).")
@click.option("-f", "--file", "dockerfile", help="The Dockerfile (default CONTEXT/Dockerfile).")
@click.option("--build-arg", "build_args", multiple=True, help="NAME=VALUE, or NAME from env.")
@click.option("--target", help="Build only up to this stage.")
@click.option("--no-cache", is_flag=True, help="Do not use the build cache.")
@click.option("--no-cache-filter", multiple=True, help="Stages never taken from the cache.")
@click.option("--secret", "secrets", multiple=True, help="id=ID,src=FILE for RUN secrets.")
@click.option("--label", "labels", multiple=True, help="KEY=VALUE label on the image.")
@click.option("--iidfile", help="Write the image id to this file.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the image id.")
@click.option("--progress", type=click.Choice(["auto", "tty", "plain", "quiet"]),
              default="auto", show_default=True)
@click.option("--output", "-o", "output", help="type=docker|oci,dest=FILE: write an archive.")
@click.option("--compression", type=click.Choice(["gzip", "zstd", "none"]), default="gzip",
              show_default=True, help="Layer compression for --output.")
@click.option("--platform", help="Only linux/amd64 is supported.")
@click.option("--network", type=click.Choice(NETWORKS), default="default",
              help="Network for RUN steps.")
@click.option("--cache-from", "cache_from", multiple=True,
              help="Use a shared build cache: type=local,src=DIR, type=registry,ref=REF, "
              "or REF (repeatable).")
@click.option("--cache-to", "cache_to", multiple=True,
              help="Write the build cache: type=local,dest=DIR or type=registry,ref=REF, "
              "with mode=min|max (repeatable).")
@click.option("--pull", is_flag=True, help="Always ask the registry for newer base images.")
@click.option("--push", is_flag=True, help="Push the image's tags once it is built.")
@click.pass_context
def command(ctx: click.Context, context: str, tags, dockerfile, build_args, target, no_cache,
            no_cache_filter, secrets, labels, iidfile, quiet, progress, output, compression,
            platform, network, cache_from, cache_to, pull, push) -> None:
    """Build an image from a Dockerfile and a context directory."""
    out = _output(output)
    temps: list[str] = []
    try:
        request: BuildKeywords = dict(
            dockerfile=dockerfile, tag=tags, buildargs=build_args_from(build_args),
            target=target, nocache=no_cache, no_cache_filter=no_cache_filter,
            secrets=_secrets(secrets, temps), labels=_pairs(labels, "--label"),
            platform=platform, network_mode=network)
        if out is not None:
            request.update(output=out[1], output_compression=compression)
        if cache_from or cache_to:
            request.update(cache_from=cache_from, cache_to=cache_to)
        if pull:
            request.update(pull=True)
        if push and not tags:
            raise UsageError("--push needs a tag (-t NAME) to push")
        _build(ctx, context, request, iidfile, quiet, progress)
        if push:
            _push(ctx, tags, quiet)
        elif out is None:  # an answer from the memo would skip writing the archive (or a push)
            env = ("SOURCE_DATE_EPOCH", *(arg for arg in build_args if "=" not in arg))
            _remember_command_line(ctx, context, request, env, dict(
                quiet=quiet, iidfile=iidfile, progress=progress))
    finally:
        for path in temps:
            os.unlink(path)


def _build(ctx: click.Context, context: str, request: BuildKeywords, iidfile: str | None,
           quiet: bool, progress: str) -> None:
    """Build through the library's Client; what the build says is rendered here."""
    from pybuild.cli.common import get_client
    from pybuild.progress import BuildDone, make_renderer

    render = make_renderer("quiet" if quiet else progress, sys.stderr)
    if quiet:  # the id goes to stdout below, for scripts; only failures to stderr
        quiet_render = render
        render = lambda event: None if isinstance(event, BuildDone) else quiet_render(event)  # noqa: E731
    signal.signal(signal.SIGTERM, _raise_interrupt)
    client = get_client(ctx)
    image = client.images.build(context, on_event=render, **request)
    if iidfile:
        with open(iidfile, "w") as f:
            f.write(image.id)
    if quiet:
        click.echo(image.id)


def _push(ctx: click.Context, tags: tuple[str, ...], quiet: bool) -> None:
    """``--push``: each tag to its registry, docker's lines on stderr (stdout keeps -q's id)."""
    from pybuild.cli.common import get_client
    from pybuild.cli.registry import LayerRenderer

    client = get_client(ctx)
    for tag in tags:
        client.images.push(tag, on_event=None if quiet else LayerRenderer(sys.stderr))


def _remember_command_line(ctx: click.Context, context: str, request: BuildKeywords,
                           env_names: tuple[str, ...], output: dict) -> None:
    """Leave the memo the console entry answers this very command line from when nothing
    has changed (pybuild.cache.replay): what click made of it, so the entry need not parse."""
    import contextlib

    from pybuild.build import unchanged
    from pybuild.cache.replay import remember_command_line
    from pybuild.client import build_options
    from pybuild.entry import command_line

    argv = command_line()
    options = build_options(context, **request)
    keyed = unchanged.request(options)
    if argv is None or keyed is None or not unchanged.may_answer(options):
        return
    root = ctx.find_root().obj["root"]  # as given: the entry compares it with what it reads
    with contextlib.suppress(OSError):
        remember_command_line(root, argv, env_names, keyed, output)
