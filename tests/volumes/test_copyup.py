"""Copy-up (docker's populate of a new volume from the image) on real files, as root."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from pybuild.client import Client
from pybuild.errors import VolumeError
from pybuild.volumes import VolumeStore
from pybuild.volumes.copyup import DirSource

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="chown, mknod and trusted xattrs "
                                "need root")
CAP = bytes.fromhex("0100000200200000000000000000000000000000")  # cap_net_bind_service


@pytest.fixture
def client(tmp_path):
    return Client(tmp_path / "root")


def make_source(src: Path, outside: Path) -> None:
    """A tree with one of everything docker's copy-up carries, and links pointing out."""
    (src / "conf").mkdir(parents=True)
    (src / "conf" / "app.ini").write_text("[app]\n")
    os.chown(src / "conf" / "app.ini", 1000, 1001)
    os.chmod(src / "conf" / "app.ini", 0o640)
    os.chown(src / "conf", 1000, 1001)
    os.chmod(src / "conf", 0o2750)
    (src / "bin").mkdir()
    tool = src / "bin" / "tool"
    tool.write_bytes(b"\x7fELF" + b"x" * 3_000_000)
    os.chown(tool, 1000, 0)
    os.chmod(tool, 0o4755)  # setuid must survive the chown
    os.setxattr(tool, "user.note", b"kept")
    os.setxattr(tool, "security.capability", CAP)
    os.setxattr(tool, "trusted.overlay.origin", b"layer-internal")
    os.link(tool, src / "bin" / "tool-link")
    os.symlink("/etc/passwd", src / "abs-link")
    os.symlink("../../../../../../" + str(outside).lstrip("/"), src / "escape")
    os.symlink(str(outside), src / "outside-dir")
    os.lchown(src / "abs-link", 7, 8)
    os.mkfifo(src / "pipe", 0o620)
    os.mknod(src / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(src / "sock"))
    sock.close()
    (src / "empty").mkdir(mode=0o700)
    os.utime(src / "conf" / "app.ini", ns=(1_000_000_000, 1_234_567_890_123_456_789))
    os.utime(src / "conf", ns=(1_000_000_000, 1_500_000_000_000_000_000))
    os.chown(src, 33, 33)
    os.chmod(src, 0o770)


def test_populate_copies_everything(client, tmp_path):
    src, outside = tmp_path / "src", tmp_path / "outside"
    outside.mkdir()
    make_source(src, outside)
    vol = client.volumes.create("app")
    assert client.volumes.populate("app", src) is True
    data = vol.mountpoint
    root = data.lstat()
    assert (root.st_uid, root.st_gid, stat.S_IMODE(root.st_mode)) == (33, 33, 0o770)
    ini = (data / "conf" / "app.ini").lstat()
    assert (ini.st_uid, ini.st_gid, stat.S_IMODE(ini.st_mode)) == (1000, 1001, 0o640)
    assert ini.st_mtime_ns == 1_234_567_890_123_456_789
    conf = (data / "conf").lstat()
    assert (stat.S_IMODE(conf.st_mode), conf.st_uid) == (0o2750, 1000)
    assert conf.st_mtime_ns == 1_500_000_000_000_000_000  # set after its entries were written
    tool = (data / "bin" / "tool").lstat()
    assert (tool.st_uid, tool.st_gid, stat.S_IMODE(tool.st_mode)) == (1000, 0, 0o4755)
    assert tool.st_size == 3_000_004 and tool.st_nlink == 2
    assert (data / "bin" / "tool-link").lstat().st_ino == tool.st_ino
    assert os.getxattr(data / "bin" / "tool", "user.note") == b"kept"
    assert os.getxattr(data / "bin" / "tool", "security.capability") == CAP
    assert "trusted.overlay.origin" not in os.listxattr(data / "bin" / "tool")
    assert os.readlink(data / "abs-link") == "/etc/passwd"
    assert (data / "abs-link").lstat().st_uid == 7
    assert os.readlink(data / "outside-dir") == str(outside)
    assert stat.S_ISFIFO((data / "pipe").lstat().st_mode)
    null = (data / "null").lstat()
    assert stat.S_ISCHR(null.st_mode) and null.st_rdev == os.makedev(1, 3)
    assert not (data / "sock").exists()  # sockets are not copied, as docker's tar skips them
    assert stat.S_IMODE((data / "empty").lstat().st_mode) == 0o700
    assert list(outside.iterdir()) == []  # the links were copied, never followed
    assert sorted(p.name for p in data.parent.iterdir()) == ["_data", "volume.json"]


