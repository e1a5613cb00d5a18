"""What a run leaves in the layer: writes and whiteouts in the upper dir, nothing from the
sandbox's own mount points; bind and tmpfs mounts; many layers."""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest
from support.runner import Box, make_box, run_capture

from pybuild.runner import Mount, Process, Rootfs, RunSpec

pytestmark = pytest.mark.root


@pytest.fixture
def box(tmp_path: Path) -> Box:
    return make_box(tmp_path)


def _tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in sorted(os.walk(root)):
        dirnames.sort()
        for name in sorted(filenames + dirnames):
            path = Path(dirpath) / name
            st = os.lstat(path)
            h.update(f"{path.relative_to(root)} {st.st_mode} {st.st_size}\n".encode())
            if stat.S_ISREG(st.st_mode):
                h.update(path.read_bytes())
    return h.hexdigest()


def _upper_entries(box: Box) -> list[str]:
    return sorted(str(p.relative_to(box.upper)) for p in box.upper.rglob("*"))


def test_writes_and_deletes_land_in_upper_only(box: Box) -> None:
    before = _tree_digest(box.lower)
    result = run_capture(box.spec("echo new > /created; rm /etc/group; mkdir -p /a/b"))
    assert result.code == 0, result
    assert (box.upper / "created").read_text() == "new\n"
    whiteout = os.lstat(box.upper / "etc/group")
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == os.makedev(0, 0)
    assert (box.upper / "a/b").is_dir()
    assert _tree_digest(box.lower) == before
    assert _upper_entries(box) == ["a", "a/b", "created", "etc", "etc/group"]


def test_renamed_lower_dir_is_copied_not_redirected(box: Box) -> None:
    (box.lower / "olddir").mkdir()
    (box.lower / "olddir/data").write_text("payload\n")
    assert run_capture(box.spec("mv /olddir /newdir")).code == 0
    assert (box.upper / "newdir/data").read_text() == "payload\n"
    assert stat.S_ISCHR(os.lstat(box.upper / "olddir").st_mode)
    for name in ("trusted.overlay.redirect", "trusted.overlay.metacopy"):
        with pytest.raises(OSError):
            os.getxattr(box.upper / "newdir", name)


def test_noop_run_leaves_upper_empty(box: Box) -> None:
    assert run_capture(box.spec("true")).code == 0
    assert _upper_entries(box) == []


def test_etc_files_visible_but_never_in_upper(box: Box, tmp_path: Path) -> None:
    files = {}
    for name, text in (("hosts", "127.0.0.1 localhost buildhost\n"),
                       ("resolv.conf", "nameserver 192.0.2.53\n"), ("hostname", "buildhost\n")):
        files[name] = tmp_path / f"host-{name}"
        files[name].write_text(text)
    etc = tuple((f"/etc/{name}", path) for name, path in files.items())
    result = run_capture(box.spec("cat /etc/hosts /etc/resolv.conf /etc/hostname",
                                  etc_files=etc))
    assert result.out == "".join(p.read_text() for p in files.values())
    # None of them existed in the image: the mount points were created and removed again,
    # together with the copied-up /etc.
    assert _upper_entries(box) == []


def test_etc_file_over_existing_file_is_not_copied_up(box: Box, tmp_path: Path) -> None:
    (box.lower / "etc/hosts").write_text("image's hosts\n")
    host = tmp_path / "hosts"
    host.write_text("127.0.0.1 sandbox\n")
    spec = box.spec("cat /etc/hosts; echo more >> /etc/motd", etc_files=(("/etc/hosts", host),))
    assert run_capture(spec).out == "127.0.0.1 sandbox\n"
    assert _upper_entries(box) == ["etc", "etc/motd"]
    assert (box.lower / "etc/hosts").read_text() == "image's hosts\n"


def test_created_mount_point_kept_when_run_wrote_next_to_it(box: Box, tmp_path: Path) -> None:
    host = tmp_path / "resolv.conf"
    host.write_text("nameserver 192.0.2.1\n")
    spec = box.spec("echo x > /etc/other", etc_files=(("/etc/resolv.conf", host),))
    assert run_capture(spec).code == 0
    assert _upper_entries(box) == ["etc", "etc/other"]


