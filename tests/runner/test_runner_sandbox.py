"""crun-style sandbox tests: build a spec, change one thing, let busybox report what it saw."""

from __future__ import annotations

import os
import re
import stat
from dataclasses import replace
from pathlib import Path

import pytest
from support.runner import Box, make_box, run_capture

from pybuild.errors import RunnerError
from pybuild.runner import DOCKER_DEFAULT_CAPS, Process
from pybuild.runner.caps import mask

pytestmark = pytest.mark.root


@pytest.fixture
def box(tmp_path: Path) -> Box:
    return make_box(tmp_path)


def _status(text: str, field: str) -> str:
    match = re.search(rf"^{field}:\s*(\S+)", text, re.M)
    assert match, text
    return match.group(1)


def test_hostname_default_and_changed(box: Box) -> None:
    assert run_capture(box.spec("hostname")).out == "pybuild\n"
    assert run_capture(box.spec("hostname", hostname="step-7")).out == "step-7\n"


def test_pid_is_one(box: Box) -> None:
    assert run_capture(box.spec("echo $$")).out == "1\n"


def test_user_and_groups(box: Box) -> None:
    spec = box.spec("id -u; id -g; id -G")
    spec = replace(spec, process=replace(spec.process, uid=1000, gid=1001,
                                         additional_gids=(1001, 27)))
    assert run_capture(spec).out.split() == ["1000", "1001", "1001", "27"]


def test_root_by_default(box: Box) -> None:
    assert run_capture(box.spec("id -u; id -G")).out.split() == ["0", "0"]


def test_cwd(box: Box) -> None:
    spec = box.spec("pwd")
    assert run_capture(replace(spec, process=replace(spec.process, cwd="/tmp"))).out == "/tmp\n"


def test_missing_cwd_is_a_clear_error(box: Box) -> None:
    spec = box.spec("pwd")
    with pytest.raises(RunnerError, match="working directory /nowhere"):
        run_capture(replace(spec, process=replace(spec.process, cwd="/nowhere")))


def test_env_is_exactly_the_spec_env(box: Box) -> None:
    env = ("PATH=/bin:/usr/bin", "FOO=bar baz", "EMPTY=")
    result = run_capture(replace(box.spec(""), process=Process(args=("env",), env=env)))
    assert sorted(result.out.splitlines()) == sorted(env)


def test_path_lookup_uses_the_container_path(box: Box) -> None:
    tool = box.lower / "opt/tools/hello-tool"
    tool.parent.mkdir(parents=True)
    tool.write_text("#!/bin/sh\necho hello from tool\n")
    tool.chmod(0o755)
    process = Process(args=("hello-tool",), env=("PATH=/opt/tools:/bin",))
    result = run_capture(replace(box.spec(""), process=process))
    assert (result.code, result.out) == (0, "hello from tool\n")


def test_missing_executable_is_127_with_docker_message(box: Box) -> None:
    result = run_capture(replace(box.spec(""), process=Process(args=("no-such-tool",))))
    assert result.code == 127
    assert 'exec: "no-such-tool": executable file not found in $PATH' in result.err


def test_not_executable_is_126(box: Box) -> None:
    (box.lower / "plain").write_text("data")
    result = run_capture(replace(box.spec(""), process=Process(args=("/plain",))))
    assert result.code == 126
    assert "permission denied" in result.err


def test_exit_code_propagates(box: Box) -> None:
    assert run_capture(box.spec("exit 3")).code == 3
    assert run_capture(box.spec("true")).code == 0


def test_stdin_bytes_are_fed(box: Box) -> None:
    assert run_capture(box.spec("tr a-z A-Z"), stdin=b"hello\n").out == "HELLO\n"


def test_stdin_defaults_to_dev_null(box: Box) -> None:
    assert run_capture(box.spec("cat; echo done")).out == "done\n"


