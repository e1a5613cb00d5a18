"""pause/unpause, rename, update, top, stats and export against real containers: what the
container's processes and cgroup show, what the record keeps, docker's messages."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import time
import uuid
from pathlib import Path

import pytest

from pybuild.client import Client
from pybuild.containers.ops import cgroup_of
from pybuild.errors import ContainerError, ContainerNotFound, UsageError


@pytest.fixture
def client(store) -> Client:
    return Client(store.root)


@pytest.fixture
def started(client, image):
    """Start containers that are removed (forcibly, thawed first) whatever the test did."""
    made = []

    def start(cmd: str, **kw):
        c = client.containers.run(image, ["sh", "-c", cmd], detach=True,
                                  name=f"ops-{uuid.uuid4().hex[:8]}", **kw)
        made.append(c)
        return c

    yield start
    for c in made:
        try:
            if c.status == "paused":
                c.unpause()
            c.remove(force=True)
        except ContainerNotFound:
            pass


def _inside(c, path: str) -> Path:
    return Path(f"/proc/{c.state().pid}/root{path}")


def _read(path: Path, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            text = path.read_text().strip()
            if text:
                return text
        except OSError:
            pass
        assert time.monotonic() < deadline, f"{path} never written"
        time.sleep(0.05)


_COUNTER = "i=0; while true; do i=$((i+1)); echo $i > /count; sleep 0.05; done"


def test_pause_freezes_and_unpause_thaws(started, cli):
    c = started(_COUNTER)
    first = _read(_inside(c, "/count"))
    c.pause()
    assert c.status == "paused" and c.attrs["State"]["Status"] == "paused"
    frozen = _inside(c, "/count").read_text()
    time.sleep(0.5)
    assert _inside(c, "/count").read_text() == frozen  # nothing ran meanwhile
    with pytest.raises(ContainerError, match="is already paused"):
        c.pause()
    res = cli("unpause", c.name)
    assert res.returncode == 0 and res.stdout.strip() == c.name
    assert c.status == "running"
    time.sleep(0.5)
    assert int(_inside(c, "/count").read_text()) > int(frozen) >= int(first)
    with pytest.raises(ContainerError, match="is not paused"):
        c.unpause()
    assert cli("pause", c.name).returncode == 0 and c.status == "paused"
    assert cli("unpause", c.name, "nope").returncode != 0  # one failure fails the command
    assert c.status == "running"


def test_pause_needs_a_running_container(client, image):
    c = client.containers.create(image, ["true"])
    try:
        with pytest.raises(ContainerError, match="is not running"):
            c.pause()
    finally:
        c.remove(force=True)


def test_a_paused_container_still_stops_and_is_removed(started):
    c = started("sleep 100")
    c.pause()
    c.stop(timeout=1)
    assert c.status == "exited"
    c.start()
    c.pause()
    c.remove(force=True)
    with pytest.raises(ContainerNotFound):
        c.reload()


def test_rename_keeps_docker_rules(started, client, cli):
    a, b = started("sleep 100"), started("sleep 100")
    new = f"ops-renamed-{uuid.uuid4().hex[:6]}"
    old = a.name
    a.rename(new)
    assert a.name == new and client.containers.get(new).id == a.id
    with pytest.raises(ContainerNotFound):
        client.containers.get(old)
    with pytest.raises(ContainerError, match=f'The container name "/{b.name}" is already in use'):
        a.rename(b.name)
    with pytest.raises(ContainerError, match="Invalid container name"):
        a.rename("-bad name")
    with pytest.raises(ContainerError, match="same name as its current name"):
        a.rename(new)
    assert cli("rename", new, old).returncode == 0
    assert client.containers.get(old).id == a.id and a.state().running


def _memory_dir(c) -> Path:
    return cgroup_of(c.config).dir("memory")


def test_update_changes_the_live_cgroup_and_the_record(started, client, cli):
    c = started("while true; do cat /sys/fs/cgroup/pids/pids.max > /pids; sleep 0.1; done")
    res = cli("update", "--memory", "64m", "--memory-swap", "128m", "--pids-limit", "50",
              "--cpus", "0.5", "--restart", "on-failure:3", c.name)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == c.name
    memory = _memory_dir(c)
    limit = "memory.limit_in_bytes" if (memory / "memory.limit_in_bytes").exists() \
        else "memory.max"
    assert int((memory / limit).read_text()) == 64 << 20
    deadline = time.monotonic() + 10
    while _read(_inside(c, "/pids")) != "50":  # and the container sees it
        assert time.monotonic() < deadline
        time.sleep(0.1)
    fresh = client.containers.get(c.id).config
    assert fresh.resources["memory"] == 64 << 20 and fresh.resources["pids_limit"] == 50
    assert fresh.resources["cpus"] == 0.5 and fresh.restart.maximum_retry_count == 3
    cpu = cgroup_of(c.config).dir("cpu")
    quota = cpu / "cpu.cfs_quota_us"
    assert (int(quota.read_text()) if quota.exists() else
            int((cpu / "cpu.max").read_text().split()[0])) == 50000
    c.restart(timeout=0)  # a restart keeps them
    assert int((_memory_dir(c) / limit).read_text()) == 64 << 20
    res = cli("update", "--memory", "1k", c.name)
    assert res.returncode != 0 and "Minimum memory limit allowed is 6MB" in res.stderr
    with pytest.raises(UsageError):
        c.update()


def test_top_lists_the_containers_processes(started, cli):
    c = started("sleep 101 & sleep 202")
    deadline = time.monotonic() + 10
    while True:
        result = c.top()
        cmds = [row[-1] for row in result["Processes"]]
        if "sleep 101" in cmds and "sleep 202" in cmds:
            break
        assert time.monotonic() < deadline, cmds
        time.sleep(0.05)
    assert result["Titles"] == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    row = result["Processes"][cmds.index("sleep 202")]
    assert row[0] == "root" and int(row[1]) == c.state().pid  # the host's pid of PID 1
    assert row[5] == "?" and row[6] == "00:00:00"
    out = cli("top", c.name, "-o", "pid,comm", check=True).stdout.splitlines()
    assert out[0].split() == ["PID", "COMMAND"] and len(out) == 3
    assert cli("top", c.name, check=True).stdout.split()[:8] == result["Titles"]


def test_top_of_a_stopped_container_fails(client, image):
    c = client.containers.create(image, ["true"])
    try:
        with pytest.raises(ContainerError, match="is not running"):
            c.top()
    finally:
        c.remove()


def test_stats_cpu_and_memory(started, cli):
    from pybuild.containers.procinfo import cpu_percent, memory_used

    busy = started("while :; do :; done")
    filled = started("dd if=/dev/zero of=/t/f bs=1M count=20 && touch /t/done && sleep 100",
                     tmpfs={"/t": ""})
    _read(_inside(filled, "/t/done").parent / "f", timeout=20)
    while not _inside(filled, "/t/done").exists():
        time.sleep(0.05)
    s = busy.stats(stream=False)
    assert set(s) >= {"cpu_stats", "precpu_stats", "memory_stats", "pids_stats"}
    assert cpu_percent({"cpu_stats": s["precpu_stats"]}, s) > 50
    assert s["pids_stats"]["current"] >= 1
    m = filled.stats(stream=False, interval=0.1)
    assert memory_used(m) >= 20 << 20 and m["memory_stats"]["limit"] > 20 << 20
    res = cli("stats", "--no-stream", busy.name, filled.name, check=True)
    head, *rows = res.stdout.splitlines()
    assert head.split()[:4] == ["CONTAINER", "ID", "NAME", "CPU"] and "MEM USAGE / LIMIT" in head
    busy_row = next(r for r in rows if busy.name in r).split()
    assert float(busy_row[2].rstrip("%")) > 50
    res = cli("stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}} {{.PIDs}}",
              filled.name, check=True)
    name, used, _slash, _limit, pids = res.stdout.split()
    assert name == filled.name and used.endswith("MiB") and float(used[:-3]) >= 20
    assert int(pids) >= 1


def test_export_round_trips_through_import(started, client, cli, store):
    c = started("echo data > /added && rm /etc/group && sleep 100")
    _read(_inside(c, "/added"))
    while _inside(c, "/etc/group").exists():
        time.sleep(0.05)
    c.stop(timeout=0)
    data = b"".join(c.export())
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
    assert "added" in names and "bin/busybox" in names and "etc/passwd" in names
    assert "etc/group" not in names and not any(".wh." in n for n in names)
    out = store.tmp / f"export-{c.id[:8]}.tar"
    cli("export", "-o", str(out), c.name, check=True)
    ref = f"localhost/ops-export-{uuid.uuid4().hex[:6]}:latest"
    base = [sys.executable, "-m", "pybuild", "--root", str(store.root)]
    res = subprocess.run([*base, "import", "-", ref], stdin=out.open("rb"),
                         capture_output=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert client.containers.run(ref, ["cat", "/added"], remove=True) == b"data\n"
    assert client.containers.run(ref, ["sh", "-c", "test -e /etc/group || echo gone"],
                                 remove=True) == b"gone\n"
    out.unlink()


def test_stats_streams_until_stopped(started, store):
    c = started("sleep 100")
    base = [sys.executable, "-m", "pybuild", "--root", str(store.root)]
    proc = subprocess.Popen([*base, "stats", c.name], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    time.sleep(3.5)
    proc.kill()
    out, _ = proc.communicate(timeout=10)
    # one table a second (on a terminal each after a clear screen, which click drops here)
    frames = out.decode().split("CONTAINER ID")[1:]
    assert len(frames) >= 2 and all(c.name in f and "PIDS" in f for f in frames)