BUILDKIT_KEPT = ("/proc", "/dev", "/sys", "/etc/hosts", "/etc/resolv.conf")


def _etc_files(tmp_path: Path, *names: str) -> tuple[tuple[str, Path], ...]:
    out = []
    for name in names:
        host = tmp_path / f"host-{name}"
        host.write_text(f"{name}\n")
        out.append((f"/etc/{name}", host))
    return tuple(out)


def test_kept_stub_leaves_etc_with_the_runs_time(box: Box, tmp_path: Path) -> None:
    os.utime(box.lower / "etc", (0, 0))
    etc = _etc_files(tmp_path, "hosts", "resolv.conf", "hostname")
    spec = box.spec("cat /etc/hosts", etc_files=etc, kept_mount_points=BUILDKIT_KEPT)
    assert run_capture(spec).out == "hosts\n"
    # The stubs are gone, but /etc stays copied up with the time they were made in it.
    assert _upper_entries(box) == ["etc"]
    assert os.stat(box.upper / "etc").st_mtime > 0


def test_only_an_unkept_stub_leaves_nothing(box: Box, tmp_path: Path) -> None:
    (box.lower / "etc/hosts").write_text("image's hosts\n")
    (box.lower / "etc/resolv.conf").write_text("")
    etc = _etc_files(tmp_path, "hosts", "resolv.conf", "hostname")
    spec = box.spec("cat /etc/hostname", etc_files=etc, kept_mount_points=BUILDKIT_KEPT)
    assert run_capture(spec).out == "hostname\n"
    assert _upper_entries(box) == []


