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
