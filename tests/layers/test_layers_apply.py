"""Applying layers: hostile archives are refused without side effects; whiteouts both ways."""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest
import zstandard
from support.layers import info, make_tar, snapshot, workdir  # noqa: F401 - fixture

from pybuild.errors import LayerError, UnsafePathError
from pybuild.layers.extract import apply_layer, unpack_layers

pytestmark = pytest.mark.root


@pytest.fixture
def jail(workdir: Path) -> Path:  # noqa: F811
    """A root inside a sentinel dir whose contents must never change."""
    (workdir / "sentinel").write_bytes(b"keep")
    (workdir / "etc").mkdir()
    (workdir / "etc/passwd").write_bytes(b"root")
    root = workdir / "root"
    root.mkdir()
    return root


def _apply_refused(jail: Path, data: bytes, error=UnsafePathError, match=None, **kw) -> str:
    before = snapshot(jail.parent)
    with pytest.raises(error, match=match) as caught:
        apply_layer(io.BytesIO(data), jail, **kw)
    after = [item for item in snapshot(jail.parent) if not item[0].startswith("root")]
    assert after == [item for item in before if not item[0].startswith("root")]
    assert (jail.parent / "etc/passwd").read_bytes() == b"root"
    message = str(caught.value)
    assert "\n" not in message
    return message


HOSTILE = {
    "dotdot": [(info("../evil"), b"x")],
    "dotdot-inner": [(info("a/../../evil"), b"x")],
    "absolute": [(info("/etc/passwd"), b"x")],
    "symlink-abs": [(info("a", tarfile.SYMTYPE, link="/etc"), None), (info("a/passwd"), b"x")],
    "symlink-up": [(info("a", tarfile.SYMTYPE, link=".."), None), (info("a/evil"), b"x")],
    "symlink-deep": [(info("d", tarfile.DIRTYPE, mode=0o755), None),
                     (info("d/l", tarfile.SYMTYPE, link="../.."), None),
                     (info("d/l/etc/passwd"), b"x")],
    "hardlink-out": [(info("h", tarfile.LNKTYPE, link="../etc/passwd"), None)],
    "hardlink-abs": [(info("h", tarfile.LNKTYPE, link="/etc/passwd"), None)],
    "hardlink-missing": [(info("h", tarfile.LNKTYPE, link="nothing"), None)],
    "hardlink-via-symlink": [(info("s", tarfile.SYMTYPE, link=".."), None),
                             (info("h", tarfile.LNKTYPE, link="s/sentinel"), None)],
    "whiteout-up": [(info(".wh.."), b"")],
}


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_layers_are_refused(jail: Path, case: str):
    message = _apply_refused(jail, make_tar(HOSTILE[case]))
    assert message.split(":")[0]  # names the entry


def test_symlink_on_disk_is_not_followed(jail: Path):
    os.symlink("/etc", jail / "etc")
    _apply_refused(jail, make_tar([(info("etc/passwd"), b"x")]))
    os.symlink("..", jail / "up")
    _apply_refused(jail, make_tar([(info("up/.wh.sentinel"), b"")]))


