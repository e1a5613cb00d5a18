"""``pybuild run --runtime runc``: the same container as pybuild's own sandbox.

Each test runs the same busybox probe under both runtimes through the CLI and compares what
the two containers saw (nothing is hard-coded that the other runtime must match). What runc
does differently and pybuild's mapping cannot change is named in ``KNOWN_MOUNT_DIFFS`` and
``_env``, with the reason; everything else must be equal.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from pybuild.containers.monitor import cgroup_name
from pybuild.runner import cgroups
from pybuild.runner.runc import DEFAULT_ROOT, Runc

pytestmark = pytest.mark.skipif(shutil.which("runc") is None, reason="runc is not installed")

RUNTIMES = ("pybuild", "runc")

# As tests/runner/test_runner_oci.py finds for the bundle (this host is v1 or hybrid):
KNOWN_MOUNT_DIFFS = {
    # runc mounts the v1 hierarchies on a tmpfs it leaves writable; the sandbox remounts
    # that tmpfs read-only. OCI has no option for it.
    "/sys/fs/cgroup",
    # runc 1.1 mounts only the v1 controllers on a hybrid host, not the cgroup2 tree.
    "/sys/fs/cgroup/unified",
}

PROBE = r"""
s() { printf '\n\043\043 %s\n' "$1"; }
s hostname; hostname
s ids; id -u; id -g; id -G
s status; grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' /proc/self/status
s pid; echo $$; tr '\0' ' ' < /proc/1/cmdline; echo
s env; env | sort
s cwd; pwd
s mounts; cat /proc/self/mountinfo
"""


def sections(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in text.split("\n## ")[1:]:
        name, _, body = part.partition("\n")
        found[name.strip()] = body
    return found


def _mount_table(text: str) -> dict[str, tuple[str, frozenset[str]]]:
    """mount point -> (fstype, the flags that matter), the topmost mount winning."""
    table = {}
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        fields = left.split()
        if right and len(fields) >= 6:
            flags = frozenset(o for o in fields[5].split(",")
                              if o in {"ro", "rw", "nosuid", "nodev", "noexec"})
            table[fields[4]] = (right.split()[0], flags)
    return table


def _env(ours: str, theirs: str) -> tuple[set[str], set[str]]:
    """Entries only one side has. runc sets HOME from the image's /etc/passwd when the
    spec has none; the container's config always has one here, so nothing may differ."""
    a, b = set(ours.splitlines()), set(theirs.splitlines())
    return a - b, b - a


def _both(cli, *args: str) -> dict[str, object]:
    return {rt: cli("run", "--rm", "--runtime", rt, *args) for rt in RUNTIMES}


@pytest.mark.parametrize("user", [(), ("-u", "1000:1001", "-w", "/tmp", "-h", "probe-host",
                                       "-e", "FOO=a b", "--group-add", "27")],
                         ids=["root", "user"])
def test_the_probe_sees_the_same_container(cli, image, user):
    if "--group-add" in user and "--group-add" not in cli("run", "--help").stdout:
        user = user[:-2]
    runs = {rt: cli("run", "--rm", "--runtime", rt, *user, image, "sh", "-c", PROBE)
            for rt in RUNTIMES}
    for rt, res in runs.items():
        assert res.returncode == 0, (rt, res.stderr)
    a, b = (sections(runs[rt].stdout) for rt in RUNTIMES)
    for name in ("ids", "status", "pid", "cwd"):
        assert a[name] == b[name], name
    assert a["pid"].split()[0] == "1"
    # the hostname defaults to the id's first 12 digits: a new id each run
    assert len(a["hostname"].strip()) == len(b["hostname"].strip())
    if user:
        assert a["hostname"] == b["hostname"] == "probe-host\n"
    assert _env(_no_hostname(a["env"]), _no_hostname(b["env"])) == (set(), set())
    diffs = {p for p in _mount_table(a["mounts"]).keys() | _mount_table(b["mounts"]).keys()
             if _mount_table(a["mounts"]).get(p) != _mount_table(b["mounts"]).get(p)}
    assert diffs <= KNOWN_MOUNT_DIFFS
    for point in ("/", "/proc", "/dev", "/sys", "/etc/hosts", "/etc/hostname"):
        assert point in _mount_table(b["mounts"]), point


