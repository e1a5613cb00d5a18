"""A container's record as the sandbox's ``RunSpec``: its overlay, process, mounts, /etc
files, confinement and limits."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from pybuild.containers.model import ContainerConfig, MountSpec

# docker's /etc/hosts for a container without a network of its own
HOSTS = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
         "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
         "ff02::2\tip6-allrouters\n")

VolumePath = Callable[[MountSpec], Path]
INIT_PATH = "/sbin/docker-init"  # where docker puts its init, bound in from the host


def init_binary() -> str | None:
    """A static tini on the host (Debian's tini package), which ``--init`` runs as PID 1."""
    import shutil

    for name in ("docker-init", "tini-static"):
        found = shutil.which(name)
        if found:
            return os.path.realpath(found)
    return None


def etc_files(config: ContainerConfig, state_dir: Path) -> tuple[tuple[str, Path], ...]:
    """hosts, hostname and resolv.conf in the state dir, written at each start."""
    etc = state_dir / "etc"
    etc.mkdir(exist_ok=True)
    if config.network_mode == "host":
        hosts = Path("/etc/hosts").read_text() if Path("/etc/hosts").is_file() else HOSTS
    else:
        hosts = HOSTS
    extra = "".join(f"{ip}\t{host}\n" for host, _, ip in
                    (h.partition(":") for h in config.extra_hosts))
    (etc / "hosts").write_text(hosts + extra)
    (etc / "hostname").write_text(config.hostname + "\n")
    (etc / "resolv.conf").write_text(_resolv(config))
    return tuple((f"/etc/{n}", etc / n) for n in ("hosts", "hostname", "resolv.conf"))


def _resolv(config: ContainerConfig) -> str:
    from pybuild.containers.networking import is_bridged

    return resolv_conf(bridged=is_bridged(config.network_mode), dns=config.dns,
                       dns_search=config.dns_search)


def resolv_conf(*, bridged: bool, dns: Sequence[str] = (), dns_search: Sequence[str] = ()
                ) -> str:
    """The host's resolv.conf as a container sees it: on a network of its own (``bridged``),
    without the host's loopback resolvers; ``dns`` (else the settings' dns, when bridged)
    and ``dns_search`` in place of the host's."""
    host = Path("/etc/resolv.conf")
    lines = host.read_text().splitlines() if host.is_file() else []
    if bridged:
        # the host's loopback resolvers are not reachable from a netns of its own (docker
        # drops them too); the settings' dns comes before the host's
        lines = [ln for ln in lines if not _loopback_nameserver(ln)]
        if not dns:
            from pybuild.network.settings import load

            dns = load().dns
    if dns:
        lines = [ln for ln in lines if not ln.startswith("nameserver")]
        lines += [f"nameserver {ip}" for ip in dns]
    if dns_search:
        lines = [ln for ln in lines if not ln.startswith(("search", "domain"))]
        lines.append("search " + " ".join(dns_search))
    return "\n".join(lines) + ("\n" if lines else "")


def _loopback_nameserver(line: str) -> bool:
    import ipaddress

    words = line.split()
    if len(words) < 2 or words[0] != "nameserver":
        return False
    try:
        return ipaddress.ip_address(words[1].partition("%")[0]).is_loopback
    except ValueError:
        return False


def run_spec(config: ContainerConfig, state_dir: Path, volume_path: VolumePath):
    from pybuild.containers.networking import runner_mode
    from pybuild.runner.spec import (
        DOCKER_MASKED_PATHS,
        DOCKER_READONLY_PATHS,
        Device,
        Mount,
        Process,
        Resources,
        Rlimit,
        Rootfs,
        RunSpec,
    )

    mounts = []
    for m in config.mounts:
        if m.type == "tmpfs":
            mounts.append(Mount("tmpfs", "tmpfs", m.destination, m.readonly, m.options))
        elif m.type == "bind":
            if not os.path.exists(m.source):  # as docker's -v: a missing host dir is made
                os.makedirs(m.source, exist_ok=True)
            mounts.append(Mount("bind", m.source, m.destination, m.readonly))
        else:
            mounts.append(Mount("bind", str(volume_path(m)), m.destination, m.readonly))
    args = config.args
    if config.init:  # tini reaps and passes signals on, as with docker's --init
        tini = init_binary()
        if tini is None:
            from pybuild.errors import ContainerError

            raise ContainerError("--init needs tini on the host (apt-get install tini)")
        mounts.append(Mount("bind", tini, INIT_PATH, True))
        args = (INIT_PATH, "--", *args)
    return RunSpec(
        rootfs=Rootfs(lowerdirs=tuple(Path(p) for p in config.lowerdirs),
                      upperdir=state_dir / "upper", workdir=state_dir / "work",
                      readonly=config.read_only),
        process=Process(args=args, env=config.env, cwd=config.working_dir,
                        uid=config.uid, gid=config.gid,
                        additional_gids=config.additional_gids, terminal=config.tty),
        hostname=config.hostname, network=runner_mode(config.network_mode),
        mounts=tuple(mounts),
        etc_files=etc_files(config, state_dir), capabilities=config.capabilities,
        no_new_privs=config.no_new_privileges and not config.privileged,
        seccomp=config.seccomp,
        masked_paths=() if config.privileged else DOCKER_MASKED_PATHS,
        readonly_paths=() if config.privileged else DOCKER_READONLY_PATHS,
        resources=Resources(**config.resources),  # always a cgroup: stats, OOM, cleanup
        rlimits=tuple(Rlimit(n, s, h) for n, s, h in config.ulimits),
        devices=tuple(Device(**d) for d in config.devices))
