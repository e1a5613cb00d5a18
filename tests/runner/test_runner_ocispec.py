"""ocispec without running anything: the config.json against the runtime-spec schema, and
docker's seccomp profile format resolved into the OCI seccomp object."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.ocischema import schema_errors

from pybuild.errors import RunnerError
from pybuild.runner import Mount, Process, Resources, Rlimit, Rootfs, RunSpec, seccomp
from pybuild.runner.ocispec import seccomp_to_oci, to_oci
from pybuild.runner.seccomp_profile import parse


def _sample_config(tmp_path: Path) -> dict[str, object]:
    """Every part of the mapping used once: user, groups, mounts, etc files, limits."""
    (tmp_path / "hosts").write_text("127.0.0.1 localhost\n")
    spec = RunSpec(
        rootfs=Rootfs(lowerdirs=(tmp_path,), upperdir=tmp_path, workdir=tmp_path),
        process=Process(args=("/bin/sh", "-c", "true"), uid=1000, gid=1001,
                        additional_gids=(27,), cwd="/tmp"),
        mounts=(Mount("bind", str(tmp_path), "/data", readonly=True),
                Mount("tmpfs", "", "/scratch", options=("size=1m",))),
        etc_files=(("/etc/hosts", tmp_path / "hosts"),),
        rlimits=(Rlimit("nofile", 1024, 2048),),
        resources=Resources(memory=64 << 20, cpus=0.5, pids_limit=20))
    return to_oci(spec, "/bundle/rootfs", cgroups_path="/pybuild/schema-test")


def test_config_matches_the_runtime_spec_schema(tmp_path: Path) -> None:
    config = _sample_config(tmp_path)
    assert schema_errors(config) == []
    assert config["linux"]["seccomp"]["syscalls"]  # type: ignore[index]


def test_schema_check_catches_a_bad_config(tmp_path: Path) -> None:
    """The check above can fail: a string where the schema wants a list, a negative uid."""
    config = _sample_config(tmp_path)
    config["process"]["args"] = "true"  # type: ignore[index]
    config["process"]["user"]["uid"] = -1  # type: ignore[index]
    errors = schema_errors(config)
    assert any("'args'" in e or "['process', 'args']" in e for e in errors), errors
    assert any("uid" in e for e in errors), errors



# A profile in docker's format, small enough to read: every way a group can be filtered.
_PROFILE = {
    "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
    "archMap": [{"architecture": "SCMP_ARCH_X86_64",
                 "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
                {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
    "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "comment": "always"},
        {"name": "arch_prctl", "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}},
        {"names": ["mount"], "action": "SCMP_ACT_ALLOW",
         "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
         "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
        {"names": ["old"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "5.0"}},
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["s390x"]},
         "args": [{"index": 0, "value": 0x7E020000, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
    ],
}


def _names(config: dict[str, object]) -> list[str]:
    return [n for call in config["syscalls"] for n in call["names"]]  # type: ignore[attr-defined]


def test_seccomp_to_oci_resolves_arches_caps_and_kernels() -> None:
    profile = parse(_PROFILE)
    plain = seccomp_to_oci(profile, ["CHOWN"], machine="x86_64", kernel=(6, 1))
    assert plain["defaultAction"] == "SCMP_ACT_ERRNO" and plain["defaultErrnoRet"] == 1
    assert plain["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    assert _names(plain) == ["read", "write", "arch_prctl", "clone3", "ptrace", "clone"]
    assert plain["syscalls"][2] == {"names": ["clone3"], "action": "SCMP_ACT_ERRNO",
                                    "errnoRet": 38}
    assert plain["syscalls"][4]["args"] == _PROFILE["syscalls"][6]["args"]
    assert "comment" not in plain["syscalls"][0] and "includes" not in plain["syscalls"][1]
    admin = seccomp_to_oci(profile, ["CAP_SYS_ADMIN"], machine="x86_64", kernel=(4, 4))
    assert _names(admin) == ["read", "write", "arch_prctl", "mount", "old", "clone"]
    arm = seccomp_to_oci(profile, [], machine="aarch64", kernel=(6, 1))
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert "arch_prctl" not in _names(arm)
    s390 = seccomp_to_oci(profile, [], machine="s390x", kernel=(6, 1))
    assert s390["architectures"] == [] and "clone" not in _names(s390)


def test_the_oci_rules_are_the_sandboxs() -> None:
    """One selection for both executors: runc gets exactly the rules libseccomp compiles."""
    profile = seccomp.load_profile("default")
    caps = ("CHOWN", "SYS_ADMIN")
    oci = seccomp_to_oci(profile, caps)
    assert [call["names"] for call in oci["syscalls"]] == [
        list(rule.names) for rule in seccomp.applicable(profile, caps)]


@pytest.mark.parametrize(("profile", "message"), [
    ({"syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}, "defaultAction"),
    ({**_PROFILE, "architectures": ["SCMP_ARCH_X86_64"]}, "both 'architectures' and 'archMap'"),
    ({"defaultAction": "SCMP_ACT_ALLOW",
      "syscalls": [{"name": "a", "names": ["b"], "action": "SCMP_ACT_ERRNO"}]}, "syscalls\\[0\\]"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["a"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["b"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "five"}}]},
     "syscalls\\[1\\].includes.minKernel: kernel version 'five'"),
])
def test_a_bad_profile_fails_the_config_naming_the_file(
        tmp_path: Path, profile: dict[str, object], message: str) -> None:
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(profile))
    spec = RunSpec(rootfs=Rootfs(path=tmp_path), process=Process(args=("true",)),
                   seccomp=str(path))
    with pytest.raises(RunnerError, match=f"seccomp profile {path}: .*{message}"):
        to_oci(spec, "/bundle/rootfs")
