"""A container in ``docker inspect``'s shape (the fields docker users read)."""

from __future__ import annotations

from typing import Any

from pybuild.containers.model import ContainerConfig, State

_ZERO = "0001-01-01T00:00:00Z"


class MountPoint(dict):
    """A mount as docker's JSON has it, printed by ``--format '{{.Mounts}}'`` as docker's Go
    struct prints: its fields in this order, an absent one empty."""

    __go_fields__ = ("Type", "Name", "Source", "Destination", "Driver", "Mode", "RW",
                     "Propagation")


def inspect(config: ContainerConfig, state: State, log_path: str,
            volume_dir: str, health: dict[str, Any] | None = None,
            network: dict[str, Any] | None = None) -> dict[str, Any]:
    """``network``: NetworkSettings (containers.networking.settings), absent when None."""
    mounts = []
    binds = []
    for m in config.mounts:
        entry: dict[str, Any] = {"Type": m.type, "Destination": m.destination,
                                 "Mode": "ro" if m.readonly else "", "RW": not m.readonly,
                                 "Propagation": "rprivate" if m.type == "bind" else ""}
        if m.type == "volume":
            entry.update(Name=m.source, Source=f"{volume_dir}/{m.source}/_data",
                         Driver="local")
        elif m.type == "bind":
            entry["Source"] = m.source
            binds.append(f"{m.source}:{m.destination}{':ro' if m.readonly else ''}")
        else:
            entry["Source"] = ""
        mounts.append(MountPoint(entry))
    res = config.resources
    return {
        "Id": config.id,
        "Created": config.created,
        "Path": config.args[0],
        "Args": list(config.args[1:]),
        "State": {
            "Status": state.status, "Running": state.status == "running",
            "Paused": state.status == "paused", "Restarting": state.status == "restarting",
            "OOMKilled": state.oom_killed, "Dead": state.status == "dead", "Pid": state.pid,
            "ExitCode": state.exit_code, "Error": state.error,
            "StartedAt": state.started_at or _ZERO, "FinishedAt": state.finished_at or _ZERO,
            **({"Health": health} if health is not None else {}),
        },
        "Image": config.image_id,
        "LogPath": log_path,
        "Name": "/" + config.name,
        "RestartCount": state.restart_count,
        "Driver": "overlay",
        "HostConfig": {
            "Binds": binds or None,
            "NetworkMode": config.network_mode,
            "PortBindings": _port_bindings(config.ports),
            "PublishAllPorts": False,
            "RestartPolicy": {"Name": config.restart.name,
                              "MaximumRetryCount": config.restart.maximum_retry_count},
            "AutoRemove": config.auto_remove,
            "Privileged": config.privileged,
            "ReadonlyRootfs": config.read_only,
            "CapAdd": None, "CapDrop": None,
            "SecurityOpt": None if config.no_new_privileges is False else
            ["no-new-privileges"],
            "Memory": res.get("memory") or 0,
            "NanoCpus": int((res.get("cpus") or 0) * 1e9),
            "CpuPeriod": res.get("cpu_period") or 0,
            "CpuQuota": res.get("cpu_quota") or 0,
            "CpusetCpus": res.get("cpuset_cpus") or "",
            "PidsLimit": res.get("pids_limit"),
            "Devices": [{"PathOnHost": d["path"], "PathInContainer": d["container_path"]
                         or d["path"], "CgroupPermissions": d["permissions"]}
                        for d in config.devices],
        },
        "Mounts": mounts,
        **({"NetworkSettings": network} if network is not None else {}),
        "Config": {
            "Hostname": config.hostname, "Domainname": config.domainname,
            "User": config.user, "Tty": config.tty, "OpenStdin": config.open_stdin,
            "Env": list(config.env), "Cmd": list(config.cmd) or None,
            "Image": config.image, "WorkingDir": config.working_dir,
            "Entrypoint": list(config.entrypoint) or None, "Labels": dict(config.labels),
            "StopSignal": config.stop_signal, "StopTimeout": config.stop_timeout,
            **({"Healthcheck": _healthcheck(config.healthcheck)} if config.healthcheck else {}),
        },
    }


def _port_bindings(ports) -> dict[str, list[dict[str, str]]]:
    """docker's HostConfig.PortBindings: what was asked (a host port 0 as "")."""
    out: dict[str, list[dict[str, str]]] = {}
    for p in ports:
        host = str(p["host_port"] or "")
        if p.get("host_port_end"):
            host += f"-{p['host_port_end']}"
        ip = "" if p["host_ip"] == "0.0.0.0" else p["host_ip"]
        out.setdefault(f"{p['container_port']}/{p['proto']}", []).append(
            {"HostIp": ip, "HostPort": host})
    return out


def _healthcheck(check: dict[str, Any]) -> dict[str, Any]:
    """docker's shape: times in nanoseconds."""
    return {"Test": list(check["test"]), "Interval": int(check["interval"] * 1e9),
            "Timeout": int(check["timeout"] * 1e9),
            "StartPeriod": int(check["start_period"] * 1e9), "Retries": check["retries"]}
