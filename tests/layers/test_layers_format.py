"""The normalised tar: what tarfile and GNU tar read back, determinism, compression."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from support.layers import CAP, copy_tree, workdir  # noqa: F401 - fixture

from pybuild.errors import LayerError
from pybuild.layers.compression import (
    COMPRESSIONS,
    compress_stream,
    compression_of_media_type,
    media_type_for,
    open_decompressed,
)
from pybuild.layers.create import (
    write_layer_from_tree,
    write_layer_from_trees,
)
from pybuild.layers.tarformat import RECORD, TarWriter

pytestmark = pytest.mark.root  # mknod, chown and trusted.* xattrs

LONG = "d" * 120 + "/" + "f" * 150


def make_tree(root: Path) -> None:
    (root / "dir/sub").mkdir(parents=True)
    (root / "file").write_bytes(b"hello\n")
    os.chmod(root / "file", 0o4755)
    os.setxattr(root / "file", "user.x", b"1")
    os.setxattr(root / "file", "security.capability", CAP)
    os.link(root / "file", root / "dir/hard")
    os.symlink("../file", root / "dir/sym")
    os.mkfifo(root / "fifo")
    os.mknod(root / "null", 0o20666, os.makedev(1, 3))
    os.chmod(root / "null", 0o666)
    os.chmod(root / "dir", 0o1777)
    (root / "dir/sub/big").write_bytes(os.urandom(3 << 20))
    os.chown(root / "dir/sub/big", 3_000_000, 1234)  # too big for ustar's uid field
    Path(root, LONG).parent.mkdir()
    Path(root, LONG).write_bytes(b"long")
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), (1_500_000_000.7, 1_500_000_000.7),
                     follow_symlinks=False)


def layer(root: Path, **kw) -> bytes:
    out = io.BytesIO()
    write_layer_from_tree(root, out, upper=False, **kw)
    return out.getvalue()


@pytest.fixture
def tree(workdir: Path) -> Path:  # noqa: F811
    root = workdir / "tree"
    root.mkdir()
    make_tree(root)
    return root


def test_tarfile_reads_back_expected_entries(tree: Path):
    members = {m.name: m for m in tarfile.open(fileobj=io.BytesIO(layer(tree)))}
    assert list(members) == [
        "d" * 120, LONG, "dir", "dir/hard", "dir/sub", "dir/sub/big", "dir/sym",
        "fifo", "file", "null",
    ]
    f = members["dir/hard"]  # the first name of a hardlinked file carries the data
    assert f.isreg() and f.mode == 0o4755 and f.size == 6 and f.mtime == 1_500_000_000
    assert (f.uid, f.gid, f.uname, f.gname) == (0, 0, "", "")
    assert f.pax_headers["SCHILY.xattr.user.x"] == "1"
    assert "SCHILY.xattr.security.capability" in f.pax_headers
    assert members["dir"].isdir() and members["dir"].mode == 0o1777
    assert members["file"].islnk() and members["file"].linkname == "dir/hard"
    assert members["dir/sym"].issym() and members["dir/sym"].linkname == "../file"
    assert members["fifo"].isfifo()
    null = members["null"]
    assert null.ischr() and (null.devmajor, null.devminor) == (1, 3)
    big = members["dir/sub/big"]
    assert (big.uid, big.gid, big.size) == (3_000_000, 1234, 3 << 20)


def test_gnu_tar_lists_and_extracts_with_xattrs(tree: Path, workdir: Path):  # noqa: F811
    path = workdir / "layer.tar"
    path.write_bytes(layer(tree))
    listing = subprocess.run(["tar", "-tvf", str(path)], capture_output=True, text=True,
                             check=True).stdout
    assert "-rwsr-xr-x 0/0" in listing and "drwxrwxrwt 0/0" in listing
    assert "file link to dir/hard" in listing and "dir/sym -> ../file" in listing
    assert "3000000/1234" in listing and "crw-rw-rw- 0/0" in listing
    out = workdir / "out"
    out.mkdir()
    subprocess.run(["tar", "--xattrs", "--xattrs-include=*", "-xpf", str(path), "-C", str(out)],
                   check=True)
    assert os.getxattr(out / "file", "security.capability") == CAP
    assert os.getxattr(out / "file", "user.x") == b"1"
    assert (out / LONG).read_bytes() == b"long"
    assert os.stat(out / "file").st_mtime == 1_500_000_000


def test_same_tree_gives_same_bytes_and_copies_agree(tree: Path, workdir: Path):  # noqa: F811
    copy = workdir / "copy"
    copy.mkdir()
    copy_tree(tree, copy)
    for compression in COMPRESSIONS:
        first = layer(tree, compression=compression)
        assert first == layer(tree, compression=compression)
        assert first == layer(copy, compression=compression)


def test_source_date_epoch_clamps_only_newer_times(tree: Path):
    members = tarfile.open(fileobj=io.BytesIO(layer(tree, source_date_epoch=1_400_000_000)))
    assert {m.mtime for m in members} == {1_400_000_000}
    members = tarfile.open(fileobj=io.BytesIO(layer(tree, source_date_epoch=1_600_000_000)))
    assert {m.mtime for m in members} == {1_500_000_000}


def test_layer_info_digests(tree: Path):
    for compression in COMPRESSIONS:
        out = io.BytesIO()
        info = write_layer_from_tree(tree, out, upper=False, compression=compression)
        blob = out.getvalue()
        plain = open_decompressed(io.BytesIO(blob)).read()
        assert info.diff_id == "sha256:" + hashlib.sha256(plain).hexdigest()
        assert info.digest == "sha256:" + hashlib.sha256(blob).hexdigest()
        assert info.size == len(blob)
        assert info.media_type == media_type_for(compression)
    gz = layer(tree, compression="gzip")
    assert gz[:2] == b"\x1f\x8b" and gz[4:8] == bytes(4) and not gz[3] & 0x08  # no mtime/name


def test_real_whiteout_names_are_refused(workdir: Path):  # noqa: F811
    (workdir / "t").mkdir()
    (workdir / "t/.wh.evil").write_bytes(b"")
    with pytest.raises(LayerError, match=r"\.wh\.evil"):
        layer(workdir / "t")
    with pytest.raises(LayerError, match=r"\.wh\.evil"):
        write_layer_from_trees(None, workdir / "t", io.BytesIO())


def test_media_types():
    assert media_type_for("none") == "application/vnd.oci.image.layer.v1.tar"
    assert media_type_for("gzip") == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert media_type_for("zstd") == "application/vnd.oci.image.layer.v1.tar+zstd"
    assert media_type_for("gzip", docker=True) == \
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    assert media_type_for("none", docker=True) == "application/vnd.docker.image.rootfs.diff.tar"
    for compression in COMPRESSIONS:
        for docker in (False, True):
            assert compression_of_media_type(media_type_for(compression, docker=docker)) \
                == compression
    with pytest.raises(LayerError):
        compression_of_media_type("application/json")
    with pytest.raises(LayerError):
        media_type_for("lz4")


PAYLOAD = os.urandom(200_000) + b"x" * 300_000
ENCODERS = {
    "plain": lambda d: d,
    "gzip": gzip.compress,
    "gzip-multi": lambda d: gzip.compress(d[:1000]) + gzip.compress(d[1000:]),
    "zstd": lambda d: zstandard.ZstdCompressor().compress(d),
    "bzip2": bz2.compress,
    "xz": lzma.compress,
}


@pytest.mark.parametrize("kind", ENCODERS)
def test_every_reader_accepts_every_format(kind):
    assert open_decompressed(io.BytesIO(ENCODERS[kind](PAYLOAD))).read() == PAYLOAD


@pytest.mark.parametrize("kind", ["gzip", "zstd", "bzip2", "xz"])
def test_truncated_streams_raise(kind):
    data = ENCODERS[kind](PAYLOAD)
    for cut in (len(data) // 2, len(data) - 3):
        with pytest.raises(LayerError, match="truncated|corrupt"):
            open_decompressed(io.BytesIO(data[:cut])).read()


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_compress_stream(compression):
    out = io.BytesIO()
    digest, size = compress_stream(io.BytesIO(PAYLOAD), out, compression)
    assert digest == "sha256:" + hashlib.sha256(out.getvalue()).hexdigest()
    assert size == len(out.getvalue())
    assert open_decompressed(io.BytesIO(out.getvalue())).read() == PAYLOAD


def test_upper_dir_markers_become_oci_whiteouts(workdir: Path):  # noqa: F811
    upper = workdir / "upper"
    upper.mkdir()
    os.mknod(upper / "gone", 0o20000, os.makedev(0, 0))
    (upper / "d").mkdir()
    os.setxattr(upper / "d", "trusted.overlay.opaque", b"y")
    (upper / "d/new").write_bytes(b"n")
    os.setxattr(upper / "d/new", "trusted.overlay.origin", b"bookkeeping")
    (upper / "x").write_bytes(b"")
    os.setxattr(upper / "x", "trusted.overlay.whiteout", b"")  # kernels >= 6.7 may do this
    out = io.BytesIO()
    write_layer_from_tree(upper, out, upper=True)
    members = list(tarfile.open(fileobj=io.BytesIO(out.getvalue())))
    assert [m.name for m in members] == [".wh.gone", ".wh.x", "d", "d/.wh..wh..opq", "d/new"]
    assert all(m.isreg() or m.isdir() for m in members)
    assert not any("trusted" in key for m in members for key in m.pax_headers)


def test_upper_dir_with_redirects_is_refused(workdir: Path):  # noqa: F811
    upper = workdir / "upper"
    (upper / "moved").mkdir(parents=True)
    os.setxattr(upper / "moved", "trusted.overlay.redirect", b"/old")
    with pytest.raises(LayerError, match="redirect_dir=off"):
        write_layer_from_tree(upper, io.BytesIO(), upper=True)


def test_tree_diff_from_nothing_is_the_whole_tree(tree: Path):
    out = io.BytesIO()
    write_layer_from_trees(None, tree, out)
    assert out.getvalue() == layer(tree)


def test_gnu_tar_archive_applies(tree: Path, workdir: Path):  # noqa: F811
    from support.layers import manifest

    from pybuild.layers.extract import apply_layer

    made = subprocess.run(["tar", "--xattrs", "--xattrs-include=*", "-C", str(tree), "-czf", "-",
                           "."], capture_output=True, check=True).stdout
    out = workdir / "applied"
    apply_layer(io.BytesIO(made), out)
    assert manifest(out) == manifest(tree)


ARCHIVE_NAMES = st.text(st.sampled_from("ab/-é"), min_size=1, max_size=130).filter(
    lambda n: not n.startswith("/") and "//" not in n and not n.endswith("/"))


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(ARCHIVE_NAMES, st.binary(max_size=1500), max_size=6),
       st.integers(0, 2**40))
def test_tar_writer_archives_read_back_and_repeat(files, mtime):
    def write() -> bytes:
        out = io.BytesIO()
        writer = TarWriter(out, mtime)
        writer.add_dir("top")
        for name, data in files.items():
            writer.add_chunks(name, len(data), (data[:7], data[7:]))
        writer.close()
        assert writer.written == len(out.getvalue())
        return out.getvalue()

    raw = write()
    assert raw == write() and len(raw) % RECORD == 0
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["top", *files]
        assert all(m.uid == m.gid == 0 and not m.uname and m.mtime == mtime for m in members)
        assert members[0].isdir() and members[0].mode == 0o755
        for member in members[1:]:
            assert member.mode == 0o644
            assert tar.extractfile(member).read() == files[member.name]


def test_tar_writer_refuses_data_that_does_not_match_its_header():
    with pytest.raises(ValueError, match="header said 4"):
        TarWriter(io.BytesIO()).add_chunks("short", 4, (b"abc",))
