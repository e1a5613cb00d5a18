"""``pybuild network`` (create, ls, inspect, rm, prune, connect, disconnect) and
``pybuild port``, as docker's."""

from __future__ import annotations

from typing import Any

import click

from pybuild.cli.common import (
    confirm_prune,
    created_at,
    each,
    get_client,
    inspect_group_command,
    show_list,
)
from pybuild.cli.volume import _pairs  # docker reads -o and --label alike for both

LS_HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
              "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS",
              "CreatedAt": "CREATED AT"}
LS_TABLE = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"


@click.group("network")
def group() -> None:
    """Manage networks."""


@group.command("create")
@click.argument("name")
@click.option("-d", "--driver", default="bridge", show_default=True,
              help="Driver: bridge or macvlan.")
@click.option("--subnet", "subnets", multiple=True, help="Subnet in CIDR form.")
@click.option("--gateway", "gateways", multiple=True, help="Gateway of the subnet.")
@click.option("--ip-range", "ip_ranges", multiple=True,
              help="Allocate container addresses from this part of the subnet.")
@click.option("--internal", is_flag=True, help="No access to or from outside the network.")
@click.option("--ipv6", is_flag=True, help="IPv6 networking (not supported yet).")
@click.option("-o", "--opt", "opts", multiple=True,
              help="A driver option, KEY=VALUE: bridge com.docker.network.bridge.name=BR (an "
              "existing bridge is used as it is), macvlan parent=IF (IF.VID: a VLAN made for "
              "it) and macvlan_mode=bridge|private|vepa|passthru.")
@click.option("--label", "labels", multiple=True, help="A label, KEY=VALUE.")
@click.pass_context
def create_command(ctx: click.Context, name: str, driver: str, subnets: tuple[str, ...],
                   gateways: tuple[str, ...], ip_ranges: tuple[str, ...], internal: bool,
                   ipv6: bool, opts: tuple[str, ...], labels: tuple[str, ...]) -> None:
    """Create a network and print its id."""
    options = _pairs(opts, "--opt")
    network = get_client(ctx).networks.create(
        name, driver=driver, options=options, ipam=_ipam(subnets, gateways, ip_ranges),
        internal=internal, labels=_pairs(labels, "--label"), enable_ipv6=ipv6)
    click.echo(network.id)


def _ipam(subnets: tuple[str, ...], gateways: tuple[str, ...],
          ip_ranges: tuple[str, ...]) -> dict[str, Any] | None:
    """docker-py's IPAMConfig from the flags: each --gateway and --ip-range goes with the
    --subnet given in the same position (docker pairs them by containment; one subnet is all
    pybuild takes yet, so position is the same thing)."""
    from pybuild.errors import UsageError

    if not (subnets or gateways or ip_ranges):
        return None
    if len(gateways) > max(len(subnets), 1) or len(ip_ranges) > max(len(subnets), 1):
        raise UsageError("every --gateway and --ip-range needs a --subnet of its own")
    pools = []
    for i in range(max(len(subnets), 1)):
        pool = {"Subnet": subnets[i] if i < len(subnets) else ""}
        if i < len(gateways):
            pool["Gateway"] = gateways[i]
        if i < len(ip_ranges):
            pool["IPRange"] = ip_ranges[i]
        pools.append(pool)
    return {"Driver": "default", "Config": pools}


def _row(attrs: dict[str, Any], trunc: bool) -> dict[str, Any]:
    """The fields docker's ``network ls --format`` offers."""
    labels = ",".join(f"{k}={v}" for k, v in sorted(attrs["Labels"].items()))
    return {"ID": attrs["Id"][:12] if trunc else attrs["Id"], "Name": attrs["Name"],
            "Driver": attrs["Driver"], "Scope": attrs["Scope"],
            "IPv6": str(attrs["EnableIPv6"]).lower(), "Internal": str(attrs["Internal"]).lower(),
            "Labels": labels, "CreatedAt": created_at(attrs["Created"])}


@group.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only show network IDs.")
@click.option("-f", "--filter", "filter_items", multiple=True,
              help="dangling=true|false, driver=, id=, label=KEY[=VALUE], name=, scope=, "
                   "type=custom|builtin")
@click.option("--format", "fmt", default=None, help="'json', 'table' or a Go template.")
@click.option("--no-trunc", is_flag=True, help="Do not truncate the output.")
@click.pass_context
def ls_command(ctx: click.Context, quiet: bool, filter_items: tuple[str, ...],
               fmt: str | None, no_trunc: bool) -> None:
    """List networks."""
    from pybuild.network.netfilters import LIST_KEYS
    from pybuild.volumes.filters import parse_filter_items

    networks = get_client(ctx).networks.list(
        filters=parse_filter_items(filter_items, LIST_KEYS))
    show_list([_row(n.attrs, not no_trunc) for n in networks], quiet=quiet, key="ID",
              fmt=fmt, table=LS_TABLE, headers=LS_HEADERS)


