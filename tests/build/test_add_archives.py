"""ADD of local archives as BuildKit 20.10: what counts as an archive, and the owners of what
is unpacked with --chown."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest
from support.build import image_tree, new_store, run_build

from pybuild.build.addsource import is_archive

BASE = "FROM localhost/bench/busybox:latest\n"


def _tar(*entries: tuple[str, bytes | None, int]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, uid in entries:
            ti = tarfile.TarInfo(name)
            ti.uid = ti.gid = uid
            if data is None:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            else:
                ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


@pytest.mark.parametrize("content, archive", [
    (_tar(("f", b"f", 0)), True),
    (gzip.compress(_tar(("f", b"f", 0))), True),
    (gzip.compress(b"just some text, not a tar\n" * 40), False),  # copied, still compressed
    (gzip.compress(_tar()), False),  # no first header: no archive to docker either
    (b"\x1f\x8b" + b"not really gzip" * 40, False),
    (b"plain text" * 100, False),
])
def test_an_archive_is_a_file_a_tar_header_reads_from(tmp_path: Path, content, archive):
    path = tmp_path / "f"
    path.write_bytes(content)
    assert is_archive(str(path)) is archive


@pytest.mark.root
def test_add_chown_leaves_unpacked_owners_alone(tmp_path_factory, busybox_tar, tmp_path):
    store = new_store(tmp_path_factory.mktemp("add") / "root", busybox_tar)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "t.tar").write_bytes(_tar(("d", None, 7), ("d/b", b"b", 8), ("a", b"a", 5),
                                     ("implied/c", b"c", 9)))
    (ctx / "Dockerfile").write_text(BASE + "ADD --chown=65:66 t.tar /t/\n")
    image, _ = run_build(store, ctx)
    tree = image_tree(store, image, tmp_path / "rootfs")
    owners = {p: (tree[p][2], tree[p][3]) for p in ("t", "t/a", "t/d", "t/d/b", "t/implied")}
    assert owners == {"t": (65, 66), "t/a": (5, 5), "t/d": (7, 7), "t/d/b": (8, 8),
                      "t/implied": (0, 0)}
    assert os.path.isfile(tmp_path / "rootfs/t/implied/c")
