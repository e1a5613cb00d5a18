"""pause, unpause, rename, update and export: operations on a container's record, its
cgroup and its filesystem (top and stats, which only read, are in ``procinfo``)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

from pybuild.containers.model import ContainerConfig
from pybuild.errors import ContainerError, UsageError
from pybuild.store import Store


def _dirs(store: Store):
    from pybuild.containers.lifecycle import dirs_of

    return dirs_of(store)


def cgroup_of(config: ContainerConfig):
    from pybuild.containers.monitor import cgroup_name
    from pybuild.runner.cgroups import open_cgroup

    return open_cgroup(cgroup_name(config.id))


def pause(store: Store, config: ContainerConfig) -> None:
    """Freeze every process of the container (docker pause)."""
    from pybuild.containers.lifecycle import current_state

    state = current_state(store, config.id)
    if state.status == "paused":
        raise ContainerError(f"Container {config.id} is already paused")
    if state.status != "running":
        raise ContainerError(f"Container {config.id} is not running")
    cgroup_of(config).freeze()
    _set_status(store, config, "paused")


def unpause(store: Store, config: ContainerConfig) -> None:
    from pybuild.containers.lifecycle import current_state, thaw

    if current_state(store, config.id).status != "paused":
        raise ContainerError(f"Container {config.id} is not paused")
    thaw(store, config)


def _set_status(store: Store, config: ContainerConfig, status: str) -> None:
    # the monitor writes state.json too: read it fresh and change the one field
    dirs = _dirs(store)
    with store.lock():
        dirs.write_state(config.id, dirs.state(config.id).update(status=status))


def rename(store: Store, config: ContainerConfig, new_name: str) -> ContainerConfig:
    """docker rename: the new name checked by docker's rules, unique under the store lock."""
    new_name = new_name.removeprefix("/")
    if not new_name:
        raise ContainerError("Neither old nor new names may be empty")
    if new_name == config.name:
        raise ContainerError("Renaming a container with the same name as its current name")
    dirs = _dirs(store)
    with store.lock():
        dirs.check_name(new_name, exclude=config.id)
        renamed = dataclasses.replace(dirs.config(config.id), name=new_name)
        dirs.write_config(renamed)
    return renamed


def update(store: Store, config: ContainerConfig, *, restart: str | None = None,
           **flags: Any) -> tuple[ContainerConfig, tuple[str, ...]]:
    """docker update: the limits of ``flags`` (parse_limits' names) set on the live cgroup
    and kept in config.json for the next start, and the restart policy; with docker's
    warnings."""
    from pybuild.containers.lifecycle import current_state
    from pybuild.containers.options import restart_policy
    from pybuild.runner.limits import parse_limits
    from pybuild.runner.spec import Resources

    given = {k: v for k, v in flags.items() if v is not None}
    changed: dict[str, Any] = {}
    warnings: tuple[str, ...] = ()
    if given:
        res, found = parse_limits(update=True, **given)
        defaults = Resources()
        changed = {f.name: getattr(res, f.name) for f in dataclasses.fields(res)
                   if getattr(res, f.name) != getattr(defaults, f.name)}
        warnings = tuple(found)
    policy = None if restart is None else restart_policy(restart)
    if policy is not None and policy.name != "no" and config.auto_remove:
        raise ContainerError("Restart policy cannot be updated because AutoRemove is enabled "
                             "for the container")
    if not changed and policy is None:
        raise UsageError("you must provide one or more flags when using this command")
    if changed and current_state(store, config.id).running:
        cgroup_of(config).update(Resources(**changed))
    dirs = _dirs(store)
    with store.lock():
        fresh = dirs.config(config.id)
        updated = dataclasses.replace(fresh, resources={**fresh.resources, **changed},
                                      restart=policy or fresh.restart)
        dirs.write_config(updated)
    return updated, warnings


def export(store: Store, config: ContainerConfig, out: BinaryIO) -> None:
    """The container's filesystem flattened into one tar: the image's layers with the
    container's changes applied (whiteouts deleting, none left), as ``docker export``."""
    from pybuild.image.config import ImageConfig
    from pybuild.layers.create import write_layer_from_tree
    from pybuild.layers.extract import apply_layer

    image = ImageConfig.from_bytes(store.blobs.read_bytes(config.image_id))
    store.tmp.mkdir(parents=True, exist_ok=True)
    tree = Path(tempfile.mkdtemp(dir=store.tmp, prefix="export-"))
    try:
        os.chmod(tree, 0o755)
        with store.writing():
            store.layers.unpack_to(image.diff_ids, tree)
        with tempfile.TemporaryFile(dir=store.tmp) as changes:
            write_layer_from_tree(_dirs(store).path(config.id) / "upper", changes, upper=True)
            changes.seek(0)
            apply_layer(changes, tree, mode="apply")
        write_layer_from_tree(tree, out, upper=False)
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(tree)