def test_scratch_keeps_made_mount_point_dirs_only(box: Box, tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    (scratch / "bin").mkdir(parents=True)
    os.link(box.lower / "bin/busybox", scratch / "bin/busybox")
    data = tmp_path / "data"
    data.mkdir()
    etc = _etc_files(tmp_path, "hosts", "resolv.conf", "hostname")
    spec = RunSpec(rootfs=Rootfs((scratch,), box.upper, box.work),
                   process=Process(args=("/bin/busybox", "touch", "/x")), etc_files=etc,
                   mounts=(Mount("bind", str(data), "/mnt/data"),),
                   kept_mount_points=BUILDKIT_KEPT)
    assert run_capture(spec).code == 0
    # As runc: /etc, /proc, /dev and /sys made for mounts stay, empty; the etc stubs and the
    # --mount target are gone.
    assert _upper_entries(box) == ["dev", "etc", "proc", "sys", "x"]
    assert all(stat.S_IMODE(os.stat(box.upper / d).st_mode) == 0o755
               for d in ("dev", "etc", "proc", "sys"))


def test_bind_mounts_rw_and_ro(box: Box, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "in").write_text("from host\n")
    conf = tmp_path / "app.conf"
    conf.write_text("conf\n")
    mounts = (Mount("bind", str(shared), "/mnt/shared", readonly=False),
              Mount("bind", str(conf), "/srv/app.conf", readonly=True))
    script = ("cat /mnt/shared/in /srv/app.conf; echo out > /mnt/shared/out;"
              "echo no >> /srv/app.conf 2>/dev/null || echo ro-refused")
    result = run_capture(box.spec(script, mounts=mounts))
    assert result.out == "from host\nconf\nro-refused\n"
    assert (shared / "out").read_text() == "out\n"
    assert conf.read_text() == "conf\n"
    assert _upper_entries(box) == []  # /mnt/shared and /srv/app.conf were removed again


def test_tmpfs_mount(box: Box) -> None:
    mounts = (Mount("tmpfs", "tmpfs", "/tmp", options=("size=1m", "mode=1777")),)
    script = "echo scratch > /tmp/file; cat /tmp/file; grep ' /tmp ' /proc/self/mountinfo"
    result = run_capture(box.spec(script, mounts=mounts))
    assert result.out.startswith("scratch\n") and "tmpfs" in result.out
    assert "size=1024k" in result.out
    assert _upper_entries(box) == []


def test_bind_mount_through_absolute_symlink_stays_inside(box: Box, tmp_path: Path) -> None:
    # An image symlink to an absolute path must resolve inside the rootfs, not on the host.
    outside = tmp_path / "host-target"
    os.symlink(str(outside), box.lower / "etc/evil")
    host_file = tmp_path / "payload"
    host_file.write_text("payload\n")
    spec = box.spec("cat /etc/evil", etc_files=(("/etc/evil", host_file),))
    assert run_capture(spec).out == "payload\n"
    assert not outside.exists()
    # the target was created inside the image (at /<outside>) and removed afterwards
    assert _upper_entries(box) == []


def _layers(parent: Path, count: int, name: str) -> list[Path]:
    lowers = []
    for i in range(count):
        layer = parent / name.format(i)
        layer.mkdir(parents=True)
        (layer / f"file{i}").write_text(f"{i}\n")
        lowers.append(layer)
    return lowers


def test_many_layers_use_relative_overlay_paths(box: Box, tmp_path: Path) -> None:
    deep = tmp_path / ("layers-with-a-rather-long-directory-name-" + "x" * 150)
    lowers = _layers(deep, 40, "l{}")
    deep.joinpath("up").mkdir()
    deep.joinpath("work").mkdir()
    os.rename(box.lower, deep / "bb")
    lowers.append(deep / "bb")
    rootfs = Rootfs(lowerdirs=tuple(lowers), upperdir=deep / "up", workdir=deep / "work")
    assert len(":".join(map(str, lowers))) > 4096
    result = run_capture(box.spec("cat /file0 /file39", rootfs=rootfs))
    assert (result.code, result.out) == (0, "0\n39\n"), result


def test_more_layers_than_a_page_holds(box: Box, tmp_path: Path) -> None:
    lowers = _layers(tmp_path / "store", 70, "{:02d}" + "0" * 62)
    rootfs = Rootfs(lowerdirs=(*lowers, box.lower), upperdir=box.upper, workdir=box.work)
    result = run_capture(box.spec("cat /file0 /file69", rootfs=rootfs))
    assert (result.code, result.out) == (0, "0\n69\n"), result


def test_lowerdir_with_colon(box: Box, tmp_path: Path) -> None:
    odd = tmp_path / "odd:layer"
    odd.mkdir()
    (odd / "marker").write_text("colon ok\n")
    rootfs = replace(box.rootfs, lowerdirs=(odd, box.lower))
    assert run_capture(box.spec("cat /marker", rootfs=rootfs)).out == "colon ok\n"


def test_upper_of_one_step_is_a_lower_of_the_next(box: Box, tmp_path: Path) -> None:
    assert run_capture(box.spec("echo one > /step1; rm /etc/group")).code == 0
    upper2, work2 = tmp_path / "upper2", tmp_path / "work2"
    upper2.mkdir()
    work2.mkdir()
    rootfs = Rootfs(lowerdirs=(box.upper, box.lower), upperdir=upper2, workdir=work2)
    script = "cat /step1; [ -e /etc/group ] || echo gone; echo two > /step2"
    result = run_capture(box.spec(script, rootfs=rootfs))
    assert result.out == "one\ngone\n"
    assert sorted(p.name for p in upper2.iterdir()) == ["step2"]


def test_device_fallback_binds_the_host_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    from support.runner import skip_unless

    from pybuild.runner import libc, mounts

    skip_unless("root", "namespaces")

    def refuse(*args: object) -> None:
        raise PermissionError(1, "mknod refused")

    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            libc.unshare(libc.CLONE_NEWNS)
            libc.mount(None, "/", None, libc.MS_REC | libc.MS_PRIVATE)
            libc.mount("tmpfs", str(tmp_path), "tmpfs", 0, None)
            monkeypatch.setattr(os, "mknod", refuse)
            fd = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
            mounts.make_node(fd, "null", "c", 1, 3, "/dev/null")
            st = os.stat(f"{tmp_path}/null")
            code = 0 if stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_plain_directory_rootfs_is_cleaned_of_mount_points(box: Box, tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 plain\n")
    spec = box.spec("cat /etc/hosts; echo kept > /kept", rootfs=Rootfs(path=box.lower),
                    etc_files=(("/etc/hosts", hosts),))
    assert run_capture(spec).out == "127.0.0.1 plain\n"
    assert not (box.lower / "etc/hosts").exists()
    assert (box.lower / "kept").read_text() == "kept\n"