def _no_hostname(env: str) -> str:
    return "\n".join(e for e in env.splitlines() if not e.startswith("HOSTNAME="))


def test_exit_codes_and_exec_failures(cli, image, tmp_path):
    for args, code in ((("sh", "-c", "echo out; echo err >&2; exit 3"), 3),
                       (("no-such-tool",), 127), (("/etc/passwd",), 126)):
        runs = _both(cli, image, *args)
        assert {rt: r.returncode for rt, r in runs.items()} == dict.fromkeys(RUNTIMES, code)
        if code == 3:
            assert runs["pybuild"].stdout == runs["runc"].stdout == "out\n"
            assert runs["pybuild"].stderr == runs["runc"].stderr == "err\n"
        elif code == 127:
            for res in runs.values():
                assert 'exec: "no-such-tool": executable file not found in $PATH' in res.stderr


def _detached(cli, runtime: str, *args: str) -> tuple[str, int]:
    cid = cli("run", "-d", "--runtime", runtime, *args, check=True).stdout.strip()
    state = json.loads(cli("inspect", cid, check=True).stdout)[0]["State"]
    assert state["Running"] and state["Pid"] > 0
    return cid, state["Pid"]


def _host_memory_limit(pid: int) -> str:
    layout = cgroups.detect()
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, names, path = line.split(":", 2)
        if "memory" in names.split(",") and "memory" in layout.v1:
            return (layout.v1["memory"] / path.lstrip("/") / "memory.limit_in_bytes") \
                .read_text().strip()
        if names == "" and layout.kind == "v2" and layout.v2 is not None:
            return (layout.v2 / path.lstrip("/") / "memory.max").read_text().strip()
    raise AssertionError(f"pid {pid} has no memory cgroup")


def test_memory_limit_seen_from_the_host_and_through_the_cgroup(cli, image):
    seen = {}
    for rt in RUNTIMES:
        cid, pid = _detached(cli, rt, "-m", "48m", image, "sleep", "100")
        try:
            seen[rt] = (_host_memory_limit(pid),
                        cgroups.open(cgroup_name(cid)).stats().memory_limit)
        finally:
            cli("rm", "-f", cid, check=True)
    assert seen["pybuild"] == seen["runc"]
    assert seen["runc"][1] == 48 << 20


def test_oom_kill_is_recorded_under_both(cli, image):
    seen = {}
    for rt in RUNTIMES:
        res = cli("run", "--runtime", rt, "-m", "16m", "--memory-swap", "16m", image, "sh",
                  "-c", "head -c 64m /dev/zero | tail > /dev/null")
        cid = cli("ps", "-a", "-q", "-l", "--no-trunc").stdout.strip() or None
        state = json.loads(cli("inspect", cid, check=True).stdout)[0]["State"] if cid else {}
        seen[rt] = (res.returncode, state.get("OOMKilled"))
        if cid:
            cli("rm", "-f", cid)
    assert seen["pybuild"] == seen["runc"]
    assert seen["runc"][1] is True


def test_stop_sends_the_stop_signal_and_logs_match(cli, image):
    script = "trap 'echo got usr1; exit 5' USR1; echo ready; while :; do sleep 0.1; done"
    seen = {}
    for rt in RUNTIMES:
        cid, _ = _detached(cli, rt, "--stop-signal", "USR1", image, "sh", "-c", script)
        try:
            deadline = time.monotonic() + 10
            while "ready" not in cli("logs", cid).stdout and time.monotonic() < deadline:
                time.sleep(0.05)
            cli("stop", cid, check=True)
            state = json.loads(cli("inspect", cid, check=True).stdout)[0]["State"]
            seen[rt] = (state["ExitCode"], cli("logs", cid).stdout)
        finally:
            cli("rm", "-f", cid)
    assert seen["pybuild"] == seen["runc"] == (5, "ready\ngot usr1\n")


