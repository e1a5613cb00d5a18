"""``pybuild exec``: run a command in a running container (docker exec's flags)."""

from __future__ import annotations

import contextlib
import os

import click

from pybuild.cli.common import get_client


@click.command("exec", context_settings={"allow_interspersed_args": False})
@click.option("-d", "--detach", is_flag=True, help="Run the command in the background.")
@click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open.")
@click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY.")
@click.option("-u", "--user", default=None, help="User (name|uid[:group|gid]).")
@click.option("-w", "--workdir", default=None, help="Working directory in the container.")
@click.option("-e", "--env", "env", multiple=True, help="Set an environment variable.")
@click.option("--env-file", multiple=True, help="Read environment variables from a file.")
@click.option("--privileged", is_flag=True, help="Give the command every capability.")
@click.argument("container")
@click.argument("command", nargs=-1, required=True)
@click.pass_context
def exec_command(ctx: click.Context, container: str, command: tuple[str, ...], detach: bool,
                 interactive: bool, tty: bool, user: str | None, workdir: str | None,
                 env: tuple[str, ...], env_file: tuple[str, ...], privileged: bool) -> None:
    """Run a command in a running container."""
    from pybuild.cli.container_options import env_files, env_flags
    from pybuild.containers.exec import ExecOptions, exec_in

    client = get_client(ctx)
    config = client.containers.get(container).config
    opts = ExecOptions(args=command, user=user, workdir=workdir,
                       env=(*env_files(env_file), *env_flags(env)), tty=tty,
                       console_size=_terminal_size() if tty else None,
                       privileged=privileged, detach=detach)
    stdin = 0 if interactive and not detach else None
    with _raw_terminal(tty and interactive and not detach):
        code = exec_in(client.store, config, opts, stdin=stdin)
    ctx.exit(code)


def _terminal_size() -> tuple[int, int] | None:
    for fd in (1, 0):
        try:
            size = os.get_terminal_size(fd)
            return size.lines, size.columns
        except OSError:
            continue
    return None


@contextlib.contextmanager
def _raw_terminal(wanted: bool):
    """With -it on a terminal, keys go to the container's pty unprocessed (as docker's CLI)."""
    import termios
    import tty

    saved = None
    if wanted and os.isatty(0):
        saved = termios.tcgetattr(0)
        tty.setraw(0)
    try:
        yield
    finally:
        if saved is not None:
            with contextlib.suppress(termios.error):
                termios.tcsetattr(0, termios.TCSADRAIN, saved)
