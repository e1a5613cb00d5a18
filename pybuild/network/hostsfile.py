"""Names on user networks, through each member's /etc/hosts.

docker answers a container's name and aliases with its embedded DNS server; here every
running member of a user network has, in its /etc/hosts, a line for each member of each user
network it is on (its name, its aliases and its short id, as docker's DNS answers them). A
start and a stop rewrite the files of everyone concerned, so containers started later resolve
too. The files are bind-mounted into the containers: they are rewritten in place (same inode,
written over from the start, then cut), never replaced by a rename, which the container would
not see. One lock per store serialises the rewrites, so the last one has everything.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

LOCK = "hosts.lock"


def base(own_ip: str, hostname: str, current: str) -> str:
    """A container's hosts before its networks' names: ``current`` (what the start wrote:
    localhost and --add-host lines) with its own address and hostname, as docker writes."""
    own = f"{own_ip}\t{hostname}\n" if own_ip else ""
    return current + ("" if not current or current.endswith("\n") else "\n") + own


def write_in_place(path: Path, text: str) -> None:
    """Replace ``path``'s content keeping its inode (a bind mount of it sees the change)."""
    data = text.encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        offset = 0
        while offset < len(data):
            offset += os.pwrite(fd, view[offset:], offset)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    return pid > 0 and os.path.exists(f"/proc/{pid}")


def _running(containers: Path):
    """(state dir, endpoints) of every container whose monitor records an attachment."""
    from pybuild.errors import NetworkError
    from pybuild.network.endpoints import read

    if not containers.is_dir():
        return
    for state_dir in containers.iterdir():
        with contextlib.suppress(NetworkError, OSError):
            record = read(state_dir)
            if record is not None and _alive(record.monitor_pid):
                yield state_dir, record


def lines_for(members, network_ids: set[str]) -> str:
    out = []
    for _, record in members:
        for a in record.attached:
            if a.network_id in network_ids:
                names = dict.fromkeys((record.name, *a.aliases, record.container_id[:12]))
                out.append(f"{a.ip}\t{' '.join(names)}\n")
    return "".join(out)


def refresh(store_root: str | Path, network_ids: Iterable[str]) -> None:
    """Rewrite the hosts file of every running member of the user networks ``network_ids``."""
    from pybuild.store.lock import FileLock

    wanted = set(network_ids)
    if not wanted:
        return
    root = Path(store_root)
    (root / "networks").mkdir(parents=True, exist_ok=True)
    with FileLock(root / "networks" / LOCK, timeout=30):
        members = list(_running(root / "containers"))
        for state_dir, record in members:
            mine = {a.network_id for a in record.attached if a.user}
            if not mine & wanted or not record.hosts_base:
                continue
            hosts = state_dir / "etc" / "hosts"
            if hosts.exists():
                write_in_place(hosts, record.hosts_base + lines_for(members, mine))
