"""Container commands: run, create, start, ps, logs, stop, kill, restart, rm, wait."""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

import click

from pybuild.cli.common import each, get_client, render, render_rows
from pybuild.cli.container_options import create_kwargs, create_options, obtain_image


@click.command("create", context_settings={"allow_interspersed_args": False})
@create_options
@click.argument("image")
@click.argument("command", nargs=-1)
@click.pass_context
def create_command(ctx: click.Context, image: str, command: tuple[str, ...], **o: Any) -> None:
    """Create a new container (not started)."""
    client = get_client(ctx)
    obtain_image(client.store, image, o)
    container = client.containers.create(image, list(command) or None, **create_kwargs(o))
    for warning in container.warnings:
        click.echo(f"WARNING: {warning}", err=True)
    click.echo(container.id)


@click.command("run", context_settings={"allow_interspersed_args": False})
@click.option("-d", "--detach", is_flag=True, help="Run in the background, print its id.")
@create_options
@click.argument("image")
@click.argument("command", nargs=-1)
@click.pass_context
def run_command(ctx: click.Context, image: str, command: tuple[str, ...], detach: bool,
                **o: Any) -> None:
    """Run a command in a new container."""

    client = get_client(ctx)
    obtain_image(client.store, image, o)
    container = client.containers.create(image, list(command) or None, **create_kwargs(o))
    for warning in container.warnings:
        click.echo(f"WARNING: {warning}", err=True)
    if not detach and (o["interactive"] or o["tty"]):
        ctx.exit(_run_here(container, o["interactive"], o["tty"]))
    if detach:
        _start_or_remove(container)
        click.echo(container.id)
        return
    ctx.exit(_attach(container, remove_on_error=True))


def _run_here(container, interactive: bool, tty: bool) -> int:
    """``run -i``/``-t``: this process runs the container, with the terminal in raw mode
    while a pty relays it (as docker's CLI puts it)."""
    import contextlib
    import termios
    import tty as tty_module

    stdin = 0 if interactive else None
    saved = None
    if tty and interactive and os.isatty(0):
        saved = termios.tcgetattr(0)
        tty_module.setraw(0)
    try:
        return container.run_attached(stdin)
    finally:
        if saved is not None:
            with contextlib.suppress(termios.error):
                termios.tcsetattr(0, termios.TCSADRAIN, saved)


def _start_or_remove(container) -> None:
    """Start a container ``run`` just made; one that cannot start is not left behind."""
    from pybuild.errors import ContainerError

    try:
        container.start()
    except ContainerError:
        container.remove(force=True)
        raise


def _attach(container, *, remove_on_error: bool = False) -> int:
    """Start the container and print its output as it comes, pass SIGINT/SIGTERM on, and
    return its exit code once it is done, an ``--rm`` container removed (as docker's attached
    run). ``remove_on_error``: one that cannot start is not left behind (``run``)."""
    import contextlib

    from pybuild.errors import ContainerError

    def forward(signum, _frame) -> None:
        with contextlib.suppress(ContainerError):
            container.kill(signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, forward)
    try:
        attachment = container.start_attached()
        try:
            return attachment.pump(_writer(sys.stdout), _writer(sys.stderr))
        finally:
            attachment.close()
    except ContainerError:
        if remove_on_error:
            with contextlib.suppress(ContainerError):  # its monitor may have removed it
                container.remove(force=True)
        raise


def _writer(stream):
    def write(data: bytes) -> None:
        stream.buffer.write(data)
        stream.flush()
    return write


def _each(ctx: click.Context, names: tuple[str, ...], action) -> None:
    """``action(container, name)`` on each named container, docker's way (common.each)."""
    client = get_client(ctx)
    each(ctx, names, lambda name: action(client.containers.get(name), name),
         prefix="Error response from daemon: ")


@click.command("start")
@click.option("-a", "--attach", is_flag=True, help="Attach STDOUT/STDERR.")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def start_command(ctx: click.Context, attach: bool, containers: tuple[str, ...]) -> None:
    """Start one or more stopped containers."""
    codes: list[int] = []

    def start(container, name: str) -> None:
        if not attach:
            container.start()
            click.echo(name)
            return
        codes.append(_attach(container))

    _each(ctx, containers, start)
    if codes:
        ctx.exit(codes[-1])


