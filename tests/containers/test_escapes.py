"""Escape attempts from a container, as root inside it (docker's defaults: 14 capabilities,
seccomp, masked and read-only /proc paths, the devices cgroup): each attempt fails, or stays
inside the container, and the host is unchanged. Symlinked mount targets (CVE-2021-30465)
land inside the container's root or fail, also while a path is being swapped."""

from __future__ import annotations

import ctypes
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import pytest

from pybuild.errors import RunnerError
from pybuild.runner import Mount, Rootfs, RunSpec, devices, run
from pybuild.runner.caps import CAPABILITIES
from pybuild.runner.spec import Process

EPERM = "Operation not permitted"


def sh(cli, image: str, script: str, *flags: str):
    return cli("run", "--rm", *flags, image, "sh", "-c", script)


def test_mounting_fails(cli, image):
    res = sh(cli, image, "mount -t tmpfs none /mnt; echo $?; mount --bind /bin /mnt; echo $?;"
                         " grep -c ' /mnt ' /proc/self/mountinfo")
    assert res.stdout.split() == ["1", "1", "0"], res
    assert res.stderr.count("mount: permission denied") == 2


def test_kernel_settings_and_sysrq_cannot_be_written(cli, image):
    files = [f for f in ("/proc/sys/kernel/core_pattern", "/proc/sys/kernel/sysrq",
                         "/proc/sys/vm/drop_caches", "/proc/sysrq-trigger") if os.path.exists(f)]
    files += [_first_file(d) for d in ("/proc/irq", "/proc/bus") if _first_file(d)]
    before = {f: Path(f).read_text() for f in files if os.access(f, os.R_OK)
              and f != "/proc/sysrq-trigger"}
    res = sh(cli, image, "".join(f"echo 1 > {f};" for f in files) + " echo end")
    assert res.stdout == "end\n"
    assert res.stderr.count("Read-only file system") == len(files), res.stderr
    assert {f: Path(f).read_text() for f in before} == before


def _first_file(top: str) -> str | None:
    for dirpath, _, names in sorted(os.walk(top)):
        for name in sorted(names):
            return os.path.join(dirpath, name)
    return None


def test_loading_a_module_is_refused(cli, image):
    modules = Path("/proc/modules")
    loaded = modules.read_text() if modules.exists() else ""
    res = sh(cli, image, "printf '\\177ELF' > /tmp/dummy.ko; insmod /tmp/dummy.ko")
    assert res.returncode != 0 and EPERM in res.stderr, res
    assert (modules.read_text() if modules.exists() else "").count("\n") == loaded.count("\n")


def test_only_the_containers_processes_are_seen(cli, image):
    me = os.getpid()
    res = sh(cli, image, f"ls /proc | grep -E '^[0-9]+$'; echo ps; ps -o pid,comm;"
                         f" kill -0 {me} || echo no-{me}; readlink /proc/1/exe")
    pids, _, rest = res.stdout.partition("ps\n")
    assert "1" in pids.split() and len(pids.split()) <= 4, pids
    assert [ln.split()[1] for ln in rest.splitlines()[1:3]] == ["sh", "ps"]
    assert f"no-{me}" in rest  # the host pid is no process here, so no ptrace target either
    assert rest.splitlines()[-1] == "/bin/busybox"


def test_proc_root_links_lead_to_the_containers_root(cli, image, tmp_path):
    marker = tmp_path / "host-only"
    marker.write_text("host\n")
    res = sh(cli, image, f"for r in /proc/1/root /proc/self/root /proc/1/cwd; do"
                         f" cat $r{marker} 2>/dev/null || echo none;"
                         f" ls $r/../../../.. | grep -c busybox; done; ls -di / /proc/1/root/")
    assert res.stdout.splitlines()[:6] == ["none", "0"] * 3, res
    inodes = [ln.split()[0] for ln in res.stdout.splitlines()[6:]]
    assert len(inodes) == 2 and inodes[0] == inodes[1]
    assert marker.read_text() == "host\n"


