"""COPY and ADD staging without a store: a fake image (one overlay lower dir) seen through
RootfsView, what Staging and copystep write for it, as BuildKit 20.10 would."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from pybuild.build.rootfs import RootfsView
from pybuild.build.staging import Item, Staging

pytestmark = pytest.mark.root  # chown to other owners

OLD = 1_000_000_000


@pytest.fixture
def image(tmp_path: Path) -> Path:
    """A lower dir: /etc (passwd, group), /usr/local/bin, every mtime OLD."""
    low = tmp_path / "lower"
    for d in ("etc", "usr/local/bin"):
        (low / d).mkdir(parents=True)
    (low / "etc/passwd").write_text("root:x:0:0::/:/bin/sh\n")
    (low / "etc/group").write_text("root:x:0:\n")
    for dirpath, dirs, files in os.walk(low, topdown=False):
        for name in dirs + files:
            os.utime(os.path.join(dirpath, name), (OLD, OLD))
    return low


def staging(tmp_path: Path, *lowers: Path) -> Staging:
    tree = tmp_path / "tree"
    tree.mkdir()
    return Staging(tree, RootfsView(list(lowers)))


def mtime(path: Path) -> float:
    return os.lstat(path).st_mtime


def test_replacing_a_file_gives_its_dir_the_builds_time(tmp_path, image):
    s = staging(tmp_path, image)
    etc = s.ensure_dir("/etc")
    s.put(etc, Item("passwd", "file", 0o600, data=b"new\n", mtime=OLD), None)
    s.finish()
    assert mtime(s.root / "etc") > time.time() - 60
    assert mtime(s.root / "etc/passwd") == OLD


def test_a_dir_only_passed_through_keeps_its_time(tmp_path, image):
    s = staging(tmp_path, image)
    local = s.ensure_dir("/usr/local")
    s.put(local, Item("new", "file", 0o644, data=b"n", mtime=OLD), None)
    s.finish()
    assert mtime(s.root / "usr") == OLD  # holds only the image's own local
    assert mtime(s.root / "usr/local") > time.time() - 60  # gained a name


def test_a_dir_merged_over_an_image_dir_leaves_its_parent_alone(tmp_path, image):
    s = staging(tmp_path, image)
    usr = s.ensure_dir("/usr")
    s.put(usr, Item("local", "dir", 0o755, mtime=OLD), None)
    s.finish()
    assert mtime(s.root / "usr") == OLD
    assert stat.S_IMODE(os.lstat(s.root / "usr/local").st_mode) == 0o755


def test_a_dir_made_in_a_setgid_dir_is_setgid_and_takes_its_group(tmp_path, image):
    os.chown(image / "usr/local", 0, 50)
    os.chmod(image / "usr/local", 0o2775)
    s = staging(tmp_path, image)
    made = Path(s.ensure_dir("/usr/local/new/deeper", gid=None))
    for path in (made.parent, made):
        st = os.lstat(path)
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o2755, 0, 50)
    chowned = os.lstat(s.ensure_dir("/usr/local/owned", uid=65, gid=66))
    assert (stat.S_IMODE(chowned.st_mode), chowned.st_gid) == (0o2755, 66)
    plain = os.lstat(s.ensure_dir("/etc/new", gid=None))
    assert (stat.S_IMODE(plain.st_mode), plain.st_gid) == (0o755, 0)


@pytest.mark.parametrize("spec, want", [
    ("751", 0o751), ("0640", 0o640), ("4755", 0o755), ("2755", 0o755), ("6711", 0o711),
    ("1777", 0o777), ("0", 0), ("u+x,go-w", 0o744), (None, 0o644),
])
def test_chmod_keeps_only_permission_bits_of_an_octal_value(spec, want):
    from pybuild.build.staging import apply_chmod

    assert apply_chmod(0o644, spec, False) == want
