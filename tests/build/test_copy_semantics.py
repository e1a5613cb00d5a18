"""COPY and ADD as BuildKit 20.10 does them, built through the library on the busybox base
and read back through pybuild's own unpack: each source copied on its own onto what the
ones before left, destinations through symlinks, clashes of types, empty wildcards."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from support.build import image_tree, new_store, run_build

from pybuild.errors import PybuildError

pytestmark = pytest.mark.root
BASE = "FROM localhost/bench/busybox:latest\n"


@pytest.fixture(scope="module")
def store(tmp_path_factory, busybox_tar):
    return new_store(tmp_path_factory.mktemp("copy") / "root", busybox_tar)


def build(store, tmp_path: Path, dockerfile: str, files: dict[str, str | None]) -> Path:
    """Build ``dockerfile`` over a context of ``files`` (None: a directory, "->x": a symlink
    to x); the image's flattened tree is in the returned directory."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(BASE + dockerfile)
    for rel, text in files.items():
        path = ctx / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if text is None:
            path.mkdir()
        elif text.startswith("->"):
            path.symlink_to(text[2:])
        else:
            path.write_text(text)
    image, _ = run_build(store, ctx)
    rootfs = tmp_path / "rootfs"
    image_tree(store, image, rootfs)
    return rootfs


def refused(store, tmp_path: Path, dockerfile: str, files: dict[str, str | None]) -> str:
    with pytest.raises(PybuildError) as err:
        build(store, tmp_path, dockerfile, files)
    return str(err.value)


def test_several_files_without_a_slash_leave_the_last_as_the_destination(store, tmp_path):
    root = build(store, tmp_path, "COPY a b /dst\nCOPY m*.txt /globbed\n",
                 {"a": "a", "b": "bb", "m1.txt": "1", "m2.txt": "22"})
    assert (root / "dst").read_text() == "bb"
    assert (root / "globbed").read_text() == "22"


def test_a_directory_first_makes_the_destination_a_directory(store, tmp_path):
    root = build(store, tmp_path, "COPY d a /dst\n", {"d/x": "x", "a": "a"})
    assert sorted(os.listdir(root / "dst")) == ["a", "x"]


def test_a_directory_after_a_file_meets_a_non_directory(store, tmp_path):
    assert "cannot copy to non-directory" in refused(
        store, tmp_path, "COPY a d /dst\n", {"d/x": "x", "a": "a"})


def test_a_wildcard_that_matches_nothing_copies_nothing(store, tmp_path):
    root = build(store, tmp_path, "COPY *.none /dst/\nADD none-* /added/\n", {"a": "a"})
    assert not (root / "dst").exists() and not (root / "added").exists()


def test_a_file_destination_that_is_a_symlink_is_written_through(store, tmp_path):
    root = build(store, tmp_path, "COPY setup /\nCOPY f /lf\n",
                 {"setup/t": "old", "setup/lf": "->/t", "f": "new!"})
    assert os.readlink(root / "lf") == "/t"
    assert (root / "t").read_text() == "new!"
    assert stat.S_IMODE(os.lstat(root / "t").st_mode) == 0o644


def test_a_file_does_not_replace_an_image_directory(store, tmp_path):
    err = refused(store, tmp_path, "COPY setup /\nCOPY dir /app\n",
                  {"setup/app/x/inner": "i", "dir/x": "now a file"})
    assert "cannot replace to directory /app/x with file" in err


def test_a_directory_does_not_merge_into_an_image_file(store, tmp_path):
    err = refused(store, tmp_path, "COPY setup /\nCOPY dir /app\n",
                  {"setup/app/x": "f", "dir/x/y": "y"})
    assert "cannot copy to non-directory: /app/x" in err


def test_links_below_the_destination_are_not_followed(store, tmp_path):
    err = refused(store, tmp_path, "COPY setup /\nCOPY dir /app\n",
                  {"setup/app/real": None, "setup/app/cur": "->/app/real", "dir/cur/x": "x"})
    assert "cannot copy to non-directory: /app/cur" in err


def _inodes(root: Path, *names: str) -> set[int]:
    return {os.lstat(root / n).st_ino for n in names}


def test_hard_links_in_one_copied_tree_stay_links(store, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "d").mkdir()
    (ctx / "d/x").write_text("x")
    os.link(ctx / "d/x", ctx / "d/y")
    (ctx / "d/s").mkdir()
    os.link(ctx / "d/x", ctx / "d/s/z")
    os.link(ctx / "d/x", ctx / "outside")
    (ctx / "Dockerfile").write_text(
        BASE + "COPY --chown=65:66 --chmod=600 d /d\n"
        "FROM localhost/bench/busybox:latest\nCOPY --from=0 /d /again\n")
    image, _ = run_build(store, ctx)
    root = tmp_path / "rootfs"
    image_tree(store, image, root)
    assert len(_inodes(root, "again/x", "again/y", "again/s/z")) == 1
    assert os.lstat(root / "again/x").st_nlink == 3
    assert (os.lstat(root / "again/y").st_uid, stat.S_IMODE(os.lstat(root / "again/y").st_mode)
            ) == (65, 0o600)


def test_separate_sources_are_copied_apart(store, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "a").write_text("a")
    os.link(ctx / "a", ctx / "b")
    (ctx / "Dockerfile").write_text(BASE + "COPY a b /two/\n")
    image, _ = run_build(store, ctx)
    root = tmp_path / "rootfs"
    image_tree(store, image, root)
    assert len(_inodes(root, "two/a", "two/b")) == 2


CAP = b"\x01\x00\x00\x02\x00\x04" + b"\x00" * 14  # VFS v2, cap_net_bind_service permitted


def test_copy_from_keeps_the_capability_and_only_it(store, tmp_path):
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        ti = tarfile.TarInfo("a")
        ti.size, ti.mode = 1, 0o755
        ti.pax_headers = {"SCHILY.xattr.security.capability": CAP.decode("latin-1"),
                          "SCHILY.xattr.user.k": "v"}
        tar.addfile(ti, io.BytesIO(b"a"))
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "t.tar").write_bytes(buf.getvalue())
    (ctx / "Dockerfile").write_text(
        BASE + "ADD t.tar /t/\nFROM localhost/bench/busybox:latest\n"
        "COPY --from=0 /t /t\nCOPY --from=0 --chown=65:65 /t/a /a\n")
    image, _ = run_build(store, ctx)
    tree = image_tree(store, image, tmp_path / "rootfs")
    assert tree["t/a"][6] == (("security.capability", CAP),)
    assert tree["a"][6] == (("security.capability", CAP),)  # set after the chown