def test_masked_paths_read_empty(cli, image):
    files = [p for p in ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug")
             if os.path.exists(p)]
    dirs = [p for p in ("/proc/scsi", "/sys/firmware") if os.path.isdir(p)]
    script = "".join(f"wc -c < {p};" for p in files) + "".join(f"ls -A {p} | wc -l;"
                                                                for p in dirs)
    res = sh(cli, image, script)
    assert res.stdout.split() == ["0"] * (len(files) + len(dirs)), res


def test_a_made_disk_node_is_of_no_use_in_run_or_exec(cli, image):
    """Without --device or --privileged, whatever the cgroup layout: under a v1 devices
    cgroup mknod works (docker's "b *:* m") and opening the node fails; without one (v2)
    neither PID 1 nor an exec'd process holds CAP_MKNOD, so mknod itself fails."""
    script = ("mknod /tmp/x b 8 0 && echo made; head -c 1 /tmp/x >/dev/null && echo read;"
              " grep CapEff /proc/self/status")
    confined = devices.hierarchy() is not None
    cid = cli("run", "-d", image, "sleep", "60", check=True).stdout.strip()
    try:
        for res in (sh(cli, image, script), cli("exec", cid, "sh", "-c", script)):
            lines = res.stdout.splitlines()
            assert "read" not in lines, res
            assert ("made" in lines) == confined, res
            assert res.stderr.count(EPERM) == 1, res.stderr  # mknod's, or the open's
            has_mknod = int(lines[-1].split()[1], 16) >> CAPABILITIES["MKNOD"] & 1
            assert has_mknod == confined, res
    finally:
        cli("rm", "-f", cid)


def test_host_disks_and_kernel_memory_cannot_be_opened(cli, image):
    if devices.hierarchy() is None:
        pytest.skip("no v1 devices cgroup: mknod itself fails there (no CAP_MKNOD), see "
                    "test_a_made_disk_node_is_of_no_use_in_run_or_exec")
    disks = [ln.split() for ln in Path("/proc/partitions").read_text().splitlines()[2:]]
    major, minor = (disks[0][0], disks[0][1]) if disks else ("8", "0")
    res = sh(cli, image, f"ls /dev/kmsg /dev/mem /dev/sda 2>/dev/null | wc -l;"
                         f" mknod /tmp/disk b {major} {minor} && head -c 1 /tmp/disk;"
                         " mknod /tmp/mem c 1 1 && head -c 1 /tmp/mem;"
                         " mknod /tmp/kmsg c 1 11 && head -c 1 /tmp/kmsg; echo end")
    assert res.stdout == "0\nend\n", res
    assert res.stderr.count(EPERM) == 3, res.stderr


def test_hostname_changes_stay_in_the_container(cli, image):
    host = socket.gethostname()
    res = sh(cli, image, "hostname pybuild-evil; hostname")
    assert EPERM in res.stderr and res.stdout != "pybuild-evil\n"
    inside = sh(cli, image, "hostname pybuild-evil && hostname", "--cap-add", "SYS_ADMIN")
    assert inside.stdout == "pybuild-evil\n", inside
    assert socket.gethostname() == host


def test_rlimits_cannot_be_raised_past_the_hard_limit(cli, image):
    res = sh(cli, image, "h=$(ulimit -H -n); ulimit -H -n $((h + 1)) && echo raised;"
                         " ulimit -n $((h + 1)) && echo soft-raised; echo end")
    assert res.stdout == "end\n", res
    assert res.stderr.count(EPERM) == 2, res.stderr


def test_new_namespaces_are_refused(cli, image):
    res = sh(cli, image, "unshare -U true; unshare -m true; unshare -p -f true; echo end")
    assert res.stdout == "end\n"
    assert res.stderr.count(EPERM) == 3, res.stderr


