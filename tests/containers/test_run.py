"""``pybuild run`` and the lifecycle commands, end to end through the CLI, in the busybox
image: what the container sees, what the host keeps afterwards, and docker's exit codes."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from pybuild.runner.caps import DOCKER_DEFAULT_CAPS

# CapEff of docker's default set: the capability numbers of DOCKER_DEFAULT_CAPS
# (linux/capability.h), docker's 14: 0x00000000a80425fb
_CAP_NUMBERS = {"CHOWN": 0, "DAC_OVERRIDE": 1, "FOWNER": 3, "FSETID": 4, "KILL": 5,
                "SETGID": 6, "SETUID": 7, "SETPCAP": 8, "NET_BIND_SERVICE": 10, "NET_RAW": 13,
                "SYS_CHROOT": 18, "MKNOD": 27, "AUDIT_WRITE": 29, "SETFCAP": 31}


def leftovers(store, container_id: str) -> list[str]:
    found = []
    if (store.root / "containers" / container_id).exists():
        found.append("state dir")
    if container_id[:16] in Path("/proc/self/mountinfo").read_text():
        found.append("mount")
    for root, dirs, _ in os.walk("/sys/fs/cgroup"):
        if any(d.startswith(f"ctr-{container_id[:16]}") for d in dirs):
            found.append(f"cgroup under {root}")
        if root.count("/") > 6:
            dirs[:] = []
    return found


def test_a_foreground_run_prints_the_output_and_exits_with_its_code(cli, image, store):
    res = cli("run", "--rm", image, "sh", "-c", "echo out; echo err >&2; exit 3")
    assert res.returncode == 3
    assert res.stdout == "out\n" and res.stderr == "err\n"
    assert cli("ps", "-a", "-q").stdout == ""


def test_what_the_container_sees(cli, image):
    res = cli("run", "--rm", "-e", "GREETING=hi there", "-w", "/tmp", "-u", "4242:4242",
              "-h", "probe-host", image, "sh", "-c",
              'echo "$$ $(hostname) $(id -u):$(id -g) $PWD $GREETING $HOME";'
              " grep CapEff /proc/self/status; grep NoNewPrivs /proc/self/status",
              check=True)
    first, cap, nnp = res.stdout.splitlines()
    assert first == "1 probe-host 4242:4242 /tmp hi there /"  # unlisted: HOME=/
    assert cap.split()[1] == "0000000000000000"  # a non-root user keeps no capabilities
    assert nnp.split()[1] == "1"
    root = cli("run", "--rm", image, "grep", "CapEff", "/proc/self/status", check=True)
    assert int(root.stdout.split()[1], 16) == 0xA80425FB
    assert set(DOCKER_DEFAULT_CAPS) == set(_CAP_NUMBERS)
    dropped = cli("run", "--rm", "--cap-drop", "ALL", "--cap-add", "CHOWN", image, "grep",
                  "CapEff", "/proc/self/status", check=True)
    assert int(dropped.stdout.split()[1], 16) == 1 << _CAP_NUMBERS["CHOWN"]
    named = cli("run", "--rm", "--name", "seen-name", image, "hostname", check=True)
    assert len(named.stdout.strip()) == 12  # the id's first 12 hex digits, as docker


def test_detached_container_outlives_the_cli_and_logs_follow(cli, image, store):
    cid = cli("run", "-d", "--name", "ticker", image, "sh", "-c",
              "for i in 1 2 3; do echo tick $i; sleep 0.3; done", check=True).stdout.strip()
    assert len(cid) == 64
    assert "ticker" in cli("ps").stdout
    follow = cli("logs", "-f", "ticker", check=True, timeout=30)
    assert follow.stdout == "tick 1\ntick 2\ntick 3\n"
    assert cli("wait", "ticker", check=True).stdout.strip() == "0"
    data = json.loads(cli("inspect", "ticker", check=True).stdout)[0]
    assert data["State"]["Status"] == "exited" and data["State"]["ExitCode"] == 0
    assert data["Name"] == "/ticker" and data["Config"]["Cmd"][0] == "sh"
    assert data["State"]["StartedAt"] <= data["State"]["FinishedAt"]
    assert cli("logs", "--tail", "1", "ticker", check=True).stdout == "tick 3\n"
    cli("rm", "ticker", check=True)
    assert leftovers(store, cid) == []


def test_stop_sends_the_stop_signal_then_kills(cli, image, store):
    cli("run", "-d", "--name", "polite", image, "sh", "-c",
        "trap 'echo bye; exit 0' TERM; while :; do sleep 0.1; done", check=True)
    time.sleep(0.3)
    started = time.monotonic()
    cli("stop", "polite", check=True)
    assert time.monotonic() - started < 5
    assert cli("inspect", "-f", "{{.State.ExitCode}}", "polite").stdout.strip() == "0"
    assert cli("logs", "polite").stdout == "bye\n"
    cid = cli("run", "-d", "--name", "stubborn", image, "sleep", "100", check=True).stdout
    started = time.monotonic()
    cli("stop", "-t", "1", "stubborn", check=True)
    elapsed = time.monotonic() - started
    assert 1 <= elapsed < 5  # sleep as PID 1 ignores SIGTERM: killed after the timeout
    assert cli("inspect", "-f", "{{.State.ExitCode}}", "stubborn").stdout.strip() == "137"
    cli("rm", "polite", "stubborn", check=True)
    assert leftovers(store, cid.strip()) == []


def test_rm_force_leaves_nothing(cli, image, store):
    cid = cli("run", "-d", "-m", "64m", image, "sleep", "100", check=True).stdout.strip()
    pid = json.loads(cli("inspect", cid).stdout)[0]["State"]["Pid"]
    assert pid > 0 and Path(f"/proc/{pid}").exists()
    assert cli("rm", cid).returncode != 0  # running: refused without -f
    cli("rm", "-f", cid, check=True)
    assert not Path(f"/proc/{pid}").exists()
    assert leftovers(store, cid) == []


def test_restart_on_failure_restarts_exactly_n_times(cli, image):
    cli("run", "-d", "--name", "flaky", "--restart", "on-failure:3", image, "sh", "-c",
        "echo try; exit 1", check=True)
    assert cli("wait", "flaky", check=True, timeout=60).stdout.strip() == "1"
    data = json.loads(cli("inspect", "flaky").stdout)[0]
    assert data["RestartCount"] == 3
    assert cli("logs", "flaky").stdout == "try\n" * 4
    cli("rm", "flaky", check=True)


def test_named_volume_outlives_its_container_and_a_ro_bind_refuses_writes(cli, image,
                                                                         tmp_path):
    cli("run", "--rm", "-v", "keep-data:/data", image, "sh", "-c", "echo kept > /data/f",
        check=True)
    res = cli("run", "--rm", "-v", "keep-data:/data", image, "cat", "/data/f", check=True)
    assert res.stdout == "kept\n"
    host = tmp_path / "host"
    host.mkdir()
    (host / "in").write_text("from host\n")
    ro = cli("run", "--rm", "-v", f"{host}:/h:ro", image, "sh", "-c",
             "cat /h/in; echo x > /h/new")
    assert ro.returncode != 0 and ro.stdout == "from host\n"
    assert "Read-only file system" in ro.stderr and not (host / "new").exists()


@pytest.mark.parametrize("args, code, message", [
    (("--pull", "never", "nosuch/image:1", "true"), 1, "No such image"),
    (("-m", "1k", "{image}", "true"), None, "memory"),
    (("{image}", "nosuchcmd"), 127, 'exec: "nosuchcmd": executable file not found'),
])
def test_bad_input_is_one_line_and_leaves_nothing(cli, image, args, code, message):
    before = cli("ps", "-a", "-q", "--no-trunc").stdout
    res = cli("run", "--rm", *(a.format(image=image) for a in args))
    assert res.returncode != 0 and (code is None or res.returncode == code)
    assert message in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert cli("ps", "-a", "-q", "--no-trunc").stdout == before


def test_a_name_is_taken_once(cli, image):
    cli("create", "--name", "only-one", image, "true", check=True)
    res = cli("run", "--name", "only-one", image, "true")
    assert res.returncode == 1 and 'name "/only-one" is already in use' in res.stderr
    cli("rm", "only-one", check=True)


def test_memory_limit_kills_a_hungry_workload(cli, image):
    # 64 MB of tmpfs pages, charged to the container: dd itself is the workload (PID 1)
    hungry = ("dd", "if=/dev/zero", "of=/work/x", "bs=1M", "count=64")
    res = cli("run", "--name", "hungry", "-m", "32m", "--tmpfs", "/work", image, *hungry)
    assert res.returncode == 137
    assert cli("inspect", "-f", "{{.State.OOMKilled}}", "hungry").stdout.strip() == "true"
    cli("rm", "hungry", check=True)
    fed = cli("run", "--name", "fed", "-m", "128m", "--tmpfs", "/work", image, *hungry)
    assert fed.returncode == 0 and "64+0 records out" in fed.stderr
    assert cli("inspect", "-f", "{{.State.OOMKilled}}", "fed").stdout.strip() == "false"
    cli("rm", "fed", check=True)


def test_volumes_from_the_image_are_filled_once_and_anonymous_ones_go_with_rm_v(cli, image,
                                                                              store, tmp_path):
    from support.build import run_build

    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {image}\nRUN mkdir -p /seed && echo from-image > "
                                    "/seed/f && chown 7:8 /seed/f\nVOLUME /seed\n")
    run_build(store, ctx, tags=("vol/seeded:1",))
    named = cli("run", "--rm", "-v", "seeded-named:/seed", "vol/seeded:1", "sh", "-c",
                "stat -c '%u:%g' /seed/f; cat /seed/f; echo changed > /seed/f", check=True)
    assert named.stdout == "7:8\nfrom-image\n"
    again = cli("run", "--rm", "-v", "seeded-named:/seed", "vol/seeded:1", "cat", "/seed/f",
                check=True)
    assert again.stdout == "changed\n"  # filled once, on first use
    assert "seeded-named" in cli("volume", "ls", "-q", check=True).stdout.split()
    assert cli("volume", "rm", "seeded-named").returncode == 0
    cid = cli("create", "vol/seeded:1", "cat", "/seed/f", check=True).stdout.strip()
    anon = json.loads(cli("inspect", cid).stdout)[0]["Mounts"][0]
    assert anon["Type"] == "volume" and anon["Destination"] == "/seed"
    assert cli("volume", "rm", anon["Name"]).returncode != 0  # in use by the container
    assert cli("start", "-a", cid, check=True).stdout == "from-image\n"
    cli("rm", "-v", cid, check=True)
    assert anon["Name"] not in cli("volume", "ls", "-q").stdout


def test_commit_makes_an_image_with_the_change_and_diff_lists_it(cli, image):
    cli("run", "--name", "changer", image, "sh", "-c",
        "echo new > /added; rm /bin/vi; echo x >> /etc/passwd", check=True)
    rows = cli("diff", "changer", check=True).stdout.splitlines()
    assert {"A /added", "D /bin/vi", "C /etc/passwd", "C /etc"} <= set(rows)
    image_id = cli("commit", "-c", "ENV COMMITTED=yes", "-m", "from a container", "changer",
                   "committed/img:1", check=True).stdout.strip()
    assert image_id.startswith("sha256:")
    res = cli("run", "--rm", "committed/img:1", "sh", "-c",
              'cat /added; test -e /bin/vi || echo "vi gone"; echo $COMMITTED', check=True)
    assert res.stdout == "new\nvi gone\nyes\n"
    history = cli("history", "--no-trunc", "committed/img:1", check=True).stdout
    assert "from a container" in history
    cli("rm", "changer", check=True)


def test_volumes_from_shares_a_containers_volumes(cli, image, tmp_path):
    cli("create", "--name", "datastore", "-v", "shared-vol:/shared", image, "true", check=True)
    cli("run", "--rm", "--volumes-from", "datastore", image, "sh", "-c",
        "echo shared > /shared/f", check=True)
    res = cli("run", "--rm", "--volumes-from", "datastore:ro", image, "sh", "-c",
              "cat /shared/f; echo no > /shared/g")
    assert res.stdout == "shared\n" and res.returncode != 0
    assert "Read-only file system" in res.stderr
    assert cli("run", "--rm", "--volumes-from", "nosuchbox", image, "true").returncode == 1
    cli("rm", "datastore", check=True)


def test_rmi_of_an_image_a_container_uses_needs_force_and_keeps_the_image(cli, image, store,
                                                                          tmp_path):
    from support.build import run_build

    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {image}\nLABEL used=yes\n")
    image_id, _ = run_build(store, ctx, tags=("used/img:1",))
    cid = cli("create", "used/img:1", "true", check=True).stdout.strip()
    res = cli("rmi", "used/img:1")
    assert res.returncode != 0 and f"container {cid[:12]} is using" in res.stderr
    assert cli("rmi", "-f", "used/img:1", check=True).stdout.strip() == "Untagged: used/img:1"
    assert store.records.has(image_id)  # still there for the container
    assert cli("start", "-a", cid, check=True).returncode == 0
    cli("rm", cid, check=True)


def test_init_runs_tini_as_pid_1_which_reaps_and_forwards_signals(cli, image):
    res = cli("run", "--rm", "--init", image, "sh", "-c",
              "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$", check=True)
    first, pid = res.stdout.splitlines()
    assert first.startswith("/sbin/docker-init -- sh") and pid != "1"
    cli("run", "-d", "--init", "--name", "inited", image, "sleep", "100", check=True)
    started = time.monotonic()
    cli("stop", "inited", check=True)  # tini passes SIGTERM on: no 10 s wait
    assert time.monotonic() - started < 5
    assert cli("inspect", "-f", "{{.State.ExitCode}}", "inited").stdout.strip() == "143"
    cli("rm", "inited", check=True)


def test_flags_a_course_uses(cli, image, tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text("# comment\nFROM_FILE=1\n")
    cli("run", "-d", "--name", "flags", "-v", "flag-vol:/data", "-v", f"{tmp_path}:/h:ro",
        "--env-file", str(env_file), "-l", "tier=web", "--read-only", "--tmpfs", "/run",
        image, "sleep", "30", check=True)
    try:
        mounts = cli("inspect", "-f", "{{.Mounts}}", "flags", check=True).stdout.strip()
        assert mounts.startswith("[{volume flag-vol ") and " /data local " in mounts
        assert f"{{bind  {tmp_path} /h  ro false rprivate}}" in mounts
        listed = cli("ps", "--filter", "label=tier=web", "--format", "{{.Names}}").stdout
        assert listed == "flags\n"
        env = json.loads(cli("inspect", "flags").stdout)[0]["Config"]["Env"]
        assert "FROM_FILE=1" in env
    finally:
        cli("rm", "-f", "-v", "flags")
    ro = cli("run", "--rm", "--read-only", "--tmpfs", "/scratch", image, "sh", "-c",
             "touch /scratch/ok && touch /nope")
    assert ro.returncode == 1 and "Read-only file system" in ro.stderr
    priv = cli("run", "--rm", "--privileged", image, "sh", "-c",
               "mkdir -p /m && mount -t tmpfs none /m && echo mounted", check=True)
    assert priv.stdout == "mounted\n"
    plain = cli("run", "--rm", image, "sh", "-c", "mkdir -p /m && mount -t tmpfs none /m")
    assert plain.returncode != 0


def test_device_gives_a_host_device_and_a_bad_one_fails_first(cli, image):
    res = cli("run", "--rm", "--device", "/dev/zero:/dev/myzero:rw", image, "sh", "-c",
              "head -c 3 /dev/myzero | od -An -tx1", check=True)
    assert res.stdout.split() == ["00", "00", "00"]
    bad = cli("run", "--rm", "--device", "/dev/no-such-node", image, "true")
    assert bad.returncode != 0 and "--device" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    assert cli("ps", "-a", "-q").stdout == ""


def test_the_state_dir_holds_the_containers_oci_bundle(cli, image, store):
    from support.ocischema import schema_errors

    cid = cli("run", "-d", "-m", "64m", "-h", "bundled", image, "sleep", "30",
              check=True).stdout.strip()
    try:
        config = json.loads((store.root / "containers" / cid / "bundle" /
                             "config.json").read_text())
        assert config["hostname"] == "bundled" and config["process"]["args"] == ["sleep", "30"]
        assert config["linux"]["resources"]["memory"]["limit"] == 64 << 20
        assert schema_errors(config) == []
    finally:
        cli("rm", "-f", cid)


def test_a_container_whose_state_dir_is_removed_is_stopped(cli, image, store):
    import shutil

    cid = cli("run", "-d", image, "sleep", "100", check=True).stdout.strip()
    state = json.loads((store.root / "containers" / cid / "state.json").read_text())
    pid, monitor = state["pid"], state["monitor_pid"]
    shutil.rmtree(store.root / "containers" / cid)
    deadline = time.monotonic() + 10
    while (Path(f"/proc/{pid}").exists() or Path(f"/proc/{monitor}").exists()) and \
            time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists() and not Path(f"/proc/{monitor}").exists()
    assert leftovers(store, cid) == []


def test_a_state_record_a_crash_emptied_reads_as_exited(cli, image, store):
    cid = cli("create", image, "true", check=True).stdout.strip()
    try:
        (store.root / "containers" / cid / "state.json").write_bytes(b"")
        shown = cli("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", cid, check=True)
        assert shown.stdout.split() == ["exited", "137"]
    finally:
        assert cli("rm", cid).returncode == 0