def test_devices_refused_when_forbidden(jail: Path):
    data = make_tar([(info("null", tarfile.CHRTYPE, major=1, minor=3), None)])
    assert "null" in _apply_refused(jail, data, allow_devices=False)
    data = make_tar([(info("sda", tarfile.BLKTYPE, major=8, minor=0), None)])
    _apply_refused(jail, data, allow_devices=False)
    apply_layer(io.BytesIO(make_tar([(info("null", tarfile.CHRTYPE, major=1, minor=3),
                                      None)])), jail)
    assert stat.S_ISCHR(os.lstat(jail / "null").st_mode)


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_truncated_compressed_layer(jail: Path, kind: str):
    plain = make_tar([(info(f"f{i}"), os.urandom(5000)) for i in range(50)])
    data = gzip.compress(plain) if kind == "gzip" else zstandard.ZstdCompressor().compress(plain)
    _apply_refused(jail, data[: len(data) * 2 // 3], error=LayerError, match="truncated")


def test_truncated_plain_tar(jail: Path):
    plain = make_tar([(info("f"), os.urandom(5000))])
    _apply_refused(jail, plain[:2048], error=LayerError, match="truncated")


def test_not_a_tar(jail: Path):
    _apply_refused(jail, b"hello world" * 100, error=LayerError, match="checksum")


# --- whiteouts ---------------------------------------------------------------------------------

def _lower(root: Path) -> None:
    (root / "dir/sub").mkdir(parents=True)
    (root / "dir/sub/old").write_bytes(b"1")
    (root / "dir/keep").write_bytes(b"2")
    (root / "opq/inner").mkdir(parents=True)
    (root / "opq/inner/old").write_bytes(b"3")
    (root / "opq/old").write_bytes(b"4")
    (root / "file").write_bytes(b"5")


WHITEOUT_LAYER = [
    (info(".wh.file"), b""),
    (info("dir", tarfile.DIRTYPE, mode=0o755), None),
    (info("dir/.wh.sub"), b""),
    (info("opq", tarfile.DIRTYPE, mode=0o755), None),
    (info("opq/inner", tarfile.DIRTYPE, mode=0o755), None),
    (info("opq/inner/new"), b"6"),
    (info("opq/.wh.inner"), b""),  # same layer: must not hide opq/inner/new
    (info("opq/.wh..wh..opq"), b""),  # after its siblings, as the spec allows
]


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_whiteouts_in_apply_mode(workdir: Path):  # noqa: F811
    root = workdir / "root"
    root.mkdir()
    _lower(root)
    apply_layer(io.BytesIO(make_tar(WHITEOUT_LAYER)), root, mode="apply")
    assert _files(root) == {"dir", "dir/keep", "opq", "opq/inner", "opq/inner/new"}


def test_whiteouts_in_overlay_mode(workdir: Path):  # noqa: F811
    root = workdir / "layer"
    apply_layer(io.BytesIO(make_tar(WHITEOUT_LAYER)), root, mode="overlay")
    assert _files(root) == {"file", "dir", "dir/sub", "opq", "opq/inner", "opq/inner/new"}
    for name in ("file", "dir/sub"):
        st = os.lstat(root / name)
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(root / "opq", "trusted.overlay.opaque") == b"y"
    assert "trusted.overlay.opaque" not in os.listxattr(root / "dir")


def test_unpack_layers_flattens_a_stack(workdir: Path):  # noqa: F811
    base = make_tar([(info("a", tarfile.DIRTYPE, mode=0o755), None), (info("a/x"), b"1"),
                     (info("b"), b"2"), (info("c", tarfile.SYMTYPE, link="b"), None)])
    top = make_tar([(info("a/.wh..wh..opq"), b""), (info("a/y"), b"3"), (info(".wh.b"), b""),
                    (info("c"), b"now a file")])
    root = workdir / "flat"
    unpack_layers([io.BytesIO(base), io.BytesIO(gzip.compress(top))], root)
    assert _files(root) == {"a", "a/y", "c"}
    assert (root / "c").read_bytes() == b"now a file" and not (root / "c").is_symlink()


def test_gnu_format_long_names_and_modes(workdir: Path):  # noqa: F811
    name = "x" * 150 + "/" + "y" * 120
    data = make_tar([(info(name, mode=0o4711), b"z"),
                     (info("l", tarfile.SYMTYPE, link="t" * 200), None)], fmt=tarfile.GNU_FORMAT)
    root = workdir / "gnu"
    apply_layer(io.BytesIO(data), root)
    assert (root / name).read_bytes() == b"z"
    assert stat.S_IMODE(os.stat(root / name).st_mode) == 0o4711
    assert os.readlink(root / "l") == "t" * 200
    assert os.stat(root / name).st_mtime == 1_600_000_000


# --- hard link headers and ADD's untar ---------------------------------------------------------

def _owned(name: str, kind: bytes = tarfile.REGTYPE, *, link: str = "", mode: int = 0o644,
           owner: tuple[int, int] = (0, 0)) -> tarfile.TarInfo:
    ti = info(name, kind, link=link, mode=mode)
    ti.uid, ti.gid = owner
    return ti


def test_a_hard_link_header_sets_the_shared_files_metadata(workdir: Path):  # noqa: F811
    data = make_tar([(_owned("a", mode=0o600, owner=(5, 6)), b"a"),
                     (_owned("b", tarfile.LNKTYPE, link="a", mode=0o444, owner=(3, 4)), None)])
    root = workdir / "links"
    apply_layer(io.BytesIO(data), root)
    a, b = os.lstat(root / "a"), os.lstat(root / "b")
    assert a.st_ino == b.st_ino
    assert (stat.S_IMODE(a.st_mode), a.st_uid, a.st_gid) == (0o444, 3, 4)


def test_untar_clamps_names_to_the_root(jail: Path):
    data = make_tar([(info("/abs.txt"), b"a"), (info("../escape.txt"), b"e"),
                     (info("a/../../up.txt"), b"u"),
                     (info("h", tarfile.LNKTYPE, link="/abs.txt"), None)])
    apply_layer(io.BytesIO(data), jail, untar=True)
    assert _files(jail) == {"abs.txt", "escape.txt", "up.txt", "h"}
    assert os.lstat(jail / "h").st_ino == os.lstat(jail / "abs.txt").st_ino
    assert (jail.parent / "etc/passwd").read_bytes() == b"root"
    assert not (jail.parent / "escape.txt").exists()


def test_untar_keeps_only_the_capability_xattr(workdir: Path):  # noqa: F811
    cap = "\x01\x00\x00\x02\x00\x04" + "\x00" * 14
    f = info("f", mode=0o755)
    f.pax_headers = {"SCHILY.xattr.security.capability": cap, "SCHILY.xattr.user.k": "v"}
    d = info("d", tarfile.DIRTYPE, mode=0o755)
    d.pax_headers = {"SCHILY.xattr.user.d": "w"}
    root = workdir / "x"
    apply_layer(io.BytesIO(make_tar([(f, b"f"), (d, None)])), root, untar=True)
    assert os.listxattr(root / "f") == ["security.capability"]
    assert os.listxattr(root / "d") == []
    layer = workdir / "layer"
    apply_layer(io.BytesIO(make_tar([(f, b"f")])), layer)  # an image layer keeps them all
    assert sorted(os.listxattr(layer / "f")) == ["security.capability", "user.k"]


def test_untar_refuses_entry_types_docker_does_not_unpack(jail: Path):
    dump = info("d", b"D", mode=0o755)
    _apply_refused(jail, make_tar([(dump, b"Ya\0\0")]), error=LayerError,
                   match="unhandled tar header type 68", untar=True)


def test_a_hard_link_header_with_the_same_owner_keeps_the_capability(workdir: Path):  # noqa: F811
    cap = "\x01\x00\x00\x02\x00\x04" + "\x00" * 14
    f = _owned("f", mode=0o4755, owner=(5, 5))
    f.pax_headers = {"SCHILY.xattr.security.capability": cap}
    data = make_tar([(f, b"f"), (_owned("h", tarfile.LNKTYPE, link="f", mode=0o4755,
                                        owner=(5, 5)), None)])
    root = workdir / "cap"
    apply_layer(io.BytesIO(data), root)
    assert os.getxattr(root / "h", "security.capability") == cap.encode()
    assert stat.S_IMODE(os.lstat(root / "h").st_mode) == 0o4755