def test_the_classic_chroot_escape_stays_inside(cli, image, tmp_path):
    if shutil.which("gcc") is None:
        pytest.skip("no gcc to build the escape program")
    (tmp_path / "esc.c").write_text(_CHROOT_ESCAPE)
    built = subprocess.run(["gcc", "-static", "-O", "-o", str(tmp_path / "esc"),
                            str(tmp_path / "esc.c")], capture_output=True, text=True)
    if built.returncode != 0:
        pytest.skip(f"gcc cannot link statically here: {built.stderr.strip()[:200]}")
    marker = tmp_path / "host-marker"
    marker.write_text("host\n")
    res = cli("run", "--rm", "--cap-add", "SYS_CHROOT", "-w", "/tmp", "-v",
              f"{tmp_path}:/esc:ro", image, "/esc/esc", str(marker), "/bin/busybox")
    # out of the jail, but only as far as the container's own root
    assert res.returncode == 0 and res.stdout == "absent\nreached\n", res


_CHROOT_ESCAPE = r"""
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
int main(int argc, char **argv) {
    int outside = open(".", O_RDONLY | O_DIRECTORY);
    mkdir("jail", 0755);
    if (chroot("jail") != 0) { perror("chroot jail"); return 2; }
    if (fchdir(outside) != 0) { perror("fchdir"); return 3; }
    for (int i = 0; i < 64; i++) chdir("..");
    if (chroot(".") != 0) { perror("chroot ."); return 4; }
    for (int i = 1; i < argc; i++) puts(access(argv[i], F_OK) == 0 ? "reached" : "absent");
    return 0;
}
"""