@click.command("stop")
@click.option("-t", "--time", "timeout", type=int, default=None,
              help="Seconds to wait before killing it.")
@click.option("-s", "--signal", "sig", default=None, help="Signal to send (default: its own).")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def stop_command(ctx: click.Context, timeout: int | None, sig: str | None,
                 containers: tuple[str, ...]) -> None:
    """Stop running containers: the stop signal, then SIGKILL after the timeout."""
    def stop(container, name: str) -> None:
        container.stop(timeout, sig)
        click.echo(name)

    _each(ctx, containers, stop)


@click.command("restart")
@click.option("-t", "--time", "timeout", type=int, default=None)
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def restart_command(ctx: click.Context, timeout: int | None, containers: tuple[str, ...]) -> None:
    """Restart containers."""
    def restart(container, name: str) -> None:
        container.restart(timeout)
        click.echo(name)

    _each(ctx, containers, restart)


@click.command("kill")
@click.option("-s", "--signal", "sig", default="SIGKILL", help="Signal to send.")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def kill_command(ctx: click.Context, sig: str, containers: tuple[str, ...]) -> None:
    """Send a signal to running containers (SIGKILL by default)."""
    def kill(container, name: str) -> None:
        container.kill(sig)
        click.echo(name)

    _each(ctx, containers, kill)


@click.command("rm")
@click.option("-f", "--force", is_flag=True, help="Kill a running container first.")
@click.option("-v", "--volumes", is_flag=True, help="Remove its anonymous volumes too.")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def rm_command(ctx: click.Context, force: bool, volumes: bool,
               containers: tuple[str, ...]) -> None:
    """Remove containers."""
    def rm(container, name: str) -> None:
        container.remove(force=force, v=volumes)
        click.echo(name)

    _each(ctx, containers, rm)


@click.command("wait")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def wait_command(ctx: click.Context, containers: tuple[str, ...]) -> None:
    """Block until containers stop, then print their exit codes."""
    _each(ctx, containers, lambda c, _n: click.echo(c.wait()["StatusCode"]))


@click.command("logs")
@click.option("-f", "--follow", is_flag=True, help="Follow the output.")
@click.option("-n", "--tail", default="all", help="Lines from the end (default all).")
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps.")
@click.argument("container")
@click.pass_context
def logs_command(ctx: click.Context, follow: bool, tail: str, timestamps: bool,
                 container: str) -> None:
    """Show a container's output (stdout to stdout, stderr to stderr)."""
    from pybuild.errors import UsageError

    if tail != "all" and not tail.isdigit():
        raise UsageError(f"invalid --tail {tail!r}: a number or all")
    found = get_client(ctx).containers.get(container)
    for line in found.log_lines(follow_=follow, tail=None if tail == "all" else int(tail)):
        out = sys.stdout if line.stream == "stdout" else sys.stderr
        out.write((f"{line.time} " if timestamps else "") + line.text)
        out.flush()


_PS_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND",
               "RunningFor": "CREATED", "Status": "STATUS", "Ports": "PORTS", "Names": "NAMES",
               "Labels": "LABELS", "State": "STATE", "CreatedAt": "CREATED AT"}
_PS_TABLE = ("table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t"
             "{{.Ports}}\t{{.Names}}")


def _status(container) -> str:
    from pybuild.cli.common import human_duration
    from pybuild.image.config import parse_rfc3339

    state = container.state()
    now = time.time()
    if state.status in ("running", "paused"):
        started = parse_rfc3339(state.started_at) or now
        extra = " (Paused)" if state.status == "paused" else (
            f" ({container.health})" if container.health else "")
        if container.health == "starting":
            extra = " (health: starting)"
        return f"Up {human_duration(now - started)}{extra}"
    if state.status == "restarting":
        return f"Restarting ({state.exit_code})"
    if state.status == "exited":
        finished = parse_rfc3339(state.finished_at) or now
        return f"Exited ({state.exit_code}) {human_duration(now - finished)} ago"
    return state.status.capitalize()


