"""The flags ``create`` and ``run`` share, and their translation to docker-py's keywords."""

from __future__ import annotations

import os
import sys
from typing import Any

import click


def env_files(paths: tuple[str, ...]) -> list[str]:
    """docker's --env-file: KEY=value lines, # comments, a bare KEY takes the caller's."""
    from pybuild.errors import UsageError

    out = []
    for path in paths:
        try:
            lines = open(path, encoding="utf-8").read().splitlines()
        except OSError as err:
            raise UsageError(f"open {path}: {err.strerror}") from None
        for line in lines:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, sep, _ = line.partition("=")
            if not sep:
                if key in os.environ:
                    out.append(f"{key}={os.environ[key]}")
                continue
            out.append(line)
    return out


def env_flags(values: tuple[str, ...]) -> list[str]:
    """-e KEY=value, or -e KEY for the caller's value (dropped when it has none)."""
    return [v if "=" in v else f"{v}={os.environ[v]}" for v in values
            if "=" in v or v in os.environ]


def _labels(values: tuple[str, ...]) -> dict[str, str]:
    return dict(v.partition("=")[::2] for v in values)


def _ulimits(values: tuple[str, ...]) -> list[tuple[str, int, int]]:
    from pybuild.errors import UsageError

    out = []
    for value in values:
        name, _, limits = value.partition("=")
        soft, _, hard = limits.partition(":")
        try:
            out.append((name, int(soft), int(hard or soft)))
        except ValueError:
            raise UsageError(f"invalid --ulimit {value!r}: use NAME=SOFT[:HARD]") from None
    return out


