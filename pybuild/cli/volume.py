"""``pybuild volume``: create, ls, inspect, rm, prune, as docker's."""

from __future__ import annotations

from typing import Any

import click

from pybuild.cli.common import (
    confirm_prune,
    each,
    get_client,
    human_size,
    inspect_group_command,
    show_list,
)

LS_HEADERS = {"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE",
              "Mountpoint": "MOUNTPOINT", "Labels": "LABELS", "Links": "LINKS", "Size": "SIZE",
              "Availability": "AVAILABILITY", "Group": "GROUP", "Status": "STATUS"}


def _pairs(items: tuple[str, ...], what: str) -> dict[str, str]:
    """``("a=b", "c")`` -> ``{"a": "b", "c": ""}``, as docker reads --label and --opt."""
    from pybuild.errors import UsageError

    out = {}
    for item in items:
        key, _, value = item.partition("=")
        if not key:
            raise UsageError(f"invalid {what} {item!r} (expected KEY=VALUE)")
        out[key] = value
    return out


@click.group("volume")
def group() -> None:
    """Manage volumes."""


@group.command("create")
@click.argument("name", required=False)
@click.option("--name", "name_opt", default=None, help="The volume's name (or give NAME).")
@click.option("-d", "--driver", default="local", show_default=True, help="Volume driver.")
@click.option("--label", "labels", multiple=True, help="A label, KEY=VALUE.")
@click.option("-o", "--opt", "opts", multiple=True, help="A driver option, KEY=VALUE.")
@click.pass_context
def create_command(ctx: click.Context, name: str | None, name_opt: str | None, driver: str,
                   labels: tuple[str, ...], opts: tuple[str, ...]) -> None:
    """Create a volume (a random name when none is given) and print its name."""
    from pybuild.errors import UsageError

    if name and name_opt and name != name_opt:
        raise UsageError(f"conflicting names: NAME={name} and --name={name_opt}")
    volume = get_client(ctx).volumes.create(name or name_opt, driver=driver,
                                            driver_opts=_pairs(opts, "--opt"),
                                            labels=_pairs(labels, "--label"))
    click.echo(volume.name)


def _row(attrs: dict[str, Any]) -> dict[str, Any]:
    """The fields docker's ``volume ls --format`` offers (N/A where only a cluster or a
    disk-usage walk would know)."""
    labels = ",".join(f"{k}={v}" for k, v in sorted(attrs["Labels"].items()))
    return {"Availability": "N/A", "Driver": attrs["Driver"], "Group": "N/A", "Labels": labels,
            "Links": "N/A", "Mountpoint": attrs["Mountpoint"], "Name": attrs["Name"],
            "Scope": attrs["Scope"], "Size": "N/A", "Status": "N/A"}


@group.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only show volume names.")
@click.option("-f", "--filter", "filter_items", multiple=True,
              help="dangling=true|false, driver=, label=KEY[=VALUE], name=")
@click.option("--format", "fmt", default=None, help="'json', 'table' or a Go template.")
@click.pass_context
def ls_command(ctx: click.Context, quiet: bool, filter_items: tuple[str, ...],
               fmt: str | None) -> None:
    """List volumes."""
    from pybuild.volumes.filters import LIST_KEYS, parse_filter_items

    volumes = get_client(ctx).volumes.list(parse_filter_items(filter_items, LIST_KEYS))
    show_list([_row(v.attrs) for v in volumes], quiet=quiet, key="Name", fmt=fmt,
              table="table {{.Driver}}\t{{.Name}}", headers=LS_HEADERS)


group.add_command(ls_command, "list")


inspect_command = inspect_group_command("volumes", "volumes")
group.add_command(inspect_command)


@group.command("rm")
@click.argument("names", nargs=-1, required=True)
@click.option("-f", "--force", is_flag=True, help="No error for a volume that does not exist.")
@click.pass_context
def rm_command(ctx: click.Context, names: tuple[str, ...], force: bool) -> None:
    """Remove volumes (never one a container uses)."""
    client = get_client(ctx)

    def remove(name: str) -> None:
        client.volumes.remove(name, force=force)
        click.echo(name)

    each(ctx, names, remove)


group.add_command(rm_command, "remove")


@group.command("prune")
@click.option("-a", "--all", "all_", is_flag=True,
              help="Remove every unused volume, not only anonymous ones.")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.option("--filter", "filter_items", multiple=True, help="label=KEY[=VALUE], label!=KEY")
@click.pass_context
def prune_command(ctx: click.Context, all_: bool, force: bool,
                  filter_items: tuple[str, ...]) -> None:
    """Remove unused volumes: anonymous ones only (docker 23+) unless --all."""
    from pybuild.volumes.filters import PRUNE_KEYS, parse_filter_items

    wanted: dict[str, Any] = parse_filter_items(filter_items, PRUNE_KEYS)
    if all_:
        wanted["all"] = ["true"]
    what = "all local volumes" if all_ else "anonymous local volumes"
    confirm_prune(force, f"This will remove {what} not used by at least one container.")
    result = get_client(ctx).volumes.prune(wanted)
    if result["VolumesDeleted"]:
        click.echo("Deleted Volumes:")
        click.echo("".join(f"{name}\n" for name in result["VolumesDeleted"]))
    click.echo(f"Total reclaimed space: {human_size(result['SpaceReclaimed'])}")
