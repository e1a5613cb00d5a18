"""``create``: an image and docker's options become a container record and its state dir.

The command is docker's: ``--entrypoint`` replaces the image's ENTRYPOINT and drops its CMD;
arguments replace CMD. The user is resolved against the image's /etc/passwd and /etc/group
now, as runc resolves it, so a typo fails before anything starts.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pybuild.containers.health import from_image, merged
from pybuild.containers.model import ContainerConfig, MountSpec, RestartPolicy
from pybuild.containers.mountspec import anonymous_volumes
from pybuild.errors import BuildError, ContainerError, UsageError
from pybuild.image.config import DEFAULT_PATH, ImageConfig
from pybuild.store import Store
from pybuild.store.layercache import chain_ids

RUNTIMES = ("pybuild", "runc")


@dataclass(frozen=True)
class CreateOptions:
    image: str
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None  # () resets the image's
    name: str | None = None
    env: tuple[str, ...] = ()
    working_dir: str = ""
    user: str | None = None
    hostname: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    tty: bool = False
    stdin_open: bool = False
    auto_remove: bool = False
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    stop_signal: str | None = None
    stop_timeout: int | None = None
    network_mode: str = ""  # "": the default network (docker's bridge)
    network_aliases: tuple[str, ...] = ()
    ip: str | None = None
    ports: tuple = ()  # network.ports.PortBinding
    publish_all: bool = False  # -P: every EXPOSEd port to a free host port
    mounts: tuple[MountSpec, ...] = ()
    read_only: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    privileged: bool = False
    no_new_privileges: bool = True
    seccomp: str | None = "default"
    resources: Mapping[str, Any] = field(default_factory=dict)
    ulimits: tuple[tuple[str, int, int], ...] = ()
    extra_hosts: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    init: bool = False
    runtime: str | None = None  # None: the settings file's default-runtime, else pybuild
    volumes_from: tuple[str, ...] = ()  # CONTAINER[:ro|rw]
    health: Mapping[str, Any] = field(default_factory=dict)  # health.merged()'s keywords
    devices: tuple[str, ...] = ()  # docker's HOST[:CONTAINER][:PERMS]


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")


def command_of(image: ImageConfig, opts: CreateOptions) -> tuple[tuple[str, ...], ...]:
    """(entrypoint, cmd, args) as docker combines them."""
    if opts.entrypoint is not None:
        entrypoint = tuple(opts.entrypoint)
        cmd = tuple(opts.command or ())
    else:
        entrypoint = tuple(image.config.entrypoint or ())
        cmd = tuple(opts.command) if opts.command else tuple(image.config.cmd or ())
    args = entrypoint + cmd
    if not args:
        raise ContainerError("No command specified")
    return entrypoint, cmd, args


def merged_env(image: ImageConfig, extra: Sequence[str], home: str) -> tuple[str, ...]:
    env: dict[str, str] = {}
    for item in (*image.config.env, *extra):
        key, sep, value = item.partition("=")
        if not key:
            raise UsageError(f"invalid environment variable: {item!r}")
        env[key] = value if sep else env.get(key, "")
    env.setdefault("PATH", DEFAULT_PATH)
    env.setdefault("HOME", home)
    return tuple(f"{k}={v}" for k, v in env.items())


def _bounding(known: Mapping[str, int]) -> tuple[str, ...]:
    """Every capability this process could hand on (its bounding set): all of them asks for
    no more than pybuild has (root here may lack CAP_SYS_RESOURCE)."""
    try:
        with open("/proc/self/status") as f:
            line = next(ln for ln in f if ln.startswith("CapBnd:"))
        mask = int(line.split()[1], 16)
    except (OSError, StopIteration, ValueError):
        return tuple(sorted(known))
    return tuple(sorted(name for name, bit in known.items() if mask >> bit & 1))


def capabilities(opts: CreateOptions) -> tuple[str, ...]:
    from pybuild.runner.caps import CAPABILITIES, DOCKER_DEFAULT_CAPS, normalize

    everything = _bounding(CAPABILITIES)
    if opts.privileged:
        return everything
    caps = list(DOCKER_DEFAULT_CAPS)
    adds = [normalize(c) for c in opts.cap_add]
    drops = [normalize(c) for c in opts.cap_drop]
    for cap in (*adds, *drops):
        if cap != "ALL" and cap not in CAPABILITIES:
            raise UsageError(f"unknown capability: {cap!r}")
    if "ALL" in drops:
        caps = []
    caps = [c for c in caps if c not in drops]
    if "ALL" in adds:
        return everything
    caps += [c for c in adds if c not in caps]
    return tuple(caps)


def _devices(specs: tuple[str, ...]) -> tuple[dict[str, Any], ...]:
    """``--device``: each checked now (the host node must exist), as runner Device fields."""
    import dataclasses

    from pybuild.errors import RunnerError
    from pybuild.runner.devices import parse_device

    try:
        return tuple(dataclasses.asdict(parse_device(text)) for text in specs)
    except RunnerError as err:
        raise UsageError(f"--device: {err}") from None


def default_runtime(store: Store) -> str:
    """``default-runtime`` in ``<root>/settings.json`` (as dockerd's daemon.json), else
    pybuild's own sandbox."""
    import json

    try:
        data = json.loads((store.root / "settings.json").read_text())
    except FileNotFoundError:
        return "pybuild"
    except ValueError as err:
        raise UsageError(f"{store.root / 'settings.json'}: invalid JSON: {err}") from None
    runtime = data.get("default-runtime", "pybuild") if isinstance(data, dict) else "pybuild"
    return str(runtime)


def volumes_from(dirs, specs: tuple[str, ...]) -> list[MountSpec]:
    """``--volumes-from CONTAINER[:ro|rw]``: that container's volumes and binds, at the same
    paths, read-only with ``:ro`` (else as they were)."""
    from dataclasses import replace

    out: list[MountSpec] = []
    for spec in specs:
        name, _, mode = spec.partition(":")
        if mode not in ("", "ro", "rw"):
            raise UsageError(f"invalid --volumes-from {spec!r}: the mode is ro or rw")
        source = dirs.resolve(name)
        for m in source.mounts:
            if m.type in ("volume", "bind"):
                readonly = m.readonly if not mode else mode == "ro"
                out.append(replace(m, readonly=readonly, anonymous=False))
    return out


def _network(store: Store, opts: CreateOptions, image: ImageConfig):
    from pybuild.containers.networking import create_fields

    ports = tuple(opts.ports)
    if opts.publish_all:
        from pybuild.network.ports import exposed

        given = {b.key for b in ports}
        ports += tuple(b for b in exposed(image.config.exposed_ports) if b.key not in given)
    return create_fields(store, opts.network_mode, aliases=opts.network_aliases, ip=opts.ip,
                         ports=ports, hostname=opts.hostname)


def create(store: Store, opts: CreateOptions) -> ContainerConfig:
    from pybuild.build.rootfs import RootfsView
    from pybuild.build.users import resolve_user
    from pybuild.containers.records import ContainerDirs
    from pybuild.store.images import resolve

    if opts.init:
        from pybuild.containers.runspec import init_binary

        if init_binary() is None:
            raise UsageError("--init needs tini on the host (apt-get install tini)")
    devices = _devices(opts.devices)
    runtime = opts.runtime or default_runtime(store)
    if runtime not in RUNTIMES:
        raise UsageError(f"unknown runtime {runtime!r}: use {' or '.join(RUNTIMES)}")
    record = resolve(store, opts.image)
    image = ImageConfig.from_bytes(store.blobs.read_bytes(record.id))
    network_mode, networks, ports = _network(store, opts, image)
    entrypoint, cmd, args = command_of(image, opts)
    with store.writing():
        lowerdirs = store.layers.ensure(record.diff_ids)
        view = RootfsView(lowerdirs)
        user = image.config.user if opts.user is None else opts.user
        try:
            ids = resolve_user(view, user or "", "user")
        except BuildError as err:
            raise ContainerError(f"unable to find user {user}: {err}") from None
        dirs = ContainerDirs(store.root / "containers", store.tmp)
        container_id = dirs.new_id()
        given = (*opts.mounts, *volumes_from(dirs, opts.volumes_from))
        mounts = (*given, *anonymous_volumes(image.config.volumes, given))
        with store.lock():
            name = opts.name or dirs.free_name()
            dirs.check_name(name)
            config = ContainerConfig(
                id=container_id, name=name, image=opts.image, image_id=record.id,
                created=now(), args=args, entrypoint=entrypoint, cmd=cmd,
                env=merged_env(image, opts.env, ids.home),
                working_dir=opts.working_dir or image.config.working_dir or "/",
                user=user or "", uid=ids.uid, gid=ids.gid,
                additional_gids=ids.additional_gids,
                hostname=opts.hostname or container_id[:12],
                labels={**image.config.labels, **opts.labels}, tty=opts.tty,
                open_stdin=opts.stdin_open,
                stop_signal=opts.stop_signal or image.config.stop_signal or "SIGTERM",
                stop_timeout=10 if opts.stop_timeout is None else opts.stop_timeout,
                auto_remove=opts.auto_remove, restart=opts.restart,
                network_mode=network_mode, networks=networks, ports=ports, mounts=mounts,
                read_only=opts.read_only,
                capabilities=capabilities(opts), privileged=opts.privileged,
                no_new_privileges=opts.no_new_privileges,
                seccomp=None if opts.privileged else opts.seccomp,
                resources=dict(opts.resources), ulimits=opts.ulimits,
                extra_hosts=opts.extra_hosts, dns=opts.dns, dns_search=opts.dns_search,
                init=opts.init, runtime=runtime, volumes_from=opts.volumes_from,
                healthcheck=merged(from_image(image.config.healthcheck), **opts.health),
                devices=devices,
                lowerdirs=tuple(str(p) for p in reversed(lowerdirs)))
            # the image's layers stay while the container does, even after an rmi
            store.set_gc_root(f"container-{container_id}",
                              blobs=(record.id, record.manifest_digest, *record.diff_ids),
                              chains=chain_ids(record.diff_ids))
            dirs.create(config)
        try:
            from pybuild.containers.volumes import prepare

            prepare(store, mounts, lowerdirs)
        except BaseException:
            from pybuild.containers.lifecycle import remove_files

            remove_files(store, config, volumes=True)
            raise
    return config
