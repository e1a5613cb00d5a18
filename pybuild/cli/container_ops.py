"""Container commands: cp, export, top, stats, pause, unpause, rename, update."""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from pybuild.cli.common import get_client, human_size, render, render_rows


def _split_cp_arg(arg: str) -> tuple[str | None, str]:
    """docker's splitCpArg: an absolute path, or a "./"-relative one, is local even with a
    colon; else CONTAINER:PATH."""
    if arg.startswith("/"):
        return None, arg
    container, sep, path = arg.partition(":")
    if not sep or container.startswith("."):
        return None, arg
    return container, path if path.startswith("/") else "/" + path


@click.command("cp")
@click.option("-a", "--archive", is_flag=True, help="Archive mode (copy all uid/gid information).")
@click.option("-L", "--follow-link", is_flag=True, help="Always follow a symbolic link in SRC.")
@click.option("-q", "--quiet", is_flag=True, help="Suppress progress output (there is none).")
@click.argument("src")
@click.argument("dest")
@click.pass_context
def cp_command(ctx: click.Context, archive: bool, follow_link: bool, quiet: bool, src: str,
               dest: str) -> None:
    """Copy files between a container and the local filesystem (- for a tar stream).

    \b
    pybuild cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-
    pybuild cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH
    """
    from pybuild.errors import UsageError

    src_ctr, src_path = (None, src) if src == "-" else _split_cp_arg(src)
    dst_ctr, dst_path = (None, dest) if dest == "-" else _split_cp_arg(dest)
    if src_ctr and dst_ctr:
        raise UsageError("copying between containers is not supported")
    if not src_ctr and not dst_ctr:
        raise UsageError("must specify at least one container source")
    containers = get_client(ctx).containers
    if src_ctr:
        found = containers.get(src_ctr)
        if dest == "-":
            found.get_archive(src_path, sys.stdout.buffer, follow_link=follow_link)
            sys.stdout.buffer.flush()
        else:
            found.copy_from(src_path, dst_path, archive=archive, follow_link=follow_link)
        return
    found = containers.get(dst_ctr or "")
    if src == "-":
        found.put_archive(dst_path, sys.stdin.buffer)
    else:
        found.copy_to(src_path, dst_path, archive=archive, follow_link=follow_link)