def test_kill_signals_the_container_under_both(cli, image):
    codes = {}
    for rt in RUNTIMES:
        cid, _ = _detached(cli, rt, image, "sleep", "100")
        cli("kill", "-s", "KILL", cid, check=True)
        codes[rt] = cli("wait", cid, check=True).stdout.strip()
        cli("rm", "-f", cid)
    assert codes["pybuild"] == codes["runc"] == str(128 + signal.SIGKILL)


def test_settings_default_runtime(cli, image, store):
    settings = store.root / "settings.json"
    settings.write_text(json.dumps({"default-runtime": "runc"}))
    try:
        cid, _ = _detached(cli, "runc", image, "sleep", "100")
        plain = cli("run", "-d", image, "sleep", "100", check=True).stdout.strip()
        ids = {c["id"] for c in Runc(DEFAULT_ROOT).list()}
        assert plain in ids and cid in ids
        cli("rm", "-f", cid, plain, check=True)
        assert not {cid, plain} & {c["id"] for c in Runc(DEFAULT_ROOT).list()}
    finally:
        settings.unlink()
    other = cli("run", "-d", image, "sleep", "100", check=True).stdout.strip()
    try:
        assert other not in {c["id"] for c in Runc(DEFAULT_ROOT).list()}
    finally:
        cli("rm", "-f", other)


def test_rm_force_leaves_nothing(cli, image, store):
    cid, pid = _detached(cli, "runc", "-m", "32m", image, "sleep", "100")
    state_dir = store.root / "containers" / cid
    assert (state_dir / "bundle" / "config.json").exists()
    cli("rm", "-f", cid, check=True)
    assert not state_dir.exists()
    assert str(state_dir) not in Path("/proc/self/mountinfo").read_text()
    assert cid not in {c["id"] for c in Runc(DEFAULT_ROOT).list()}
    assert not os.path.exists(f"/proc/{pid}")
    left = [root for root, dirs, _ in os.walk("/sys/fs/cgroup")
            if f"ctr-{cid[:16]}" in dirs]
    assert left == []


def test_no_runc_on_path_is_one_error_line(cli, image):
    res = cli("run", "--rm", "--runtime", "runc", image, "true",
              env={**os.environ, "PATH": "/nonexistent"})
    assert res.returncode != 0
    assert len(res.stderr.splitlines()) == 1 and "runc" in res.stderr
    assert cli("ps", "-a", "-q").stdout == ""


NET_PROBE = "ip -o -4 addr show eth0 | wc -l; ip route | grep -c '^default via'; " \
    "grep -c . /etc/resolv.conf"


def test_the_default_bridge_and_a_shared_netns_under_both(cli, image):
    runs = _both(cli, image, "sh", "-c", NET_PROBE)
    for rt, res in runs.items():
        assert res.returncode == 0, (rt, res.stderr)
        assert res.stdout.split()[:2] == ["1", "1"], (rt, res.stdout)  # eth0 and a route
    assert runs["pybuild"].stdout == runs["runc"].stdout
    cid = cli("run", "-d", "--runtime", "runc", image, "sleep", "60").stdout.strip()
    try:
        ip = cli("inspect", "-f", "{{.NetworkSettings.IPAddress}}", cid).stdout.strip()
        assert ip
        for rt in RUNTIMES:
            shared = cli("run", "--rm", "--runtime", rt, "--network", f"container:{cid}",
                         image, "ip", "-o", "-4", "addr", "show", "eth0")
            assert shared.returncode == 0 and f"inet {ip}/" in shared.stdout, (rt, shared)
        ping = cli("run", "--rm", "--runtime", "runc", image, "ping", "-c", "1", "-W", "3", ip)
        assert ping.returncode == 0, ping.stdout + ping.stderr
    finally:
        cli("rm", "-f", cid)