def test_terminal_is_a_pty_of_the_container(box: Box) -> None:
    spec = box.spec("[ -t 0 ] && [ -t 1 ] && echo tty; t=$(tty); echo $t; [ -e $t ] && echo ok;"
                    "[ -c /dev/console ] && echo console; read line; echo got $line")
    spec = replace(spec, process=replace(spec.process, terminal=True))
    result = run_capture(spec, stdin=b"hello\n")
    # the pty echoes the input line, like any terminal
    lines = [line for line in result.out.replace("\r", "").splitlines() if line != "hello"]
    assert lines[0] == "tty" and lines[1].startswith("/dev/pts/")
    assert lines[2:] == ["ok", "console", "got hello"]


def test_terminal_forwards_an_input_fd(box: Box) -> None:
    r, w = os.pipe()
    try:
        os.write(w, b"from-fd\n")
        spec = box.spec("read line; echo got $line")
        spec = replace(spec, process=replace(spec.process, terminal=True))
        assert "got from-fd" in run_capture(spec, stdin=r).out
    finally:
        os.close(r)
        os.close(w)


def test_capabilities_are_dockers_default(box: Box) -> None:
    status = run_capture(box.spec("cat /proc/self/status")).out
    default = mask(DOCKER_DEFAULT_CAPS)
    assert default == 0xA80425FB
    for field in ("CapEff", "CapPrm", "CapBnd"):
        assert int(_status(status, field), 16) == default, field
    assert int(_status(status, "CapInh"), 16) == 0
    assert _status(status, "NoNewPrivs") == "1"


def test_capabilities_can_be_narrowed(box: Box) -> None:
    status = run_capture(box.spec("cat /proc/self/status", capabilities=("CHOWN",))).out
    assert int(_status(status, "CapEff"), 16) == 1
    assert int(_status(status, "CapBnd"), 16) == 1


def test_non_root_user_has_no_effective_caps(box: Box) -> None:
    spec = box.spec("cat /proc/self/status")
    spec = replace(spec, process=replace(spec.process, uid=1000, gid=1000))
    status = run_capture(spec).out
    assert int(_status(status, "CapEff"), 16) == 0
    assert int(_status(status, "CapBnd"), 16) == mask(DOCKER_DEFAULT_CAPS)


def test_no_new_privs_can_be_off(box: Box) -> None:
    spec = box.spec("cat /proc/self/status", no_new_privs=False, seccomp=None)
    status = run_capture(spec).out
    assert _status(status, "NoNewPrivs") == "0"


def test_masked_and_readonly_paths(box: Box) -> None:
    script = (
        "cat /proc/timer_list /proc/keys | wc -c; ls -A /sys/firmware | wc -l;"
        "echo x > /proc/sys/kernel/hostname && echo WRITABLE;"
        "grep -E ' /proc/(sys|bus|fs|irq) ' /proc/self/mountinfo | grep -c ' ro,'"
    )
    result = run_capture(box.spec(script))
    lines = result.out.split()
    assert lines[:2] == ["0", "0"], result
    assert "WRITABLE" not in result.out
    assert int(lines[-1]) >= 3
    ours = Path("/proc/timer_list")
    if ours.exists():
        assert ours.read_text()  # only hidden inside


def test_network_none_has_only_loopback_up(box: Box) -> None:
    result = run_capture(box.spec("cat /proc/net/dev; ip link show lo"))
    names = [line.split(":")[0].strip() for line in result.out.splitlines() if ":" in line
             and not line.startswith((" face", "Inter"))]
    assert names[0] == "lo" and "eth0" not in names
    assert re.search(r"<[^>]*\bUP\b", result.out), result.out


def _interfaces(net_dev: str) -> set[str]:
    return {line.split(":")[0].strip() for line in net_dev.splitlines()[2:]}


def test_network_host_sees_host_interfaces(box: Box) -> None:
    # other containers' veths may come and go meanwhile: what was there before and after
    # must be seen, and nothing the host never had
    before = _interfaces(Path("/proc/net/dev").read_text())
    result = run_capture(box.spec("cat /proc/net/dev", network="host"))
    after = _interfaces(Path("/proc/net/dev").read_text())
    seen = _interfaces(result.out)
    assert before & after <= seen <= before | after
    assert "lo" in seen


