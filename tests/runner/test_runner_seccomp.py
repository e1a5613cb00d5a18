"""Seccomp profiles as docker applies them: parsed from docker's JSON, compiled by libseccomp,
judged by what busybox can do in the sandbox under them."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.runner import Box, make_box, run_capture

from pybuild.errors import RunnerError
from pybuild.runner import DOCKER_DEFAULT_CAPS, libc, seccomp
from pybuild.runner.seccomp_profile import (
    ACTIONS,
    ARCHES,
    OPS,
    Arg,
    Condition,
    Profile,
    Rule,
    dump,
    parse,
)

SYS_ADMIN = (*DOCKER_DEFAULT_CAPS, "SYS_ADMIN")
MKDIR = ["mkdir", "mkdirat"]


@pytest.fixture
def box(tmp_path: Path) -> Box:
    return make_box(tmp_path)


def _write(path: Path, rules: list[dict], default: str = "SCMP_ACT_ALLOW") -> str:
    path.write_text(json.dumps({"defaultAction": default, "syscalls": rules}))
    return str(path)


def _run(box: Box, script: str, **changes: object) -> tuple[int, str]:
    result = run_capture(box.spec(script, **changes))
    return result.code, result.out + result.err


# -- the default profile in the sandbox ---------------------------------------------------

@pytest.mark.root
def test_default_profile_lets_normal_commands_run(box: Box) -> None:
    script = ("grep '^Seccomp:' /proc/self/status; mkdir -p /tmp/a/b; touch /tmp/a/f;"
              "chmod 600 /tmp/a/f; ln -s f /tmp/a/l; ls /tmp/a; stat -c %a /tmp/a/f;"
              "mv /tmp/a/f /tmp/a/g; rm -r /tmp/a; echo $((6*7)) | cat; sleep 0; date >/dev/null;"
              "ps >/dev/null; ping -c1 -W1 127.0.0.1 >/dev/null; echo ok")
    code, out = _run(box, script)
    assert (code, out.split()) == (0, ["Seccomp:", "2", "b", "f", "l", "600", "42", "ok"])


@pytest.mark.root
def test_default_denies_namespaces_unless_sys_admin_as_docker(box: Box) -> None:
    script = "unshare -U true; echo U=$?; unshare -m true; echo m=$?"
    outcomes = {}
    for profile in ("default", None):
        for name, caps in (("default caps", DOCKER_DEFAULT_CAPS), ("+SYS_ADMIN", SYS_ADMIN)):
            _, out = _run(box, script, seccomp=profile, capabilities=caps)
            outcomes[profile, name] = [w for w in out.split() if w[:2] in ("U=", "m=")]
    # docker: the default profile allows unshare only with CAP_SYS_ADMIN; a user namespace
    # needs no capability at all, so only seccomp stands in its way.
    assert outcomes["default", "default caps"] == ["U=1", "m=1"]
    assert outcomes[None, "default caps"] == ["U=0", "m=1"]
    assert outcomes["default", "+SYS_ADMIN"] == ["U=0", "m=0"]
    assert outcomes[None, "+SYS_ADMIN"] == ["U=0", "m=0"]


@pytest.mark.root
def test_args_condition_personality_values(box: Box) -> None:
    # The default profile allows personality() only for five exact values: linux32's
    # PER_LINUX32 (8) is one of them, ADDR_NO_RANDOMIZE (0x40000, setarch -R) is not.
    script = "linux32 true; echo 32=$?; linux64 -R true; echo R=$?"
    code, out = _run(box, script)
    assert "32=0" in out and "R=1" in out and "Operation not permitted" in out
    assert "R=0" in _run(box, script, seccomp=None)[1]


# -- user profiles --------------------------------------------------------------------------

@pytest.mark.root
def test_user_profile_errno_for_mkdir(box: Box, tmp_path: Path) -> None:
    deny = _write(tmp_path / "deny.json", [{"names": MKDIR, "action": "SCMP_ACT_ERRNO"}])
    code, out = _run(box, "mkdir /tmp/x", seccomp=deny)
    assert code == 1 and "Operation not permitted" in out
    assert _run(box, "mkdir /tmp/x && echo made") == (0, "made\n")
    enosys = _write(tmp_path / "enosys.json",
                    [{"names": MKDIR, "action": "SCMP_ACT_ERRNO", "errnoRet": 38}])
    assert "Function not implemented" in _run(box, "mkdir /tmp/y", seccomp=enosys)[1]


@pytest.mark.root
def test_masked_eq_rule_on_clone_flags(box: Box, tmp_path: Path) -> None:
    # unshare() fails when its flags include CLONE_NEWNS, whatever else they hold.
    newns = 0x00020000
    path = _write(tmp_path / "p.json", [{"names": ["unshare"], "action": "SCMP_ACT_ERRNO",
                  "args": [{"index": 0, "value": newns, "valueTwo": newns,
                            "op": "SCMP_CMP_MASKED_EQ"}]}])
    script = ("unshare -u true; echo u=$?; unshare -m true; echo m=$?;"
              "unshare -m -u true; echo mu=$?")
    _, out = _run(box, script, seccomp=path, capabilities=SYS_ADMIN)
    assert [w for w in out.split() if "=" in w] == ["u=0", "m=1", "mu=1"]


@pytest.mark.root
def test_unknown_syscall_names_are_skipped(box: Box, tmp_path: Path) -> None:
    path = _write(tmp_path / "p.json", [
        {"names": ["no_such_syscall_pybuild", *MKDIR], "action": "SCMP_ACT_ERRNO"}])
    code, out = _run(box, "mkdir /tmp/x", seccomp=path)
    assert code == 1 and "Operation not permitted" in out


@pytest.mark.root
def test_capability_includes_and_excludes(box: Box, tmp_path: Path) -> None:
    gated = _write(tmp_path / "inc.json", [{"names": MKDIR, "action": "SCMP_ACT_ERRNO",
                                            "includes": {"caps": ["CAP_SYS_ADMIN"]}}])
    assert _run(box, "mkdir /tmp/x", seccomp=gated)[0] == 0
    assert _run(box, "mkdir /tmp/y", seccomp=gated, capabilities=SYS_ADMIN)[0] == 1
    unless = _write(tmp_path / "exc.json", [{"names": MKDIR, "action": "SCMP_ACT_ERRNO",
                                             "excludes": {"caps": ["CAP_SYS_ADMIN"]}}])
    assert _run(box, "mkdir /tmp/z", seccomp=unless)[0] == 1
    assert _run(box, "mkdir /tmp/w", seccomp=unless, capabilities=SYS_ADMIN)[0] == 0


@pytest.mark.root
def test_kill_action_kills_the_workload(box: Box, tmp_path: Path) -> None:
    path = _write(tmp_path / "p.json", [{"names": MKDIR, "action": "SCMP_ACT_KILL_PROCESS"}])
    assert _run(box, "exec mkdir /tmp/x", seccomp=path)[0] == 128 + 31  # SIGSYS


@pytest.mark.root
def test_bad_profile_fails_before_the_run(box: Box, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    with pytest.raises(RunnerError, match=r"bad.json:1:2: invalid JSON"):
        run_capture(box.spec("true", seccomp=str(bad)))
    assert list(box.upper.iterdir()) == []


def test_install_without_prepare_compiles_in_the_process(tmp_path: Path) -> None:
    profile = seccomp.load_profile(_write(tmp_path / "p.json", [
        {"names": MKDIR, "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]))
    assert profile is not None
    pid = os.fork()
    if pid == 0:  # a throwaway child: the filter cannot be removed again
        code = 3
        try:
            libc.prctl(libc.PR_SET_NO_NEW_PRIVS, 1)
            seccomp.install(profile, DOCKER_DEFAULT_CAPS)
            try:
                os.mkdir(tmp_path / "x")
                code = 1
            except PermissionError:
                code = 0
        finally:
            os._exit(code)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert not (tmp_path / "x").exists()


# -- loading and errors ---------------------------------------------------------------------

def test_unconfined_and_none_mean_no_filter() -> None:
    assert seccomp.load_profile(None) is None and seccomp.load_profile("unconfined") is None


def test_default_profile_is_dockers_and_cached() -> None:
    profile = seccomp.load_profile("default")
    assert profile is not None and profile is seccomp.load_profile("default")
    assert (profile.default_action, profile.default_errno_ret) == ("SCMP_ACT_ERRNO", 1)
    assert seccomp.architectures(profile, "x86_64") == (
        "SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32")
    assert "mkdirat" in profile.rules[0].names and "mount" not in profile.rules[0].names


@pytest.mark.parametrize("text, message", [
    ('{"defaultAction": "SCMP_ACT_ALLOW",\n "syscalls": [}',
     r":2:15: invalid JSON: Expecting value"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], '
     '"action": "SCMP_ACT_FOO"}]}', r"syscalls\[0\].action: unknown action 'SCMP_ACT_FOO'"),
    ('{"defaultAction": "SCMP_ACT_NOPE"}', r"defaultAction: unknown action 'SCMP_ACT_NOPE'"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": '
     '"SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ABOUT"}]}]}',
     r"syscalls\[0\].args\[0\].op: unknown op 'SCMP_CMP_ABOUT'"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "archMap": [{"architecture": "SCMP_ARCH_Z80"}]}',
     r"archMap\[0\].architecture: unknown architecture 'SCMP_ARCH_Z80'"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": "mkdir", "action": '
     '"SCMP_ACT_ALLOW"}]}', r"syscalls\[0\].names: expected a list"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": '
     '"SCMP_ACT_ALLOW", "includes": {"minKernel": "4"}}]}', r"minKernel: kernel version '4'"),
    ('{"syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW"}]}', "defaultAction is missing"),
])
def test_profile_errors_are_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "p.json"
    path.write_text(text)
    where = re.escape(str(path))
    with pytest.raises(RunnerError, match=f"seccomp profile {where}.*{message}") as info:
        seccomp.load_profile(str(path))
    assert "\n" not in str(info.value)


def test_missing_profile_file(tmp_path: Path) -> None:
    with pytest.raises(RunnerError, match=r"missing.json: No such file or directory$"):
        seccomp.load_profile(str(tmp_path / "missing.json"))


def test_edited_profile_is_read_again(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.json", [])
    assert seccomp.load_profile(path).default_action == "SCMP_ACT_ALLOW"
    _write(tmp_path / "p.json", [], default="SCMP_ACT_LOG")
    assert seccomp.load_profile(path).default_action == "SCMP_ACT_LOG"


def test_empty_profile_is_unconfined_as_in_docker() -> None:
    assert parse({}) is None


# -- which rules apply (docker's setupSeccomp) -----------------------------------------------

def _names(rules: tuple[Rule, ...]) -> set[str]:
    return {name for rule in rules for name in rule.names}


def test_applicable_rules_follow_caps_arch_and_kernel() -> None:
    profile = seccomp.load_profile("default")
    plain = seccomp.applicable(profile, DOCKER_DEFAULT_CAPS, "x86_64", (6, 1))
    admin = seccomp.applicable(profile, SYS_ADMIN, "x86_64", (6, 1))
    assert "mount" not in _names(plain) and "mount" in _names(admin)
    assert any(r.names == ("clone3",) and r.errno_ret == 38 for r in plain)
    assert not any(r.names == ("clone3",) for r in admin)
    assert "arch_prctl" in _names(plain) and "breakpoint" not in _names(plain)
    arm = seccomp.applicable(profile, DOCKER_DEFAULT_CAPS, "aarch64", (6, 1))
    assert "breakpoint" in _names(arm) and "arch_prctl" not in _names(arm)
    assert "ptrace" in _names(plain)
    assert "ptrace" not in _names(seccomp.applicable(profile, DOCKER_DEFAULT_CAPS,
                                                     "x86_64", (4, 7)))


def test_compiled_filter_covers_the_compat_arches() -> None:
    profile = seccomp.load_profile("default")
    with seccomp.compile_filter(profile, DOCKER_DEFAULT_CAPS) as f:
        program = f.export_bpf()
    assert len(program) % 8 == 0 and len(program) > 8 * 500


# -- round trips ------------------------------------------------------------------------------

_names_st = st.lists(st.from_regex(r"[a-z_][a-z0-9_]{0,15}", fullmatch=True), max_size=4)
_cond_st = st.builds(
    Condition,
    caps=st.lists(st.sampled_from(["CAP_SYS_ADMIN", "CAP_BPF", "CAP_SYS_PTRACE"]),
                  max_size=2).map(tuple),
    arches=st.lists(st.sampled_from(["amd64", "arm64", "s390x"]), max_size=2).map(tuple),
    min_kernel=st.none() | st.tuples(st.integers(1, 255), st.integers(0, 255)))
_arg_st = st.builds(Arg, index=st.integers(0, 5), value=st.integers(0, 2**64 - 1),
                    op=st.sampled_from(OPS), value_two=st.integers(0, 2**64 - 1))
_rule_st = st.builds(
    Rule, names=_names_st.map(tuple), action=st.sampled_from(ACTIONS),
    errno_ret=st.none() | st.integers(0, 0xFFFF),
    args=st.lists(_arg_st, max_size=3).map(tuple), includes=_cond_st, excludes=_cond_st)
_profile_st = st.builds(
    Profile, default_action=st.sampled_from(ACTIONS), rules=st.lists(_rule_st, max_size=4)
    .map(tuple), default_errno_ret=st.none() | st.integers(0, 0xFFFF),
    arch_map=st.lists(st.tuples(st.sampled_from(ARCHES), st.lists(st.sampled_from(ARCHES),
                                max_size=2).map(tuple)), max_size=2).map(tuple))


@given(_profile_st)
def test_profile_json_round_trip(profile: Profile) -> None:
    assert parse(json.loads(json.dumps(dump(profile)))) == profile


def test_default_profile_round_trips() -> None:
    profile = seccomp.load_profile("default")
    assert parse(dump(profile)) == profile


def test_kernel_version_reads_distribution_releases() -> None:
    assert seccomp.kernel_version("6.1.0-18-amd64") == (6, 1)
    assert seccomp.kernel_version("5.15-rc1") == (5, 15)
    assert seccomp.kernel_version("4.19.0+") == (4, 19)
    assert seccomp.kernel_version("unknown") == (0, 0)
    assert seccomp.kernel_version() == seccomp.kernel_version(os.uname().release) >= (3, 8)


def _fresh_prepare(caps) -> bytes:
    """prepare as a new process would do it: nothing compiled in memory yet."""
    seccomp._programs.clear()
    profile = seccomp.prepare("default", caps)
    return seccomp.program(profile, caps)


def test_programs_are_cached_across_processes_by_what_libseccomp_is_given(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(seccomp, "CACHE_DIR", tmp_path / "cache")
    default = list(DOCKER_DEFAULT_CAPS)
    first = _fresh_prepare(default)
    assert [p.read_bytes() for p in (tmp_path / "cache").iterdir()] == [first]
    compiled = []
    real = seccomp.compile_filter
    monkeypatch.setattr(seccomp, "compile_filter",
                        lambda *a: (compiled.append(a), real(*a))[1])
    assert _fresh_prepare(default) == first and compiled == []  # read, not compiled
    # SYS_ADMIN switches on more rules: another input, another program
    admin = _fresh_prepare([*default, "CAP_SYS_ADMIN"])
    assert admin != first and len(compiled) == 1
    assert len(list((tmp_path / "cache").iterdir())) == 2


def test_a_damaged_cached_program_is_compiled_again(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(seccomp, "CACHE_DIR", tmp_path / "cache")
    good = _fresh_prepare(list(DOCKER_DEFAULT_CAPS))
    (cached,) = (tmp_path / "cache").iterdir()
    cached.write_bytes(good[:13])  # not whole sock_filter entries
    assert _fresh_prepare(list(DOCKER_DEFAULT_CAPS)) == good
    assert cached.read_bytes() == good