group.add_command(ls_command, "list")


inspect_command = inspect_group_command("networks", "networks")
group.add_command(inspect_command)


@group.command("rm")
@click.argument("names", nargs=-1, required=True)
@click.option("-f", "--force", is_flag=True, help="No error for a network that does not exist.")
@click.pass_context
def rm_command(ctx: click.Context, names: tuple[str, ...], force: bool) -> None:
    """Remove networks (never one a container uses, nor a predefined one)."""
    from pybuild.errors import NetworkNotFound

    client = get_client(ctx)

    def remove(name: str) -> None:
        try:
            client.networks.get(name).remove()
        except NetworkNotFound:
            if not force:
                raise
            return
        click.echo(name)

    each(ctx, names, remove)


group.add_command(rm_command, "remove")


@group.command("prune")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.option("--filter", "filter_items", multiple=True,
              help="until=TIMESTAMP|DURATION, label=KEY[=VALUE], label!=KEY[=VALUE]")
@click.pass_context
def prune_command(ctx: click.Context, force: bool, filter_items: tuple[str, ...]) -> None:
    """Remove every user network no container uses."""
    from pybuild.network.netfilters import PRUNE_KEYS
    from pybuild.volumes.filters import parse_filter_items

    wanted = parse_filter_items(filter_items, PRUNE_KEYS)
    confirm_prune(force, "This will remove all custom networks not used by at least one "
                         "container.")
    deleted = get_client(ctx).networks.prune(wanted)["NetworksDeleted"]
    if deleted:
        click.echo("Deleted Networks:")
        click.echo("".join(f"{name}\n" for name in deleted), nl=False)


@group.command("connect")
@click.argument("network")
@click.argument("container")
@click.option("--alias", "aliases", multiple=True, help="A network-scoped alias.")
@click.option("--ip", default=None, help="IPv4 address on the network.")
@click.pass_context
def connect_command(ctx: click.Context, network: str, container: str,
                    aliases: tuple[str, ...], ip: str | None) -> None:
    """Connect a container to a network."""
    get_client(ctx).networks.connect(network, container, aliases=aliases, ipv4_address=ip)


@group.command("disconnect")
@click.argument("network")
@click.argument("container")
@click.option("-f", "--force", is_flag=True, help="Force the container to disconnect.")
@click.pass_context
def disconnect_command(ctx: click.Context, network: str, container: str, force: bool) -> None:
    """Disconnect a container from a network."""
    get_client(ctx).networks.disconnect(network, container, force=force)


@click.command("port")
@click.argument("container")
@click.argument("private_port", required=False)
@click.pass_context
def port_command(ctx: click.Context, container: str, private_port: str | None) -> None:
    """List a container's published ports, or the host side of one (PORT[/PROTO])."""
    found = get_client(ctx).containers.get(container)
    published = (found.attrs.get("NetworkSettings") or {}).get("Ports") or {}
    click.echo("".join(f"{line}\n" for line in port_lines(published, private_port,
                                                          found.name)), nl=False)


def port_lines(published: dict[str, Any], private_port: str | None, name: str) -> list[str]:
    """``docker port``'s lines from inspect's ``NetworkSettings.Ports``: ``80/tcp ->
    0.0.0.0:8080`` for each binding, or only the host sides of ``private_port``."""
    from pybuild.errors import NetworkError, UsageError

    pairs = []
    for key, bindings in sorted(published.items(), key=lambda kv: _port_key(kv[0])):
        for b in bindings or ():
            pairs.append((key, f"{b.get('HostIp') or '0.0.0.0'}:{b.get('HostPort', '')}"))
    if private_port is None:
        return [f"{key} -> {host}" for key, host in pairs]
    port, _, proto = private_port.partition("/")
    if not (port.isascii() and port.isdigit()) or proto not in ("", "tcp", "udp", "sctp"):
        raise UsageError(f"invalid port {private_port!r} (expected PORT[/PROTO])")
    wanted = f"{int(port)}/{proto or 'tcp'}"
    hosts = [host for key, host in pairs if key == wanted]
    if not hosts:
        raise NetworkError(f"no public port '{wanted}' published for {name}")
    return hosts


def _port_key(key: str) -> tuple[int, str]:
    port, _, proto = key.partition("/")
    return (int(port) if port.isdigit() else 0, proto)