def test_populate_happens_once(client, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("1")
    vol = client.volumes.create("once")
    assert client.volumes.populate("once", src)
    (vol.mountpoint / "f").unlink()
    assert client.volumes.populate("once", src) is False  # emptied later: not filled again
    assert list(vol.mountpoint.iterdir()) == []


def test_nonempty_volume_is_not_populated(client, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("image")
    vol = client.volumes.create("full")
    (vol.mountpoint / "mine").write_text("user")
    assert client.volumes.populate("full", src) is False
    assert sorted(p.name for p in vol.mountpoint.iterdir()) == ["mine"]


def test_nocopy_skips_and_leaves_the_volume_new(client, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("image")
    vol = client.volumes.create("nc")
    assert client.volumes.populate("nc", src, nocopy=True) is False
    assert list(vol.mountpoint.iterdir()) == []
    assert client.volumes.populate("nc", src) is True  # a later mount without nocopy copies
    assert (vol.mountpoint / "f").read_text() == "image"


def test_missing_or_file_source_copies_nothing(client, tmp_path):
    vol = client.volumes.create("nothing")
    assert client.volumes.populate("nothing", tmp_path / "absent") is False
    assert list(vol.mountpoint.iterdir()) == []
    (tmp_path / "file").write_text("x")
    client.volumes.create("nothing2")
    assert client.volumes.populate("nothing2", tmp_path / "file") is False


def test_symlink_source_refused(client, tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "f").write_text("x")
    os.symlink(tmp_path / "real", tmp_path / "link")
    vol = client.volumes.create("sl")
    with pytest.raises(VolumeError, match="is a symlink; resolve it inside the rootfs"):
        client.volumes.populate("sl", tmp_path / "link")
    assert list(vol.mountpoint.iterdir()) == []


def test_data_dir_replaced_by_symlink_is_refused(client, tmp_path):
    src, target = tmp_path / "src", tmp_path / "target"
    src.mkdir()
    target.mkdir()
    (src / "f").write_text("x")
    vol = client.volumes.create("evil")
    vol.mountpoint.rmdir()
    os.symlink(target, vol.mountpoint)
    with pytest.raises(VolumeError, match="_data: not a directory"):
        client.volumes.populate("evil", src)
    assert list(target.iterdir()) == []


def test_source_holding_the_volume_does_not_recurse(tmp_path):
    (tmp_path / "src").mkdir()
    client = Client(tmp_path / "src" / "root")
    (tmp_path / "src" / "top.txt").write_text("t")
    vol = client.volumes.create("self")
    assert client.volumes.populate("self", tmp_path / "src")
    assert (vol.mountpoint / "top.txt").read_text() == "t"
    inner = vol.mountpoint / "root" / "volumes" / "self"
    assert not any(p.name.startswith(".copyup-") for p in inner.iterdir())


class FailingSource(DirSource):
    """A directory whose second level cannot be read, as an I/O error would leave it."""

    def children(self, rel):
        if rel:
            raise OSError(5, "Input/output error", os.path.join(self.path, *rel))
        return super().children(rel)


def test_failed_copy_leaves_nothing(client, tmp_path):
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "a").write_text("x")
    vol = client.volumes.create("fail")
    service = VolumeStore(client.store)
    with pytest.raises(VolumeError, match=r"copy-up into volume fail: Input/output error: .*/d$"):
        service._populate("fail", FailingSource(src), False)
    assert list(vol.mountpoint.iterdir()) == []
    assert sorted(p.name for p in vol.mountpoint.parent.iterdir()) == ["_data", "volume.json"]
    assert client.volumes.populate("fail", src)  # not marked: the next mount tries again


def overlay_layers(tmp_path: Path) -> list[Path]:
    """Two overlay-format layers: the upper one whites out a file and makes a dir opaque."""
    lower, upper = tmp_path / "l0", tmp_path / "l1"
    (lower / "srv" / "data" / "old").mkdir(parents=True)
    (lower / "srv" / "data" / "keep").write_text("lower")
    (lower / "srv" / "data" / "gone").write_text("lower")
    (lower / "srv" / "data" / "old" / "x").write_text("hidden by opaque")
    (lower / "var").mkdir()
    os.symlink("/srv/data", lower / "var" / "data")  # the mount path goes through a link
    (upper / "srv" / "data" / "old").mkdir(parents=True)
    os.setxattr(upper / "srv" / "data" / "old", "trusted.overlay.opaque", b"y")
    (upper / "srv" / "data" / "old" / "new").write_text("upper")
    os.mknod(upper / "srv" / "data" / "gone", stat.S_IFCHR, 0)
    (upper / "srv" / "data" / "added").write_text("upper")
    return [lower, upper]


def test_populate_from_layers(client, tmp_path):
    layers = overlay_layers(tmp_path)
    vol = client.volumes.create("layered")
    assert client.volumes.populate_from_layers("layered", layers, "/var/data")
    data = vol.mountpoint
    found = sorted(str(p.relative_to(data)) for p in data.rglob("*"))
    assert found == ["added", "keep", "old", "old/new"]
    assert (data / "keep").read_text() == "lower" and (data / "added").read_text() == "upper"
    assert "trusted.overlay.opaque" not in os.listxattr(data / "old")


def test_populate_from_busybox_image(client, busybox_tar):
    image = client.images.import_(busybox_tar, "vol/busybox")
    layers = client.store.layers.ensure(image.layers)
    vol = client.volumes.create()
    assert client.volumes.populate_from_layers(vol.name, layers, "/bin")
    assert (vol.mountpoint / "busybox").stat().st_size > 100_000
    assert os.access(vol.mountpoint / "busybox", os.X_OK)