def create_options(f):
    """The flags ``create`` and ``run`` share, in docker's spelling."""
    options = [
        click.option("--name", default=None, help="Assign a name to the container."),
        click.option("-e", "--env", "env", multiple=True, help="Set an environment variable."),
        click.option("--env-file", multiple=True, help="Read environment variables from a file."),
        click.option("-w", "--workdir", default="", help="Working directory in the container."),
        click.option("-u", "--user", default=None, help="User (name|uid[:group|gid])."),
        click.option("-h", "--hostname", default="", help="Container host name."),
        click.option("--entrypoint", default=None, help="Override the image's ENTRYPOINT."),
        click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open."),
        click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY."),
        click.option("--rm", "auto_remove", is_flag=True,
                     help="Remove the container when it exits."),
        click.option("-v", "--volume", "volume", multiple=True,
                     help="Bind mount or volume: SRC:DST[:ro], or DST for an anonymous one."),
        click.option("--mount", multiple=True, help="type=bind|volume|tmpfs,src=..,dst=.."),
        click.option("--tmpfs", multiple=True, help="Mount a tmpfs: PATH[:OPTIONS]."),
        click.option("--read-only", is_flag=True, help="Mount the root filesystem read-only."),
        click.option("--restart", default="no", help="no|always|on-failure[:N]|unless-stopped"),
        click.option("--stop-signal", default=None, help="Signal to stop the container."),
        click.option("--stop-timeout", type=int, default=None,
                     help="Seconds to wait for it to stop before killing it."),
        click.option("-l", "--label", multiple=True, help="Set a label (KEY=VALUE)."),
        click.option("--network", "--net", "network", default=None,
                     help="bridge (default)|none|host|container:NAME|NETWORK."),
        click.option("--network-alias", "--net-alias", "network_alias", multiple=True,
                     help="A name the container also has on a user network."),
        click.option("--ip", default=None, help="The container's IPv4 address (a user "
                     "network's)."),
        click.option("-p", "--publish", multiple=True,
                     help="Publish a port: [IP:][HOSTPORT:]PORT[/PROTO], ranges too."),
        click.option("-P", "--publish-all", is_flag=True,
                     help="Publish every EXPOSEd port to a free host port."),
        click.option("--add-host", multiple=True, help="Add HOST:IP to /etc/hosts."),
        click.option("--dns", multiple=True, help="Set a DNS server."),
        click.option("--dns-search", multiple=True, help="Set a DNS search domain."),
        click.option("--cap-add", multiple=True, help="Add a Linux capability."),
        click.option("--cap-drop", multiple=True, help="Drop a Linux capability."),
        click.option("--privileged", is_flag=True, help="Give all capabilities, no confinement."),
        click.option("--security-opt", multiple=True,
                     help="no-new-privileges[:true|false], seccomp=PROFILE.json|unconfined"),
        click.option("--ulimit", multiple=True, help="NAME=SOFT[:HARD]"),
        click.option("--device", multiple=True, help="Add a host device: "
                     "HOST[:CONTAINER][:PERMS]."),
        click.option("--init", is_flag=True,
                     help="Run tini as PID 1: it reaps zombies and passes signals on."),
        click.option("--runtime", default=None, help="pybuild (default) or runc."),
        click.option("--pull", default="missing", type=click.Choice(["missing", "always",
                     "never"]), help="Pull the image before creating: missing (default), "
                     "always or never."),
        click.option("--platform", default=None, help="os/arch[/variant] of the image to pull."),
        click.option("--health-cmd", default=None, help="Command to check health."),
        click.option("--health-interval", default=None, help="Time between checks (30s)."),
        click.option("--health-timeout", default=None, help="A check's time limit (30s)."),
        click.option("--health-retries", type=int, default=None,
                     help="Failures in a row that make it unhealthy (3)."),
        click.option("--health-start-period", default=None,
                     help="Time to start before failures count (0s)."),
        click.option("--no-healthcheck", is_flag=True, help="Disable the image's HEALTHCHECK."),
        click.option("--volumes-from", multiple=True, help="Mount a container's volumes: "
                     "CONTAINER[:ro|rw]."),
        click.option("-m", "--memory", default=None, help="Memory limit (e.g. 256m)."),
        click.option("--memory-swap", default=None, help="Memory + swap limit, -1: unlimited."),
        click.option("--memory-reservation", default=None, help="Memory soft limit."),
        click.option("--memory-swappiness", type=int, default=None, help="0 to 100."),
        click.option("--kernel-memory", default=None, help="Kernel memory limit."),
        click.option("--oom-kill-disable", is_flag=True, help="Disable the OOM killer."),
        click.option("--cpus", default=None, help="Number of CPUs (e.g. 0.5)."),
        click.option("-c", "--cpu-shares", type=int, default=None, help="CPU shares."),
        click.option("--cpu-period", type=int, default=None, help="CFS period (µs)."),
        click.option("--cpu-quota", type=int, default=None, help="CFS quota (µs)."),
        click.option("--cpuset-cpus", default=None, help="CPUs to run on (0-3, 0,1)."),
        click.option("--cpuset-mems", default=None, help="Memory nodes (0-3, 0,1)."),
        click.option("--pids-limit", type=int, default=None, help="Process limit."),
        click.option("--blkio-weight", type=int, default=None, help="10 to 1000."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def obtain_image(store: Any, image: str, o: dict[str, Any]) -> None:
    """Pull ``image`` as ``--pull`` says, docker's lines about it on stderr (stdout is the
    container's)."""
    from pybuild.images.obtain import obtain

    renderer = None

    def render(event: Any) -> None:  # the renderer loads only when there is a pull to show
        nonlocal renderer
        if renderer is None:
            from pybuild.cli.registry import LayerRenderer

            renderer = LayerRenderer(sys.stderr)
        renderer(event)

    obtain(store, image, policy=o["pull"], platform=o["platform"], on_event=render)


def create_kwargs(o: dict[str, Any]) -> dict[str, Any]:
    """The parsed flags of ``create``/``run`` as ``client.containers.create``'s keywords."""
    from pybuild.containers.mountspec import parse_mount, parse_tmpfs, parse_volume

    cwd = os.getcwd()
    mounts = [*(parse_volume(v, cwd) for v in o["volume"]),
              *(parse_mount(m, cwd) for m in o["mount"]), *(parse_tmpfs(t) for t in o["tmpfs"])]
    entrypoint = o["entrypoint"]
    return {
        "name": o["name"], "environment": [*env_files(o["env_file"]), *env_flags(o["env"])],
        "working_dir": o["workdir"], "user": o["user"], "hostname": o["hostname"],
        "entrypoint": None if entrypoint is None else ([entrypoint] if entrypoint else []),
        "stdin_open": o["interactive"], "tty": o["tty"], "auto_remove": o["auto_remove"],
        "mounts": mounts, "read_only": o["read_only"], "restart_policy": o["restart"],
        "stop_signal": o["stop_signal"], "stop_timeout": o["stop_timeout"],
        "labels": _labels(o["label"]), "network_mode": o["network"],
        "network_aliases": list(o["network_alias"]), "ip": o["ip"],
        "ports": list(o["publish"]), "publish_all_ports": o["publish_all"],
        "extra_hosts": list(o["add_host"]), "dns": list(o["dns"]),
        "dns_search": list(o["dns_search"]), "cap_add": list(o["cap_add"]),
        "cap_drop": list(o["cap_drop"]), "privileged": o["privileged"],
        "security_opt": list(o["security_opt"]), "ulimits": _ulimits(o["ulimit"]),
        "mem_limit": o["memory"], "memswap_limit": o["memory_swap"],
        "mem_reservation": o["memory_reservation"], "mem_swappiness": o["memory_swappiness"],
        "kernel_memory": o["kernel_memory"], "oom_kill_disable": o["oom_kill_disable"],
        "nano_cpus": None if o["cpus"] is None else _nano(o["cpus"]),
        "cpu_shares": o["cpu_shares"], "cpu_period": o["cpu_period"],
        "cpu_quota": o["cpu_quota"], "cpuset_cpus": o["cpuset_cpus"],
        "cpuset_mems": o["cpuset_mems"], "pids_limit": o["pids_limit"],
        "blkio_weight": o["blkio_weight"], "runtime": o["runtime"],
        "volumes_from": list(o["volumes_from"]),
        "healthcheck": _health_flags(o), "init": o["init"], "devices": list(o["device"]),
    }


def _health_flags(o: dict[str, Any]) -> dict[str, Any] | None:
    """The --health-* flags in docker-py's healthcheck shape (times in nanoseconds)."""
    from pybuild.containers.health import duration
    from pybuild.errors import UsageError

    given: dict[str, Any] = {}
    if o["health_cmd"] is not None:
        given["test"] = ["CMD-SHELL", o["health_cmd"]]
    for key in ("interval", "timeout", "start_period"):
        if o[f"health_{key}"] is not None:
            flag = f"--health-{key.replace('_', '-')}"
            given[key] = int(duration(o[f"health_{key}"], flag) * 1e9)
    if o["health_retries"] is not None:
        given["retries"] = o["health_retries"]
    if o["no_healthcheck"]:
        if given:
            raise UsageError("--no-healthcheck conflicts with --health-* options")
        given["test"] = ["NONE"]
    return given or None


def _nano(text: str) -> int:
    from pybuild.errors import UsageError

    try:
        return int(round(float(text) * 1e9))
    except ValueError:
        raise UsageError(f'invalid argument "{text}" for "--cpus" flag') from None