def test_links_and_dotdot_in_a_bind_mount_resolve_inside(cli, image, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.symlink("/etc/shadow", shared / "shadow")
    os.symlink("../../../../../etc/passwd", shared / "passwd")
    name = f"pybuild-escape-{os.getpid()}"
    res = sh(cli, image, f"cat /in/shadow 2>&1 | head -c 300; echo; cat /in/passwd | head -1;"
                         f" echo x > /in/../../../tmp/{name} && ls /tmp/{name}",
             "-v", f"{shared}:/in")
    host_shadow = Path("/etc/shadow").read_text() if Path("/etc/shadow").exists() else ""
    if host_shadow:
        assert host_shadow.splitlines()[0] not in res.stdout
    assert res.stdout.splitlines()[-2] == "root:x:0:0:root:/root:/bin/sh", res
    assert res.stdout.splitlines()[-1] == f"/tmp/{name}"
    assert not Path(f"/tmp/{name}").exists() and not (tmp_path / name).exists()


# --- CVE-2021-30465: mount targets that are symlinks ---------------------------------------

@pytest.fixture(scope="module")
def link_image(cli_module, busybox_tar, tmp_path_factory):
    """busybox with symlinks where volumes and the /etc files are mounted. Imported, not
    built: a RUN step cannot replace /etc/hosts, the builder has a file bound there."""
    tar = tmp_path_factory.mktemp("link-image") / "links.tar"
    with tarfile.open(busybox_tar) as src, tarfile.open(tar, "w") as dst:
        for member in src.getmembers():
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
        for name, kind, link in (("data", tarfile.DIRTYPE, ""), ("srv", tarfile.DIRTYPE, ""),
                                 ("srv/a", tarfile.DIRTYPE, ""),
                                 ("data/root", tarfile.SYMTYPE, "/"),
                                 ("srv/a/up", tarfile.SYMTYPE, "../../etc"),
                                 ("data/abs", tarfile.SYMTYPE, "/tmp/landing"),
                                 ("etc/hosts", tarfile.SYMTYPE, "/etc/passwd")):
            info = tarfile.TarInfo(f"./{name}")
            info.type, info.linkname, info.mode = kind, link, 0o755
            dst.addfile(info)
    cli_module("import", str(tar), "localhost/escape/links:1", check=True)
    return "localhost/escape/links:1"


@pytest.fixture(scope="module")
def cli_module(store):
    def run_cli(*args: str, check: bool = False):
        res = subprocess.run([sys.executable, "-m", "pybuild", "--root", str(store.root),
                              *args], capture_output=True, text=True, timeout=120)
        if check and res.returncode != 0:
            raise AssertionError(f"pybuild {' '.join(args)}: {res.stderr}")
        return res
    return run_cli


def test_a_target_linked_to_the_root_is_refused(cli, link_image, tmp_path):
    (tmp_path / "marker").write_text("bound\n")
    res = cli("run", "--rm", "-v", f"{tmp_path}:/data/root", link_image, "ls", "/")
    assert res.returncode == 125 and "resolves to the container's root" in res.stderr, res
    assert len(res.stderr.strip().splitlines()) == 1


def test_linked_targets_land_inside_the_root(cli, link_image, tmp_path):
    host_etc = sorted(os.listdir("/etc"))
    passwd = Path("/etc/passwd").read_bytes()
    (tmp_path / "marker").write_text("bound\n")
    res = cli("run", "--rm", "-v", f"{tmp_path}:/srv/a/up", "-v", f"{tmp_path}:/data/abs",
              link_image, "sh", "-c", "cat /etc/marker /tmp/landing/marker; ls /etc")
    # the bind on /srv/a/up covers the container's own /etc (what ../../etc is in there)
    assert res.stdout == "bound\nbound\nmarker\n", res
    assert sorted(os.listdir("/etc")) == host_etc and Path("/etc/passwd").read_bytes() == passwd


def test_the_hosts_file_bind_follows_the_images_link_inside(cli, image, link_image):
    passwd = Path("/etc/passwd").read_bytes()
    res = cli("run", "--rm", link_image, "sh", "-c", "readlink /etc/hosts; cat /etc/passwd")
    assert res.returncode == 0, res
    lines = res.stdout.splitlines()
    assert lines[0] == "/etc/passwd" and lines[1] == "127.0.0.1\tlocalhost"
    assert Path("/etc/passwd").read_bytes() == passwd


def _exchange(a: Path, b: Path) -> None:
    """renameat2(RENAME_EXCHANGE): the two names swap at once, neither is ever missing."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.renameat2(-100, os.fsencode(a), -100, os.fsencode(b), 2) != 0:
        raise OSError(ctypes.get_errno(), "renameat2")


def test_a_target_swapped_for_a_symlink_during_setup(store, tmp_path):
    """Another container sharing the volume swaps /vol/x between a dir and a link out of the
    root while the mounts are made: each run fails, or its bind is inside the container."""
    from pybuild.store.images import resolve

    lower = tmp_path / "lower"
    store.layers.unpack_to(resolve(store, "localhost/bench/busybox:latest").diff_ids, lower)
    vol, src = tmp_path / "vol", tmp_path / "src"
    (vol / "x").mkdir(parents=True)
    src.mkdir()
    (src / "marker").write_text("bound\n")
    # the link's target exists on the host too: a mount that followed the link there would
    # succeed (in the sandbox's namespace, invisible inside), so the test could see it
    landing = tmp_path / "landing"
    landing.mkdir()
    os.symlink(str(landing), vol / "x.alt")
    stop, paused = threading.Event(), threading.Event()

    def flip() -> None:  # paused while a workload looks, so that it sees one state
        while not stop.is_set():
            if paused.is_set():
                stop.wait(0.001)
            else:
                _exchange(vol / "x", vol / "x.alt")

    def output(chunk: bytes) -> None:
        out.append(chunk)
        if b"ready" in chunk:
            paused.set()

    flipper = threading.Thread(target=flip, daemon=True)
    flipper.start()
    outcomes = set()
    script = f"echo ready; sleep 0.1; cat /vol/x/marker /vol/x.alt/marker {landing}/marker"
    out: list[bytes] = []
    try:
        for i in range(30):
            upper, work = tmp_path / f"u{i}", tmp_path / f"w{i}"
            upper.mkdir()
            work.mkdir()
            spec = RunSpec(
                rootfs=Rootfs(lowerdirs=(lower,), upperdir=upper, workdir=work),
                process=Process(args=("/bin/sh", "-c", script)),
                mounts=(Mount("bind", str(vol), "/vol"), Mount("bind", str(src), "/vol/x")))
            out.clear()
            paused.clear()
            try:
                run(spec, stdout=output, stderr=out.append)
            except RunnerError as e:
                assert "/vol/x" in str(e), e
                outcomes.add("refused")
                continue
            assert b"bound\n" in b"".join(out), b"".join(out)  # one of the three places
            outcomes.add("inside")
    finally:
        stop.set()
        flipper.join()
    assert outcomes and os.listdir(landing) == []
