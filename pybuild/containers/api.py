"""``client.containers``: docker-py's shape over the container records and monitors."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pybuild.containers import lifecycle
from pybuild.containers.attach import Attachment
from pybuild.containers.create import create
from pybuild.containers.inspect import inspect
from pybuild.containers.kwargs import options_from_kwargs
from pybuild.containers.logs import LogLine, follow
from pybuild.containers.model import ContainerConfig, State
from pybuild.errors import ContainerError, ImageNotFound, UsageError

if TYPE_CHECKING:
    from pybuild.client import Client


class Container:
    def __init__(self, client: Client, config: ContainerConfig):
        self.client = client
        self._config = config
        self.warnings: tuple[str, ...] = ()

    @property
    def _store(self):
        return self.client.store

    @property
    def id(self) -> str:
        return self._config.id

    @property
    def short_id(self) -> str:
        return self._config.id[:12]

    @property
    def name(self) -> str:
        return self._config.name

    @property
    def config(self) -> ContainerConfig:
        return self._config

    def state(self) -> State:
        return lifecycle.current_state(self._store, self.id)

    @property
    def status(self) -> str:
        return self.state().status

    @property
    def attrs(self) -> dict[str, Any]:
        from pybuild.containers.health import read
        from pybuild.containers.networking import settings

        path = lifecycle.dirs_of(self._store).path(self.id)
        found = read(path)
        state = self.state()
        return inspect(self._config, state, str(lifecycle.log_path(self._store, self._config)),
                       str(self._store.root / "volumes"),
                       found.to_docker() if found is not None else None,
                       settings(self._config, path, state.running))

    @property
    def health(self) -> str:
        """starting, healthy or unhealthy; "" without a check or while it is not running."""
        from pybuild.containers.health import read

        found = read(lifecycle.dirs_of(self._store).path(self.id))
        return found.status if found is not None and self.state().running else ""

    def reload(self) -> None:
        self._config = lifecycle.dirs_of(self._store).config(self.id)

    def start(self) -> None:
        lifecycle.start(self._store, self._config)

    def start_attached(self) -> Attachment:
        """Start it with its first run's output passed on: ``Attachment.pump`` shows it and
        returns the exit code (``pybuild run`` without ``-d``, ``start -a``)."""
        return lifecycle.start_attached(self._store, self._config)

    def run_attached(self, stdin: int | None) -> int:
        """Run it in this process with ``stdin`` (an fd, or None) and this process's stdout and
        stderr (a pty when it was created with ``tty``); its exit code. It lives as long as
        the caller does: ``run -i``/``-t`` without a monitor of its own."""
        from pybuild.containers.monitor import Monitor

        monitor = Monitor(self._store, self.id, None, attached=True, stdin=stdin)
        monitor.main()
        return monitor.last_code

    def stop(self, timeout: int | None = None, signal: str | int | None = None) -> None:
        lifecycle.stop(self._store, self._config, timeout, signal)

    def restart(self, timeout: int | None = None) -> None:
        lifecycle.stop(self._store, self._config, timeout)
        lifecycle.start(self._store, self._config)

    def kill(self, signal: str | int = "SIGKILL") -> None:
        lifecycle.signal_container(self._store, self._config, lifecycle.parse_signal(signal))

    def wait(self, timeout: float | None = None) -> dict[str, Any]:
        state = lifecycle.wait(self._store, self._config, timeout)
        return {"StatusCode": state.exit_code, "Error": {"Message": state.error}
                if state.error else None}

    def remove(self, force: bool = False, v: bool = False) -> None:
        lifecycle.remove(self._store, self._config, force=force, volumes=v)

    def commit(self, repository: str | None = None, tag: str | None = None,
               message: str = "", author: str = "",
               changes: str | Sequence[str] | None = None) -> str:
        """The container's changes as a new image on its image; the new image's id."""
        from pybuild.containers.commit import commit

        reference = None if repository is None else (
            f"{repository}:{tag}" if tag else repository)
        if isinstance(changes, str):
            changes = [changes]
        return commit(self._store, self._config, reference, changes=tuple(changes or ()),
                      message=message, author=author).id

    def diff(self) -> list[dict[str, Any]]:
        """docker-py's shape: Kind 0 changed, 1 added, 2 deleted."""
        from pybuild.containers.commit import diff

        kinds = {"C": 0, "A": 1, "D": 2}
        return [{"Path": path, "Kind": kinds[kind]} for kind, path in
                diff(self._store, self._config)]

    # cp, export, top, stats, pause, unpause, rename, update (pybuild.containers.ops & co.)
    def copy_from(self, src: str, dest: str, *, archive: bool = False,
                  follow_link: bool = False) -> None:
        """``docker cp CONTAINER:SRC DEST``; ``archive`` keeps the owners."""
        from pybuild.containers.transfer import copy_from

        copy_from(self._store, self._config, src, dest, archive=archive, follow=follow_link)

    def copy_to(self, src: str, dest: str, *, archive: bool = False,
                follow_link: bool = False) -> None:
        """``docker cp SRC CONTAINER:DEST``; ``archive`` keeps the owners."""
        from pybuild.containers.transfer import copy_to

        copy_to(self._store, self._config, src, dest, archive=archive, follow=follow_link)

    def get_archive(self, path: str, out: Any = None, *,
                    follow_link: bool = False) -> tuple[Any, dict[str, Any]]:
        """docker-py's (tar chunks, stat); with ``out`` the tar goes there, chunks None."""
        from pybuild.containers.transfer import chunks, get_archive, spool

        if out is not None:
            return None, get_archive(self._store, self._config, path, out, follow=follow_link)
        buffer = spool()
        info = get_archive(self._store, self._config, path, buffer, follow=follow_link)
        return chunks(buffer), info

    def put_archive(self, path: str, data: Any) -> bool:
        """Extract a tar (bytes or a binary file) into the directory ``path``."""
        import io

        from pybuild.containers.transfer import put_archive

        stream = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
        put_archive(self._store, self._config, path, stream)
        return True

    def export(self, out: Any = None) -> Any:
        """The flattened filesystem as a tar: written to ``out``, or docker-py's chunks."""
        from pybuild.containers.ops import export
        from pybuild.containers.transfer import chunks, spool

        if out is not None:
            export(self._store, self._config, out)
            return None
        buffer = spool()
        export(self._store, self._config, buffer)
        return chunks(buffer)

    def top(self, ps_args: str = "") -> dict[str, Any]:
        from pybuild.containers.procinfo import top

        return top(self._config, self.state().running, ps_args)

    def stats(self, stream: bool = True, interval: float = 1.0) -> Any:
        """docker's stats dicts, each with the sample ``interval`` seconds before as
        precpu_stats; ``stream=False``: one."""
        import time

        from pybuild.containers.procinfo import sample

        def samples() -> Iterator[dict[str, Any]]:
            before = sample(self._config, self.state().running)
            while True:
                time.sleep(interval)
                now = sample(self._config, self.state().running)
                yield {**now, "precpu_stats": before["cpu_stats"]}
                before = now

        return samples() if stream else next(samples())

    def pause(self) -> None:
        from pybuild.containers.ops import pause

        pause(self._store, self._config)

    def unpause(self) -> None:
        from pybuild.containers.ops import unpause

        unpause(self._store, self._config)

    def rename(self, name: str) -> None:
        from pybuild.containers.ops import rename

        self._config = rename(self._store, self._config, name)

    def update(self, *, restart_policy: Any = None, **limits: Any) -> dict[str, Any]:
        """docker-py's names (mem_limit, memswap_limit, nano_cpus, cpu_shares, cpu_period,
        cpu_quota, cpuset_cpus, cpuset_mems, pids_limit, blkio_weight) or parse_limits'."""
        from pybuild.containers.ops import update

        names = {"mem_limit": "memory", "memswap_limit": "memory_swap",
                 "mem_reservation": "memory_reservation"}
        flags = {names.get(k, k): v for k, v in limits.items()}
        if "nano_cpus" in flags:
            nano = flags.pop("nano_cpus")
            flags["cpus"] = None if nano is None else nano / 1e9
        policy = restart_policy
        if isinstance(policy, Mapping):
            count = policy.get("MaximumRetryCount") or 0
            policy = policy.get("Name", "no") + (f":{count}" if count else "")
        self._config, warnings = update(self._store, self._config, restart=policy, **flags)
        return {"Warnings": list(warnings)}

    def exec_run(self, cmd: str | Sequence[str], stdout: bool = True, stderr: bool = True,
                 stdin: bool = False, tty: bool = False, privileged: bool = False,
                 user: str = "", detach: bool = False, stream: bool = False,
                 environment: Mapping[str, str] | Sequence[str] | None = None,
                 workdir: str | None = None):
        """docker-py's: ``ExecResult(exit_code, output)``; with ``stream`` or ``detach``
        exit_code is None and output an iterator of chunks or b""."""
        from pybuild.containers.exec import ExecOptions, command, run_collected

        env = environment or ()
        if isinstance(env, Mapping):
            env = [f"{k}={v}" for k, v in env.items()]
        opts = ExecOptions(args=command(cmd), user=user or None, workdir=workdir or None,
                           env=tuple(env), tty=tty, privileged=privileged, detach=detach)
        return run_collected(self._store, self._config, opts, stdout=stdout, stderr=stderr,
                             stdin=stdin, stream=stream)

    def log_lines(self, *, follow_: bool = False, tail: int | None = None,
                  since: float | None = None) -> Iterator[LogLine]:
        path = lifecycle.log_path(self._store, self._config)

        def alive() -> bool:
            return follow_ and self.state().running

        for line in follow(path, alive, tail=tail):
            if since is None or _epoch(line.time) >= since:
                yield line

    def logs(self, stdout: bool = True, stderr: bool = True, stream: bool = False,
             timestamps: bool = False, tail: str | int = "all", follow: bool | None = None,
             since: float | None = None) -> bytes | Iterator[bytes]:
        streams = {s for s, on in (("stdout", stdout), ("stderr", stderr)) if on}
        count = None if tail == "all" else int(tail)
        lines = self.log_lines(follow_=bool(stream if follow is None else follow),
                               tail=count, since=since)
        chunks = ((f"{ln.time} " if timestamps else "").encode() + ln.text.encode()
                  for ln in lines if ln.stream in streams)
        return chunks if stream else b"".join(chunks)

    def __repr__(self) -> str:
        return f"<Container: {self.short_id}>"


