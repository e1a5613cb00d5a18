"""The ``pybuild`` command line: a thin click layer over the library.

Commands live in their own modules and are imported only when invoked, so that
``pybuild parse`` and the no-change rebuild do not pay for what they do not use.
"""

from __future__ import annotations

import importlib
import sys

import click

from pybuild import __version__
from pybuild.store.paths import DEFAULT_ROOT, ROOT_ENV

# name -> (module under pybuild.cli, attribute, one-line help). The help is kept here so
# ``pybuild --help`` does not import every command.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "parse": ("parse", "command", "Parse a Dockerfile and print its syntax tree or instructions."),
    "build": ("build", "command", "Build an image from a Dockerfile and a context."),
    "import": ("images", "import_command", "Import a rootfs tarball as an image."),
    "images": ("images", "images_command", "List images."),
    "tag": ("images", "tag_command", "Give an image another name."),
    "rmi": ("images", "rmi_command", "Remove images."),
    "inspect": ("images", "inspect_command", "Show a container's or image's details as JSON."),
    "history": ("images", "history_command", "Show the layers an image was built from."),
    "save": ("archive", "save_command", "Write images to a tar archive (docker-archive + OCI)."),
    "load": ("archive", "load_command", "Load images from a tar archive or OCI layout."),
    "image": ("image", "group", "Manage images (ls, unpack, prune, ...)."),
    "run": ("container", "run_command", "Run a command in a new container."),
    "create": ("container", "create_command", "Create a new container."),
    "start": ("container", "start_command", "Start stopped containers."),
    "stop": ("container", "stop_command", "Stop running containers."),
    "restart": ("container", "restart_command", "Restart containers."),
    "kill": ("container", "kill_command", "Send a signal to running containers."),
    "rm": ("container", "rm_command", "Remove containers."),
    "wait": ("container", "wait_command", "Wait for containers to stop; print exit codes."),
    "logs": ("container", "logs_command", "Show a container's output."),
    "ps": ("container", "ps_command", "List containers."),
    "commit": ("container", "commit_command", "Create a new image from a container's changes."),
    "diff": ("container", "diff_command", "Show a container's changed files."),
    "cp": ("container_ops", "cp_command", "Copy files between a container and the host."),
    "export": ("container_ops", "export_command", "Export a container's filesystem as a tar."),
    "top": ("container_ops", "top_command", "Display the running processes of a container."),
    "stats": ("container_ops", "stats_command", "Display containers' resource usage."),
    "pause": ("container_ops", "pause_command", "Pause all processes within containers."),
    "unpause": ("container_ops", "unpause_command", "Unpause all processes within containers."),
    "rename": ("container_ops", "rename_command", "Rename a container."),
    "update": ("container_ops", "update_command", "Update containers' resource limits."),
    "exec": ("container_exec", "exec_command", "Run a command in a running container."),
    "container": ("container", "group", "Manage containers."),
    "system": ("system", "group", "Manage the store (df, prune, check)."),
    "volume": ("volume", "group", "Manage volumes."),
    "network": ("network", "group", "Manage networks."),
    "port": ("network", "port_command", "List a container's published ports."),
    "pull": ("registry", "pull_command", "Download an image from a registry."),
    "push": ("registry", "push_command", "Upload an image to a registry."),
    "manifest": ("registry", "manifest_group", "Inspect the manifest of a remote image."),
    "login": ("login", "login_command", "Log in to a registry."),
    "logout": ("login", "logout_command", "Log out from a registry."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def __init__(self, *args, lazy: dict[str, tuple[str, str, str]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            module, attr, _ = self.lazy[name]
            return getattr(importlib.import_module(f"pybuild.cli.{module}"), attr)
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, self.lazy[name][2]) for name in sorted(self.lazy)]
        rows += [
            (name, cmd.get_short_help_str())
            for name, cmd in sorted(self.commands.items())
            if name not in self.lazy
        ]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-v", prog_name="pybuild")
@click.option("--root", envvar=ROOT_ENV, default=DEFAULT_ROOT, show_default=True,
              help="Where images, layers and the build cache are kept.")
@click.pass_context
def cli(ctx: click.Context, root: str) -> None:
    """pybuild: a daemonless image builder and container runtime."""
    ctx.obj = {"root": root}


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning library errors into one line and an exit code."""
    from pybuild.errors import DockerfileError, PybuildError

    try:
        # without standalone mode, click returns ctx.exit(code)'s code instead of exiting
        code = cli.main(args=argv, prog_name="pybuild", standalone_mode=False)
    except PybuildError as err:
        # A Dockerfile error already reads "FILE:LINE: message"; a prefix would only bury it.
        located = isinstance(err, DockerfileError)
        click.echo(str(err) if located else f"error: {err}", err=True)
        sys.exit(err.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
    sys.exit(code if isinstance(code, int) and not isinstance(code, bool) else 0)