def _ps_row(container, trunc: bool) -> dict[str, Any]:
    from pybuild.cli.common import created_at, created_since

    config = container.config
    command = " ".join(config.args)
    if trunc and len(command) > 20:
        command = command[:19] + "…"
    return {"ID": config.id[:12] if trunc else config.id, "Image": config.image,
            "Command": f'"{command}"', "RunningFor": created_since(config.created),
            "CreatedAt": created_at(config.created), "Status": _status(container),
            "State": container.state().status, "Ports": "", "Names": config.name,
            "Labels": ",".join(f"{k}={v}" for k, v in config.labels.items())}


@click.command("ps")
@click.option("-a", "--all", "all_", is_flag=True, help="Show all containers.")
@click.option("-q", "--quiet", is_flag=True, help="Only ids.")
@click.option("-f", "--filter", "filters", multiple=True, help="KEY=VALUE (status, name, ...).")
@click.option("--format", "fmt", default=None, help="A Go template, 'table ...' or 'json'.")
@click.option("--no-trunc", is_flag=True, help="Do not truncate.")
@click.option("-n", "--last", type=int, default=-1, help="Show the n last created.")
@click.option("-l", "--latest", is_flag=True, help="Show the latest created.")
@click.pass_context
def ps_command(ctx: click.Context, all_: bool, quiet: bool, filters: tuple[str, ...],
               fmt: str | None, no_trunc: bool, last: int, latest: bool) -> None:
    """List containers (running ones unless -a)."""
    import json

    wanted: dict[str, list[str]] = {}
    for item in filters:
        key, _, value = item.partition("=")
        wanted.setdefault(key, []).append(value)
    limit = 1 if latest else last
    found = get_client(ctx).containers.list(all=all_ or limit > 0, filters=wanted,
                                            limit=limit)
    if quiet:
        for c in found:
            click.echo(c.id if no_trunc else c.short_id)
        return
    rows = [_ps_row(c, not no_trunc) for c in found]
    if fmt == "json":
        for row in rows:
            click.echo(json.dumps(row))
    elif fmt and not fmt.startswith("table"):
        for row in rows:
            click.echo(render(fmt, row))
    else:
        click.echo(render_rows(fmt or _PS_TABLE, rows, _PS_HEADERS).rstrip("\n"))


@click.command("commit")
@click.option("-c", "--change", "changes", multiple=True,
              help="A Dockerfile instruction for the new image (CMD, ENV, ...).")
@click.option("-m", "--message", default="", help="Commit message.")
@click.option("-a", "--author", default="", help="Author.")
@click.option("-p", "--pause", is_flag=True, default=True,
              help="(pausing during commit is not done yet)")
@click.argument("container")
@click.argument("reference", required=False)
@click.pass_context
def commit_command(ctx: click.Context, changes: tuple[str, ...], message: str, author: str,
                   pause: bool, container: str, reference: str | None) -> None:
    """Create a new image from a container's changes."""
    found = get_client(ctx).containers.get(container)
    click.echo(found.commit(reference, message=message, author=author, changes=changes))


@click.command("diff")
@click.argument("container")
@click.pass_context
def diff_command(ctx: click.Context, container: str) -> None:
    """Show the files a container added (A), changed (C) or deleted (D)."""
    from pybuild.containers.commit import diff

    found = get_client(ctx).containers.get(container)
    for kind, path in diff(get_client(ctx).store, found.config):
        click.echo(f"{kind} {path}")


def _container_group() -> click.Group:
    """``pybuild container ...``: every container command under its docker name, loaded
    on first use as the top-level ones are."""
    from pybuild.cli import COMMANDS, LazyGroup

    names = ("create", "run", "start", "stop", "restart", "kill", "rm", "wait", "logs", "ps",
             "commit", "diff", "exec", "cp", "export", "top", "stats", "pause", "unpause",
             "rename", "update")
    lazy = {name: COMMANDS[name] for name in names}
    lazy["ls"] = COMMANDS["ps"]
    return LazyGroup("container", lazy=lazy, help="Manage containers.")


group = _container_group()
