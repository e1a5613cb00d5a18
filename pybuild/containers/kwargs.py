"""docker-py's ``containers.create``/``run`` keywords, translated to CreateOptions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pybuild.containers.create import CreateOptions
from pybuild.containers.options import environment, resources, restart_policy, volumes
from pybuild.errors import UsageError

_KNOWN = {"name", "environment", "volumes", "mounts", "working_dir", "user", "hostname",
          "entrypoint", "labels", "tty", "stdin_open", "auto_remove", "restart_policy",
          "stop_signal", "stop_timeout", "network_mode", "network", "read_only", "tmpfs",
          "cap_add", "cap_drop", "privileged", "security_opt", "ulimits", "extra_hosts", "dns",
          "dns_search", "init", "mem_limit", "memswap_limit", "mem_reservation",
          "mem_swappiness", "kernel_memory", "oom_kill_disable", "nano_cpus", "cpu_shares",
          "cpu_period", "cpu_quota", "cpuset_cpus", "cpuset_mems", "pids_limit",
          "blkio_weight", "seccomp", "runtime", "volumes_from", "healthcheck", "devices",
          "ports", "publish_all_ports", "network_aliases", "ip"}


def options_from_kwargs(image: str, command: str | Sequence[str] | None,
                        kw: dict[str, Any]) -> tuple[CreateOptions, tuple[str, ...]]:
    """``containers.create``'s docker-py keywords ``kw`` as CreateOptions, and docker's
    warnings for the caller to show."""
    import shlex

    from pybuild.containers.mountspec import parse_tmpfs

    unknown = set(kw) - _KNOWN
    if unknown:
        raise UsageError(f"unknown container option(s): {', '.join(sorted(unknown))}")
    if isinstance(command, str):
        command = shlex.split(command)
    entrypoint = kw.get("entrypoint")
    if isinstance(entrypoint, str):
        entrypoint = shlex.split(entrypoint) if entrypoint else []
    security = list(kw.get("security_opt") or ())
    seccomp = kw.get("seccomp", "default")
    no_new_privs = True
    for item in security:
        key, _, value = item.partition("=") if "=" in item else item.partition(":")
        if key == "no-new-privileges":
            no_new_privs = value in ("", "true")
        elif key == "seccomp":
            seccomp = None if value == "unconfined" else value
        else:
            raise UsageError(f"invalid --security-opt: {item!r}")
    tmpfs = kw.get("tmpfs") or {}
    tmpfs_specs = [f"{p}:{o}" if o else p for p, o in tmpfs.items()] if isinstance(
        tmpfs, Mapping) else list(tmpfs)
    nano = kw.get("nano_cpus")
    limits, warnings = resources(
        memory=kw.get("mem_limit"), memory_swap=kw.get("memswap_limit"),
        memory_reservation=kw.get("mem_reservation"),
        memory_swappiness=kw.get("mem_swappiness"), kernel_memory=kw.get("kernel_memory"),
        oom_kill_disable=kw.get("oom_kill_disable"),
        cpus=None if nano is None else nano / 1e9, cpu_shares=kw.get("cpu_shares"),
        cpu_period=kw.get("cpu_period"), cpu_quota=kw.get("cpu_quota"),
        cpuset_cpus=kw.get("cpuset_cpus"), cpuset_mems=kw.get("cpuset_mems"),
        pids_limit=kw.get("pids_limit"), blkio_weight=kw.get("blkio_weight"))
    ulimits = tuple((u["Name"], int(u["Soft"]), int(u["Hard"])) if isinstance(u, Mapping)
                    else tuple(u) for u in kw.get("ulimits") or ())
    network_mode = kw.get("network_mode") or kw.get("network") or ""  # "": the default
    if (kw.get("ports") or kw.get("publish_all_ports")) and network_mode in ("host", "none"):
        warnings = (*warnings, _DISCARDED[network_mode])
    extra_hosts = kw.get("extra_hosts") or ()
    if isinstance(extra_hosts, Mapping):
        extra_hosts = [f"{h}:{ip}" for h, ip in extra_hosts.items()]
    return CreateOptions(
        image=image, command=tuple(command) if command else None,
        entrypoint=None if entrypoint is None else tuple(entrypoint), name=kw.get("name"),
        env=environment(kw.get("environment")), working_dir=kw.get("working_dir") or "",
        user=kw.get("user"), hostname=kw.get("hostname") or "",
        labels=dict(kw.get("labels") or {}), tty=bool(kw.get("tty")),
        stdin_open=bool(kw.get("stdin_open")), auto_remove=bool(kw.get("auto_remove")),
        restart=restart_policy(kw.get("restart_policy")), stop_signal=kw.get("stop_signal"),
        stop_timeout=kw.get("stop_timeout"),
        network_mode=network_mode,
        network_aliases=tuple(kw.get("network_aliases") or ()), ip=kw.get("ip") or None,
        ports=_ports(kw.get("ports")), publish_all=bool(kw.get("publish_all_ports")),
        mounts=(*volumes(kw.get("volumes")), *tuple(kw.get("mounts") or ()),
                *(parse_tmpfs(t) for t in tmpfs_specs)),
        read_only=bool(kw.get("read_only")), cap_add=tuple(kw.get("cap_add") or ()),
        cap_drop=tuple(kw.get("cap_drop") or ()), privileged=bool(kw.get("privileged")),
        no_new_privileges=no_new_privs, seccomp=seccomp, resources=limits, ulimits=ulimits,
        extra_hosts=tuple(extra_hosts), dns=tuple(kw.get("dns") or ()),
        dns_search=tuple(kw.get("dns_search") or ()), init=bool(kw.get("init")),
        runtime=kw.get("runtime"), volumes_from=tuple(kw.get("volumes_from") or ()),
        health=_health(kw.get("healthcheck")), devices=tuple(kw.get("devices") or ())), warnings


_DISCARDED = {  # docker's warning for host, and its like for none (where docker says nothing)
    "host": "Published ports are discarded when using host network mode",
    "none": "Published ports are discarded when using network none",
}


def _ports(value: Mapping[Any, Any] | Sequence[str] | None) -> tuple:
    """docker-py's ``ports`` ({"80/tcp": 8080, "81": ("127.0.0.1", 8081), "82": None,
    "83": [1111, 2222]}) or the CLI's ``-p`` values, as bindings."""
    if not value:
        return ()
    from pybuild.network.ports import parse_all

    if not isinstance(value, Mapping):
        return parse_all(str(v) for v in value)
    specs = []
    for key, hosts in value.items():
        port, _, proto = str(key).partition("/")
        container = f"{port}/{proto or 'tcp'}"
        for host in hosts if isinstance(hosts, list) else [hosts]:
            if host is None:
                specs.append(container)
            elif isinstance(host, tuple):
                ip, hport = (host + ("",))[:2]
                specs.append(f"{ip}:{hport or ''}:{container}")
            else:
                specs.append(f"{host}:{container}")
    return parse_all(specs)


def _health(value: Mapping[str, Any] | None) -> dict[str, Any]:
    """docker-py's healthcheck dict (test, interval, timeout, retries, start_period; times
    in nanoseconds) as health.merged()'s keywords (seconds)."""
    if not value:
        return {}
    out: dict[str, Any] = {}
    test = value.get("test")
    if test:
        out["test"] = ["CMD-SHELL", test] if isinstance(test, str) else list(test)
    for key in ("interval", "timeout", "start_period"):
        if value.get(key) is not None:
            out[key] = int(value[key]) / 1e9
    if value.get("retries") is not None:
        out["retries"] = int(value["retries"])
    return out
