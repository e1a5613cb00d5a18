"""Devices in the sandbox: docker's allow-list works, any other node a workload makes cannot be
opened (the v1 devices cgroup), ``RunSpec.devices`` (``--device``) makes and allows a host
node, and parse_device reads docker's flag. Real sandboxes on the busybox image."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
from support.runner import Box, make_box, run_capture

from pybuild.errors import RunnerError
from pybuild.runner import Process, Resources, cgroups, devices, validate
from pybuild.runner.caps import CAPABILITIES
from pybuild.runner.cgroups import Layout, detect
from pybuild.runner.spec import Device

pytestmark = pytest.mark.root


@pytest.fixture
def box(tmp_path: Path) -> Box:
    return make_box(tmp_path)


@pytest.fixture
def v1_devices() -> Path:
    point = devices.hierarchy()
    if point is None:
        pytest.skip("no cgroup v1 devices hierarchy (v2 needs a BPF program, not done)")
    return point


def _dev_cgroups(point: Path) -> set[str]:
    parent = point / "pybuild"
    return {p.name for p in parent.iterdir() if p.name.startswith("dev-")} \
        if parent.is_dir() else set()


def test_the_default_nodes_work(box: Box, v1_devices: Path) -> None:
    script = ("for n in null zero full random urandom; do head -c 4 /dev/$n | wc -c; done;"
              " echo x > /dev/null && echo null-write;"
              " echo x > /dev/full || echo full-is-full;"
              " ls /dev/pts/ptmx >/dev/null && echo pts;"
              " cat /dev/tty 2>&1; true")
    result = run_capture(box.spec(script))
    assert result.code == 0, result
    lines = result.out.splitlines()
    assert lines[:5] == ["0", "4", "4", "4", "4"]  # /dev/null reads empty
    assert "null-write" in lines and "full-is-full" in lines and "pts" in lines
    # no controlling terminal: the kernel's ENXIO, not the cgroup's EPERM
    assert "No such device or address" in result.out
    assert "Operation not permitted" not in result.out


def test_a_terminal_is_allowed(box: Box, v1_devices: Path) -> None:
    script = ("/bin/sh", "-c", "tty; echo hi > /dev/tty && echo wrote")
    spec = box.spec("", process=Process(args=script, terminal=True))
    result = run_capture(spec)
    assert result.code == 0, result
    assert "/dev/pts/" in result.out and "wrote" in result.out


def test_a_made_disk_node_cannot_be_opened(box: Box, v1_devices: Path) -> None:
    before = _dev_cgroups(v1_devices)
    script = ("mknod /tmp/sda b 8 0 && echo made;"
              " head -c 512 /tmp/sda >/dev/null 2>/tmp/err; cat /tmp/err;"
              " mknod /dev/mem2 c 1 1 && head -c 1 /dev/mem2 >/dev/null;"
              " mknod /dev/kmsg2 c 1 11 && head -c 1 /dev/kmsg2 >/dev/null;"
              " echo end")
    result = run_capture(box.spec(script))
    assert result.code == 0, result
    assert result.out.startswith("made\n")  # docker allows mknod of anything ("b *:* m") ...
    assert "Operation not permitted" in result.out  # ... but not opening it
    assert result.err.count("Operation not permitted") == 2, result.err  # mem, kmsg
    assert _dev_cgroups(v1_devices) == before  # the sandbox's devices cgroup is gone


def test_a_device_from_the_spec_is_made_and_allowed(box: Box, v1_devices: Path) -> None:
    rw = Device("/dev/zero", "c", 1, 5, "rw", "/dev/myzero")
    # loop-control is in no default rule (and opening it needs no capability; its ioctls
    # do): made by hand it cannot be opened, given with "r" it opens for reading only
    if not os.path.exists("/dev/loop-control"):
        pytest.skip("no /dev/loop-control on this host")
    ro = Device("/dev/loop-control", "c", 10, 237, "r", "/dev/sub/rloop", mode=0o640)
    denied = run_capture(box.spec("mknod /tmp/lc c 10 237 && exec 3</tmp/lc"))
    assert denied.code != 0 and "Operation not permitted" in denied.err, denied
    script = ("ls -ln /dev/myzero /dev/sub/rloop; head -c 3 /dev/myzero | wc -c;"
              " echo x > /dev/myzero && echo rw-ok; exec 3</dev/sub/rloop && echo r-ok;"
              " exec 4>/dev/sub/rloop")
    result = run_capture(box.spec(script, devices=(rw, ro)))
    lines = result.out.splitlines()
    assert lines[0].startswith("crw-rw-rw-") and "1,   5" in lines[0]
    assert lines[1].startswith("crw-r-----") and "10, 237" in lines[1]
    assert lines[2:5] == ["3", "rw-ok", "r-ok"]
    assert result.code != 0 and "Operation not permitted" in result.err  # "r" only


def test_without_the_cgroup_the_node_is_still_made(box: Box) -> None:
    # whatever the host: the node exists in the container's /dev with the host's numbers
    dev = devices.parse_device("/dev/null:/dev/xnull")
    result = run_capture(box.spec("ls -ln /dev/xnull", devices=(dev,)))
    assert result.code == 0, result
    assert "1,   3" in result.out


def test_parse_device_reads_dockers_forms() -> None:
    plain = devices.parse_device("/dev/zero")
    assert (plain.type, plain.major, plain.minor, plain.permissions) == ("c", 1, 5, "rwm")
    assert plain.target == "/dev/zero" and plain.mode == os.stat("/dev/zero").st_mode & 0o7777
    assert devices.parse_device("/dev/zero:r").permissions == "r"
    both = devices.parse_device("/dev/zero:/dev/myzero")
    assert both.target == "/dev/myzero" and both.permissions == "rwm"
    full = devices.parse_device("/dev/zero:/dev/z:rw")
    assert (full.target, full.permissions) == ("/dev/z", "rw")
    for bad, words in (("/dev/zero:/dev/z:rx", "invalid device mode"),
                       ("a:b:c:d", "invalid device specification"),
                       ("/etc/passwd", "not a character or block device"),
                       ("/dev/nonexistent-pybuild", "No such file")):
        with pytest.raises(RunnerError, match=words):
            devices.parse_device(bad)


def test_validate_keeps_devices_in_dev(box: Box) -> None:
    good = Device("/dev/zero", "c", 1, 5)
    for device, words in (
            (Device("/dev/zero", "c", 1, 5, "rwm", "/etc/zero"), "must be in /dev"),
            (Device("/dev/zero", "c", 1, 5, "rwm", "/dev/pts/0"), "must be in /dev"),
            (Device("/dev/zero", "x", 1, 5), "type 'x'"),
            (Device("/dev/zero", "c", 1, 5, "rwx"), "permissions"),
            (Device("/dev/zero", "c", -1, 5), "out of range"),
            (Device("/dev/zero", "c", 1, 5, "rwm", "/dev/../etc/x"), "'..'")):
        with pytest.raises(RunnerError, match=words):
            validate(box.spec("true", devices=(device,)))
    with pytest.raises(RunnerError, match="given twice"):
        validate(box.spec("true", devices=(good, good)))


def test_rules_and_the_v2_fallback() -> None:
    lines = [r.line() for r in devices.rules((Device("/dev/sdb", "b", 8, 16, "r"),))]
    assert lines[:3] == ["c *:* m", "b *:* m", "c 1:3 rwm"]
    assert "c 136:* rwm" in lines and lines[-1] == "b 8:16 r"
    caps = ("CHOWN", "CAP_MKNOD", "CAP_SETUID")
    assert devices.granted_caps(caps, confined=False) == ("CHOWN", "CAP_SETUID")
    assert devices.granted_caps(caps, confined=True) == caps
    assert devices.hierarchy(Layout("v2")) is None


def test_an_unconfined_sandbox_has_no_mknod(box: Box) -> None:
    """The layout a run is given is the one it uses: without a devices hierarchy in it (as
    on cgroup v2) PID 1 is in no devices cgroup and lacks CAP_MKNOD, so mknod fails."""
    layout = detect()
    bare = replace(layout, hierarchies=tuple(
        (point, data) for point, data in layout.hierarchies if "devices" not in data.split(",")))
    script = "grep CapEff /proc/self/status; mknod /tmp/x b 8 0 && echo made"
    result = run_capture(box.spec(script), layout=bare)
    assert result.code != 0 and "Operation not permitted" in result.err, result
    assert "made" not in result.out
    assert not int(result.out.split()[1], 16) & 1 << CAPABILITIES["MKNOD"]
    if devices.hierarchy(layout) is not None:  # the host's own layout confines, and keeps it
        confined = run_capture(box.spec(script), layout=layout)
        assert confined.code == 0 and confined.out.endswith("made\n"), confined
        assert int(confined.out.split()[1], 16) & 1 << CAPABILITIES["MKNOD"]


def test_the_layout_is_detected_once_per_run(box: Box, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """By the caller only: not again in the sandbox's processes (the count is kept in a
    file, so the forked ones are counted too)."""
    calls = tmp_path / "detects"
    real = cgroups.detect

    def counted() -> Layout:
        with open(calls, "a") as f:
            f.write(f"{os.getpid()}\n")
        return real()

    monkeypatch.setattr(cgroups, "detect", counted)
    result = run_capture(box.spec("true", resources=Resources(pids_limit=50)))
    assert result.code == 0, result
    assert calls.read_text() == f"{os.getpid()}\n"