def test_devices_and_dev_mounts(box: Box) -> None:
    script = ("ls /dev | sort | tr '\\n' ' '; echo; head -c 4 /dev/zero | wc -c;"
              "echo hi > /dev/null && echo ok; grep -c ' /dev/pts ' /proc/self/mountinfo")
    out = run_capture(box.spec(script)).out.splitlines()
    for name in ("null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "ptmx",
                 "fd", "stdin", "stdout", "stderr", "mqueue"):
        assert name in out[0].split(), name
    assert out[1:] == ["4", "ok", "1"]


def test_sys_is_read_only(box: Box) -> None:
    result = run_capture(box.spec("grep ' /sys ' /proc/self/mountinfo"))
    assert " ro," in result.out


def test_rlimits_are_applied_and_clamped(box: Box) -> None:
    from pybuild.runner import Rlimit

    spec = box.spec("ulimit -n; ulimit -Hn",
                    rlimits=(Rlimit("nofile", 1024, 4096),))
    assert run_capture(spec).out.split() == ["1024", "4096"]
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    big = Rlimit("nofile", hard * 10, hard * 10)
    assert run_capture(box.spec("ulimit -Hn", rlimits=(big,))).out.split() == [str(hard)]


def test_setup_failure_raises_runner_error(box: Box) -> None:
    (box.lower / "etc/hosts").mkdir()
    hosts = box.upper.parent / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    with pytest.raises(RunnerError, match="sandbox setup failed: .*etc/hosts"):
        run_capture(box.spec("true", etc_files=(("/etc/hosts", hosts),)))


def test_readonly_rootfs(box: Box) -> None:
    spec = box.spec("touch /x 2>&1 || echo refused")
    spec = replace(spec, rootfs=replace(spec.rootfs, readonly=True))
    assert "refused" in run_capture(spec).out
    assert not (box.upper / "x").exists()


def test_plain_directory_rootfs(box: Box) -> None:
    from pybuild.runner import Rootfs

    spec = box.spec("echo hi > /made-here; cat /etc/passwd | head -1",
                    rootfs=Rootfs(path=box.lower))
    assert run_capture(spec).out.startswith("root:")
    assert (box.lower / "made-here").read_text() == "hi\n"


def test_upper_only_rootfs_without_upper_is_read_only(box: Box) -> None:
    from pybuild.runner import Rootfs

    spec = box.spec("touch /x 2>/dev/null || echo refused",
                    rootfs=Rootfs(lowerdirs=(box.lower,)))
    assert run_capture(spec).out == "refused\n"


def test_exec_replaces_python(box: Box) -> None:
    # The workload is the sandbox's PID 1 itself, not a child of a Python process.
    assert run_capture(box.spec("cat /proc/1/comm")).out.strip() in ("sh", "cat")


def test_stat_of_created_device(box: Box) -> None:
    out = run_capture(box.spec("stat -c '%t %T %a' /dev/null")).out.split()
    assert out == ["1", "3", "666"]
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_umask_is_fixed_like_dockers(box: Box) -> None:
    old = os.umask(0o077)
    try:
        assert run_capture(box.spec("umask; touch /f")).out.strip() == "0022"
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(box.upper / "f").st_mode) == 0o644


def test_root_only_cwd_works_for_root(box: Box) -> None:
    spec = box.spec("pwd")
    assert run_capture(replace(spec, process=replace(spec.process, cwd="/root"))).out == "/root\n"


def test_seccomp_denies_user_namespaces_and_keyrings(box: Box) -> None:
    script = "grep '^Seccomp:' /proc/self/status; busybox unshare -U true 2>/dev/null; echo $?"
    assert run_capture(box.spec(script)).out.split() == ["Seccomp:", "2", "1"]
    unfiltered = run_capture(box.spec(script, seccomp=None)).out.split()
    assert unfiltered == ["Seccomp:", "0", "0"]


def test_output_to_file_descriptors(box: Box, tmp_path: Path) -> None:
    out_path, err_path = tmp_path / "out", tmp_path / "err"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        from pybuild.runner import run

        code = run(box.spec("echo to-out; echo to-err >&2; exit 4"),
                   stdout=out.fileno(), stderr=err.fileno())
    assert code == 4
    assert out_path.read_text() == "to-out\n" and err_path.read_text() == "to-err\n"