def _epoch(stamp: str) -> float:
    import datetime

    base, _, frac = stamp.rstrip("Z").partition(".")
    when = datetime.datetime.fromisoformat(base).replace(tzinfo=datetime.UTC)
    return when.timestamp() + float(f"0.{frac or 0}")


class ContainerCollection:
    def __init__(self, client: Client):
        self.client = client

    def create(self, image: str, command: str | Sequence[str] | None = None,
               **kwargs: Any) -> Container:
        """A new container, not started; its ``warnings`` are docker's (a limit the kernel
        does not enforce, ...), for the caller to show."""
        opts, warnings = options_from_kwargs(image, command, kwargs)
        container = Container(self.client, create(self.client.store, opts))
        container.warnings = warnings
        return container

    def run(self, image: str, command: str | Sequence[str] | None = None, *,
            detach: bool = False, stdout: bool = True, stderr: bool = False,
            remove: bool = False, **kwargs: Any) -> Container | bytes:
        """As docker-py: detached, the started Container; else wait and return its output
        (stdout by default), raising ContainerError with the exit status when it fails."""
        if remove and detach:
            raise UsageError("remove and detach are incompatible; use auto_remove")
        try:
            container = self.create(image, command, **kwargs)
        except ImageNotFound:  # docker-py's run pulls a missing image (its create does not)
            from pybuild.images.obtain import obtain

            obtain(self.client.store, image)
            container = self.create(image, command, **kwargs)
        if detach:
            container.start()
            return container
        chunks: list[tuple[str, bytes]] = []
        attachment = container.start_attached()
        try:
            status = attachment.pump(lambda data: chunks.append(("stdout", data)),
                                     lambda data: chunks.append(("stderr", data)))
        finally:
            attachment.close()
        wanted = {s for s, on in (("stdout", stdout), ("stderr", stderr)) if on}
        out = b"".join(data for s, data in chunks if s in wanted)
        err = b"".join(data for s, data in chunks if s == "stderr") if status else b""
        if remove:
            container.remove(force=True)
        if status:
            raise ContainerError(
                f"Command '{' '.join(container.config.args)}' in image '{image}' returned "
                f"non-zero exit status {status}: {err.decode(errors='replace').strip()}",
                exit_status=status)
        return out

    def get(self, container_id: str) -> Container:
        dirs = lifecycle.dirs_of(self.client.store)
        return Container(self.client, dirs.resolve(container_id))

    def list(self, all: bool = False, filters: Mapping[str, Any] | None = None,  # noqa: A002
             limit: int = -1) -> list[Container]:
        dirs = lifecycle.dirs_of(self.client.store)
        found = [Container(self.client, c) for c in dirs.configs()]
        found.sort(key=lambda c: c.config.created, reverse=True)
        if not all and not (filters and "status" in filters):
            found = [c for c in found if c.state().running]
        found = [c for c in found if _matches(c, filters or {})]
        return found if limit < 0 else found[:limit]

    def using_volume(self, name: str) -> list[str]:
        """The ids of containers (in any state) that mount the volume ``name``."""
        dirs = lifecycle.dirs_of(self.client.store)
        return [c.id for c in dirs.configs()
                if any(m.type == "volume" and m.source == name for m in c.mounts)]

    def prune(self) -> dict[str, Any]:
        deleted = []
        for c in self.list(all=True):
            if not c.state().running:
                c.remove()
                deleted.append(c.id)
        return {"ContainersDeleted": deleted, "SpaceReclaimed": 0}


def _matches(container: Container, filters: Mapping[str, Any]) -> bool:
    config = container.config
    checks = {
        "status": lambda v: container.status == v,
        "name": lambda v: str(v).lstrip("/") in config.name,
        "id": lambda v: config.id.startswith(str(v)),
        "label": lambda v: _label(config.labels, str(v)),
        "exited": lambda v: container.status == "exited"
        and container.state().exit_code == int(v),
        "ancestor": lambda v: v in (config.image, config.image_id),
    }
    for key, wanted in filters.items():
        values = [wanted] if isinstance(wanted, (str, int, bool)) else list(wanted)
        if key not in checks:
            raise UsageError(f"invalid filter {key!r}")
        if not any(checks[key](v) for v in values):
            return False
    return True


def _label(labels: Mapping[str, str], wanted: str) -> bool:
    key, sep, value = wanted.partition("=")
    return key in labels and (not sep or labels[key] == value)
