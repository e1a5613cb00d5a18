"""The containers' state dirs under ``<store root>/containers``: create, find, read, write."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from pybuild.containers.model import ContainerConfig, State
from pybuild.errors import ContainerError, ContainerNotFound
from pybuild.randomid import hex_id, pick
from pybuild.store.fsutil import atomic_write

# docker's container name rule
NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
_ADJECTIVES = ("brave", "calm", "eager", "fond", "keen", "lucid", "merry", "quiet", "sharp",
               "tender", "vivid", "witty", "zen", "bold", "clever", "gentle")
_NAMES = ("turing", "hopper", "lovelace", "ritchie", "thompson", "knuth", "dijkstra", "liskov",
          "hamilton", "torvalds", "pike", "kernighan", "babbage", "noether", "curie", "shannon")


class ContainerDirs:
    def __init__(self, root: Path, tmp: Path):
        self.root = root  # .../containers
        self.tmp = tmp

    def path(self, container_id: str) -> Path:
        return self.root / container_id

    def new_id(self) -> str:
        return hex_id()

    def free_name(self) -> str:
        taken = {c.name for c in self.configs()}
        for _ in range(100):
            name = f"{pick(_ADJECTIVES)}_{pick(_NAMES)}"
            if name not in taken:
                return name
        return f"pybuild_{hex_id(4)}"

    def check_name(self, name: str, exclude: str = "") -> None:
        """Raise unless ``name`` is valid and no other container has it (call under the
        store lock)."""
        if not NAME_RE.fullmatch(name):
            raise ContainerError(f'Invalid container name "{name}", only '
                                 "[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        for other in self.configs():
            if other.name == name and other.id != exclude:
                raise ContainerError(
                    f'Conflict. The container name "/{name}" is already in use by container '
                    f'"{other.id}". You have to remove (or rename) that container to be able '
                    "to reuse that name.")

    def create(self, config: ContainerConfig) -> Path:
        path = self.path(config.id)
        for sub in ("upper", "work", "etc"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        atomic_write(path / "state.json", State().to_json(), self.tmp, durable=False)
        atomic_write(path / "config.json", config.to_json(), self.tmp)  # last: now it exists
        return path

    def write_config(self, config: ContainerConfig) -> None:
        atomic_write(self.path(config.id) / "config.json", config.to_json(), self.tmp)

    def config(self, container_id: str) -> ContainerConfig:
        try:
            return ContainerConfig.from_json((self.path(container_id) / "config.json").read_bytes())
        except FileNotFoundError:
            raise ContainerNotFound(f"No such container: {container_id}") from None

    def state(self, container_id: str) -> State:
        try:
            data = (self.path(container_id) / "state.json").read_bytes()
        except FileNotFoundError:
            raise ContainerNotFound(f"No such container: {container_id}") from None
        try:
            return State.from_json(data)
        except ValueError:  # not written durably: a crash can leave it empty
            return State(status="exited", exit_code=137, error="its state was lost in a crash")

    def write_state(self, container_id: str, state: State) -> None:
        if self.path(container_id).is_dir():
            # not durable: a state lost to a crash reads as exited (its monitor is gone)
            atomic_write(self.path(container_id) / "state.json", state.to_json(), self.tmp,
                         durable=False)

    def ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(name for name in os.listdir(self.root)
                      if (self.root / name / "config.json").is_file())

    def configs(self) -> Iterator[ContainerConfig]:
        for container_id in self.ids():
            try:
                yield self.config(container_id)
            except ContainerNotFound:  # removed meanwhile
                continue

    def resolve(self, name_or_id: str) -> ContainerConfig:
        """By full id, name (with or without docker's leading "/"), or unique id prefix."""
        wanted = name_or_id.removeprefix("/")
        configs = list(self.configs())
        for c in configs:
            if c.id == wanted or c.name == wanted:
                return c
        matches = [c for c in configs if wanted and c.id.startswith(wanted)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise ContainerError(f"multiple containers match id prefix {wanted}")
        raise ContainerNotFound(f"No such container: {name_or_id}")

    def remove(self, container_id: str) -> None:
        path = self.path(container_id)
        if path.is_dir():
            # out of sight first, so a half-removed dir is never read as a container
            doomed = self.tmp / f"rm-{container_id}-{hex_id(4)}"
            self.tmp.mkdir(parents=True, exist_ok=True)
            os.rename(path, doomed)
            shutil.rmtree(doomed, ignore_errors=True)