@click.command("export")
@click.option("-o", "--output", default=None, help="Write to a file, instead of STDOUT.")
@click.argument("container")
@click.pass_context
def export_command(ctx: click.Context, output: str | None, container: str) -> None:
    """Export a container's filesystem as a tar archive."""
    from pybuild.errors import UsageError

    found = get_client(ctx).containers.get(container)
    if output is None:
        if sys.stdout.isatty():
            raise UsageError("cowardly refusing to save to a terminal. Use the -o flag or "
                             "redirect")
        found.export(sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    _export_file(found, output)


def _export_file(found: Any, output: str) -> None:
    import os
    import tempfile

    from pybuild.errors import UsageError

    folder = os.path.dirname(os.path.abspath(output))
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".export-")
    except OSError as err:
        raise UsageError(f"failed to export container: {output}: {err.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as out:
            found.export(out)
        os.chmod(tmp, 0o644)
        os.replace(tmp, output)
    except BaseException:
        os.unlink(tmp)
        raise


@click.command("top", context_settings={"ignore_unknown_options": True})
@click.argument("container")
@click.argument("ps_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def top_command(ctx: click.Context, container: str, ps_args: tuple[str, ...]) -> None:
    """Display the running processes of a container (ps options as docker's)."""
    result = get_client(ctx).containers.get(container).top(" ".join(ps_args))
    lines = ["\t".join(result["Titles"])]
    lines += ["\t".join(row) for row in result["Processes"]]
    click.echo(_tabwrite(lines))


def _tabwrite(lines: list[str], minwidth: int = 20, padding: int = 3) -> str:
    """docker top's tabwriter (minimum width 20, padding 3); the last column unpadded."""
    rows = [line.split("\t") for line in lines]
    count = max(len(r) for r in rows)
    widths = [max(minwidth, max((len(r[i]) for r in rows if len(r) > i + 1), default=0)
                  + padding) for i in range(count - 1)]
    return "\n".join("".join(cell.ljust(widths[i]) if i < len(row) - 1 else cell
                             for i, cell in enumerate(row)) for row in rows)


_STATS_TABLE = ("table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t"
                "{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}")
_STATS_HEADERS = {"ID": "CONTAINER ID", "Container": "CONTAINER", "Name": "NAME",
                  "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %",
                  "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS"}


def _binary(size: float) -> str:
    """docker's units.BytesSize: binary units, four significant digits."""
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    i = 0
    while size >= 1024 and i < len(units) - 1:
        size /= 1024.0
        i += 1
    return f"{size:.4g}{units[i]}"


def stats_row(container: Any, pre: dict[str, Any], now: dict[str, Any], trunc: bool) -> dict:
    from pybuild.containers.procinfo import cpu_percent, memory_used

    mem = now.get("memory_stats") or {}
    used, limit = memory_used(now), mem.get("limit", 0)
    io = {e["op"]: e["value"] for e in now["blkio_stats"]["io_service_bytes_recursive"]}
    running = bool(mem)
    return {
        "ID": container.id[:12] if trunc else container.id, "Name": container.name,
        "Container": container.name,
        "CPUPerc": f"{cpu_percent(pre, now):.2f}%" if running else "0.00%",
        "MemUsage": f"{_binary(used)} / {_binary(limit)}" if running else "0B / 0B",
        "MemPerc": f"{used / limit * 100:.2f}%" if running and limit else "0.00%",
        "NetIO": "--", "BlockIO": f"{human_size(io.get('read', 0))} / "
                                  f"{human_size(io.get('write', 0))}",
        "PIDs": str((now.get("pids_stats") or {}).get("current", 0)),
    }


@click.command("stats")
@click.option("-a", "--all", "all_", is_flag=True, help="Show all containers (default: running).")
@click.option("--no-stream", is_flag=True, help="Print one reading and exit.")
@click.option("--no-trunc", is_flag=True, help="Do not truncate output.")
@click.option("--format", "fmt", default=None, help="Go template, or table TEMPLATE.")
@click.argument("containers", nargs=-1)
@click.pass_context
def stats_command(ctx: click.Context, all_: bool, no_stream: bool, no_trunc: bool,
                  fmt: str | None, containers: tuple[str, ...]) -> None:
    """Display a live stream of containers' resource usage."""
    from pybuild.containers.procinfo import sample

    client = get_client(ctx)
    chosen = [client.containers.get(c) for c in containers] if containers else \
        client.containers.list(all=all_)
    pre = {c.id: sample(c.config, c.state().running) for c in chosen}
    while True:
        time.sleep(1.0)
        now = {c.id: sample(c.config, c.state().running) for c in chosen}
        rows = [stats_row(c, pre[c.id], now[c.id], not no_trunc) for c in chosen]
        if fmt and not fmt.startswith("table"):
            text = "\n".join(render(fmt, row) for row in rows)
        else:
            text = render_rows(fmt or _STATS_TABLE, rows, _STATS_HEADERS).rstrip("\n")
        if no_stream:
            click.echo(text)
            return
        click.echo("\033[2J\033[H" + text)  # docker's redraw: clear, home, the table
        sys.stdout.flush()
        pre = now


@click.command("pause")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def pause_command(ctx: click.Context, containers: tuple[str, ...]) -> None:
    """Pause all processes within one or more containers."""
    _each(ctx, containers, lambda c: c.pause())


@click.command("unpause")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def unpause_command(ctx: click.Context, containers: tuple[str, ...]) -> None:
    """Unpause all processes within one or more containers."""
    _each(ctx, containers, lambda c: c.unpause())


def _each(ctx: click.Context, names: tuple[str, ...], act) -> None:
    """docker's multi-container commands: act on each, print its name, one error line per
    failure, and fail at the end if any failed."""
    from pybuild.errors import ContainerError, PybuildError

    failed = []
    for name in names:
        try:
            act(get_client(ctx).containers.get(name))
            click.echo(name)
        except PybuildError as err:
            failed.append(str(err))
    if failed:
        raise ContainerError("\n".join(failed))


@click.command("rename")
@click.argument("container")
@click.argument("new_name")
@click.pass_context
def rename_command(ctx: click.Context, container: str, new_name: str) -> None:
    """Rename a container."""
    get_client(ctx).containers.get(container).rename(new_name)


@click.command("update")
@click.option("-m", "--memory", default=None, help="Memory limit.")
@click.option("--memory-swap", default=None, help="Memory plus swap; -1 for unlimited swap.")
@click.option("--memory-reservation", default=None, help="Memory soft limit.")
@click.option("--cpus", default=None, help="Number of CPUs.")
@click.option("-c", "--cpu-shares", default=None, help="CPU shares (relative weight).")
@click.option("--cpu-period", default=None, help="CFS period (microseconds).")
@click.option("--cpu-quota", default=None, help="CFS quota (microseconds).")
@click.option("--cpuset-cpus", default=None, help="CPUs in which to allow execution (0-3, 0,1).")
@click.option("--cpuset-mems", default=None, help="MEMs in which to allow execution (0-3, 0,1).")
@click.option("--pids-limit", default=None, help="Tune container pids limit (-1 for unlimited).")
@click.option("--blkio-weight", default=None, help="Block IO weight (10 to 1000, 0 to disable).")
@click.option("--restart", default=None, help="Restart policy to apply when a container exits.")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def update_command(ctx: click.Context, restart: str | None, containers: tuple[str, ...],
                   **limits: str | None) -> None:
    """Update configuration of one or more containers."""
    def act(c: Any) -> None:
        for warning in c.update(restart_policy=restart, **limits)["Warnings"]:
            click.echo(f"WARNING: {warning}", err=True)

    _each(ctx, containers, act)
