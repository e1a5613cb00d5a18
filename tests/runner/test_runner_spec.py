"""Runner pieces that need no root: spec validation, path resolution, cleanup, caps, probe."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from pybuild.errors import RunnerError
from pybuild.runner import (
    DOCKER_DEFAULT_CAPS,
    Mount,
    Process,
    Resources,
    Rlimit,
    Rootfs,
    RunSpec,
    probe,
    validate,
)
from pybuild.runner.caps import mask, normalize
from pybuild.runner.cleanup import remove_created
from pybuild.runner.targets import resolve_in_root


@pytest.fixture
def spec(tmp_path: Path) -> RunSpec:
    for name in ("lower", "upper", "work"):
        (tmp_path / name).mkdir()
    rootfs = Rootfs((tmp_path / "lower",), tmp_path / "upper", tmp_path / "work")
    return RunSpec(rootfs=rootfs, process=Process(args=("/bin/true",)))


def test_defaults_are_dockers(spec: RunSpec) -> None:
    assert validate(spec) is spec
    assert spec.network == "none" and spec.no_new_privs
    assert len(spec.capabilities) == 14 and mask(DOCKER_DEFAULT_CAPS) == 0xA80425FB
    assert "/proc/kcore" in spec.masked_paths and "/proc/sys" in spec.readonly_paths


@pytest.mark.parametrize("change, message", [
    ({"network": "macvlan"}, "network 'macvlan'"),
    ({"network": "container"}, "a netns path goes with network 'container'"),
    ({"network": "container", "netns": "/proc/0/ns/net"}, "does not exist"),
    ({"netns": "/proc/self/ns/net"}, "a netns path goes with network 'container'"),
    ({"hostname": ""}, "hostname"),
    ({"capabilities": ("CAP_FLY",)}, "unknown capability"),
    ({"mounts": (Mount("nfs", "x", "/x"),)}, "mount type 'nfs'"),
    ({"mounts": (Mount("tmpfs", "tmpfs", "relative"),)}, "absolute"),
    ({"mounts": (Mount("bind", "/no/such/source", "/x"),)}, "does not exist"),
    ({"etc_files": (("/etc/hosts", Path("/no/such/file")),)}, "not a file"),
    ({"resources": Resources(memory=1024)}, "6 MiB"),
    ({"resources": Resources(pids_limit=0)}, "pids limit"),
    ({"rlimits": (Rlimit("nofile", 10, 5),)}, "rlimit nofile"),
    ({"rlimits": (Rlimit("bogus", 1, 1),)}, "unknown rlimit"),
    ({"no_new_privs": False}, "seccomp needs no_new_privs"),
    ({"kept_mount_points": ("etc/hosts",)}, "kept mount point 'etc/hosts' must be an absolute"),
])
def test_invalid_specs(spec: RunSpec, change: dict, message: str) -> None:
    with pytest.raises(RunnerError, match=message):
        validate(replace(spec, **change))


@pytest.mark.parametrize("process, message", [
    (Process(args=()), "args are empty"),
    (Process(args=("x",), cwd="tmp"), "absolute"),
    (Process(args=("x",), cwd="/a/../b"), r"\.\."),
    (Process(args=("x",), env=("NOVALUE",)), "NAME=value"),
    (Process(args=("x",), uid=-1), "out of range"),
])
def test_invalid_processes(spec: RunSpec, process: Process, message: str) -> None:
    with pytest.raises(RunnerError, match=message):
        validate(replace(spec, process=process))


def test_invalid_rootfs(spec: RunSpec, tmp_path: Path) -> None:
    with pytest.raises(RunnerError, match="not both"):
        validate(replace(spec, rootfs=replace(spec.rootfs, path=tmp_path)))
    with pytest.raises(RunnerError, match="go together"):
        validate(replace(spec, rootfs=replace(spec.rootfs, workdir=None)))
    comma = tmp_path / "a,b"
    comma.mkdir()
    with pytest.raises(RunnerError, match="','"):
        validate(replace(spec, rootfs=replace(spec.rootfs, lowerdirs=(comma,))))
    with pytest.raises(RunnerError, match="no lower dirs"):
        validate(replace(spec, rootfs=Rootfs()))
    validate(replace(spec, rootfs=Rootfs(path=tmp_path)))


def test_rlimit_infinity_is_valid(spec: RunSpec) -> None:
    validate(replace(spec, rlimits=(Rlimit("core", -1, -1), Rlimit("nofile", 5, -1))))


def test_capability_names() -> None:
    assert normalize("cap_chown") == normalize("CHOWN") == "CHOWN"
    assert mask(["CAP_CHOWN", "kill"]) == 1 | 1 << 5


def test_resolve_in_root_keeps_symlinks_inside(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "run/systemd").mkdir(parents=True)
    os.symlink("/run/systemd/stub.conf", tmp_path / "etc/resolv.conf")
    os.symlink("../../../../../../etc", tmp_path / "up")
    os.symlink("loop2", tmp_path / "loop1")
    os.symlink("loop1", tmp_path / "loop2")
    root = str(tmp_path)
    assert resolve_in_root(root, "/etc/resolv.conf") == "/run/systemd/stub.conf"
    assert resolve_in_root(root, "/up/passwd") == "/etc/passwd"
    assert resolve_in_root(root, "/../../x/./y/") == "/x/y"
    assert resolve_in_root(root, "/missing/deeper") == "/missing/deeper"
    with pytest.raises(OSError, match="too many levels of symbolic links"):
        resolve_in_root(root, "/loop1/x")


def test_remove_created_keeps_what_the_run_used(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    (lower / "etc").mkdir(parents=True)
    (upper / "etc").mkdir(parents=True)
    os.chmod(upper / "etc", os.stat(lower / "etc").st_mode & 0o7777)
    (upper / "etc/hosts").touch()                 # created mount point, still empty
    (upper / "cache/sub").mkdir(parents=True)     # created dirs, the run wrote into one
    (upper / "cache/sub/data").write_text("x")
    (upper / "tmpdir").mkdir()                    # created, empty
    rootfs = Rootfs((lower,), upper, tmp_path / "work")
    remove_created(rootfs, ["/etc/hosts", "/cache", "/cache/sub", "/tmpdir"])
    assert sorted(str(p.relative_to(upper)) for p in upper.rglob("*")) == [
        "cache", "cache/sub", "cache/sub/data"]  # /etc was only copied up: gone too


def test_remove_created_keeps_changed_parent(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    (lower / "etc").mkdir(parents=True)
    (upper / "etc").mkdir(parents=True)
    os.chmod(upper / "etc", 0o700)                # the run chmod-ed /etc
    os.chmod(lower / "etc", 0o755)
    (upper / "etc/hostname").touch()
    remove_created(Rootfs((lower,), upper, tmp_path / "work"), ["/etc/hostname"])
    assert [p.name for p in upper.iterdir()] == ["etc"]
    assert not any((upper / "etc").iterdir())


def test_kept_stub_files_go_but_their_directory_stays_changed(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    (lower / "etc").mkdir(parents=True)
    (upper / "etc").mkdir(parents=True)           # copied up only for the mount points
    os.chmod(upper / "etc", os.stat(lower / "etc").st_mode & 0o7777)
    (upper / "etc/hosts").touch()                 # kept: BuildKit's stub
    (upper / "etc/hostname").touch()              # ours: removed, but /etc holds a stub too
    remove_created(Rootfs((lower,), upper, tmp_path / "work"), ["/etc/hostname"],
                   ["/etc/hosts"])
    assert sorted(str(p.relative_to(upper)) for p in upper.rglob("*")) == ["etc"]


def test_kept_directories_stay_even_when_empty(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"   # a scratch stage: nothing below
    lower.mkdir()
    for name in ("etc", "proc", "dev", "sys", "mnt/cache"):
        (upper / name).mkdir(parents=True)
    (upper / "etc/resolv.conf").touch()
    (upper / "etc/hostname").touch()
    remove_created(Rootfs((lower,), upper, tmp_path / "work"),
                   ["/etc/hostname", "/mnt", "/mnt/cache"],
                   ["/proc", "/dev", "/sys", "/etc", "/etc/resolv.conf"])
    assert sorted(str(p.relative_to(upper)) for p in upper.rglob("*")) == [
        "dev", "etc", "proc", "sys"]


def test_kept_stub_the_run_filled_stays(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    (lower / "etc").mkdir(parents=True)
    (upper / "etc").mkdir(parents=True)
    (upper / "etc/resolv.conf").write_text("nameserver 192.0.2.1\n")
    remove_created(Rootfs((lower,), upper, tmp_path / "work"), [], ["/etc/resolv.conf"])
    assert (upper / "etc/resolv.conf").read_text() == "nameserver 192.0.2.1\n"


def test_probe_reports_reasons() -> None:
    caps = probe()
    assert caps.cgroup_layout in ("v1", "v2", "hybrid", "none")
    if caps.root and caps.overlay and caps.namespaces:
        assert caps.reason_if_missing is None
    else:
        assert caps.reason_if_missing
    assert caps.missing() is None


def test_public_api_is_pinned() -> None:
    import pybuild.runner as runner

    assert sorted(runner.__all__) == sorted([
        "DEFAULT_PATH", "DOCKER_DEFAULT_CAPS", "DOCKER_MASKED_PATHS", "DOCKER_READONLY_PATHS",
        "HostCaps", "Mount", "Process", "Resources", "Rlimit", "Rootfs", "RunSpec", "probe",
        "run", "validate"])
    assert all(hasattr(runner, name) for name in runner.__all__)
