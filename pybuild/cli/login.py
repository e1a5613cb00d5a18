"""``pybuild login`` and ``pybuild logout``, as docker's.

Without ``-u``/``-p``, docker asks on a terminal (``Username (stored): `` offering the stored
name) and refuses without one; with nothing given and credentials already kept for the host,
it tries those first ("Authenticating with existing credentials..."). ``-p`` works but earns
docker's warning, ``--password-stdin`` is the safe way. Options that contradict each other are
a UsageError (exit 2, pybuild's rule for usage); everything else fails with exit 1.
"""

from __future__ import annotations

import sys

import click

NON_TTY = "Cannot perform an interactive login from a non TTY device"
P_WARNING = "WARNING! Using --password via the CLI is insecure. Use --password-stdin."
STORED_WARNING = ("WARNING! Your password will be stored unencrypted in {path}.\n"
                  "Configure a credential helper to remove this warning. See\n"
                  "https://docs.docker.com/engine/reference/commandline/login/"
                  "#credentials-store\n")


@click.command("login")
@click.argument("server", required=False)
@click.option("-u", "--username", default="", help="Username.")
@click.option("-p", "--password", default="", help="Password.")
@click.option("--password-stdin", is_flag=True, help="Take the password from stdin.")
def login_command(server: str | None, username: str, password: str,
                  password_stdin: bool) -> None:
    """Log in to a registry (docker.io when SERVER is not given)."""
    from pybuild.errors import RegistryError, UsageError
    from pybuild.registry import login as registry_login

    if password and password_stdin:
        raise UsageError("--password and --password-stdin are mutually exclusive")
    if password_stdin:
        if not username:
            raise UsageError("Must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    elif password:
        click.echo(P_WARNING, err=True)
    host = registry_login.server_host(server)
    if not (username or password):
        kept = registry_login.stored(host)
        if kept is not None:
            click.echo("Authenticating with existing credentials...", err=True)
            try:
                registry_login.check(host, kept)
            except RegistryError as err:
                click.echo(f"Login did not succeed, error: {err}", err=True)
            else:
                click.echo(registry_login.SUCCEEDED)
                return
        username = _ask_username(kept.username if kept else "")
    if not password:
        password = _ask_password()
    click.echo(registry_login.login(username, password, server))
    where = registry_login.storage_of(host)
    if not isinstance(where, str):
        click.echo(STORED_WARNING.format(path=where), err=True)


def _ask_username(default: str) -> str:
    from pybuild.errors import RegistryError

    if not sys.stdin.isatty():
        raise RegistryError(NON_TTY)
    prompt = f"Username ({default})" if default else "Username"
    answer = click.prompt(prompt, default=default, show_default=False, err=True)
    return str(answer).strip()


def _ask_password() -> str:
    from pybuild.errors import RegistryError

    if not sys.stdin.isatty():
        raise RegistryError(NON_TTY)
    return str(click.prompt("Password", hide_input=True, err=True))


@click.command("logout")
@click.argument("server", required=False)
def logout_command(server: str | None) -> None:
    """Log out from a registry (docker.io when SERVER is not given)."""
    from pybuild.registry import login as registry_login

    click.echo(registry_login.logout(server))
