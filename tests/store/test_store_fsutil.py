"""``atomic_write`` and ``AtomicFile``: whole files or none, the mode asked for, nothing left
behind, and cheap to import (the no-change rebuild writes through them)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pybuild.store.fsutil import AtomicFile, atomic_write


def test_beside_the_path_by_default_with_parents_made(tmp_path):
    target = tmp_path / "a" / "b" / "memo.json"
    atomic_write(target, b"one")
    atomic_write(str(target), b"two")
    assert target.read_bytes() == b"two"
    assert os.listdir(target.parent) == ["memo.json"]


def test_mode_is_what_was_asked_whatever_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        atomic_write(tmp_path / "shared", b"x")
        atomic_write(tmp_path / "ro", b"x", tmp_path / "tmp", mode=0o444)
    finally:
        os.umask(old)
    assert (tmp_path / "shared").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "ro").stat().st_mode & 0o777 == 0o444
    assert os.listdir(tmp_path / "tmp") == []


@pytest.mark.parametrize("kind", ["dir", "symlink", "fifo"])
def test_refuses_to_replace_what_is_not_a_regular_file(tmp_path, kind):
    target = tmp_path / "x"
    {"dir": lambda: target.mkdir(), "symlink": lambda: target.symlink_to("elsewhere"),
     "fifo": lambda: os.mkfifo(target)}[kind]()
    with pytest.raises(OSError, match="non-regular"):
        atomic_write(target, b"data")
    assert sorted(os.listdir(tmp_path)) == ["x"]


def test_a_failed_writer_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "f"
    atomic_write(target, b"old")
    with pytest.raises(RuntimeError), AtomicFile(target) as out:
        out.write(b"half")
        raise RuntimeError("killed")
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["f"]


@pytest.mark.parametrize("durable, syncs", [(True, 2), (False, 0)])
def test_only_a_durable_write_is_synced_and_both_replace_whole(tmp_path, monkeypatch,
                                                                durable, syncs):
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    target = tmp_path / "state.json"
    atomic_write(target, b"old", durable=durable)
    synced.clear()
    atomic_write(target, b"new", durable=durable)
    assert len(synced) == syncs  # the file, then the directory holding the rename
    assert target.read_bytes() == b"new" and os.listdir(tmp_path) == ["state.json"]


def test_destination_can_be_named_at_commit(tmp_path):
    out = AtomicFile(tmp_dir=tmp_path / "tmp", prefix="blob-")
    assert os.path.basename(out.tmp).startswith("blob-")
    out.write(b"content")
    out.commit(tmp_path / "by-digest")
    assert (tmp_path / "by-digest").read_bytes() == b"content"
    with pytest.raises(ValueError):
        AtomicFile()


def test_the_cheap_modules_load_no_other_pybuild_module():
    code = ("import sys, pybuild; before = set(sys.modules); "
            "import pybuild.store.fsutil, pybuild.store.paths; "
            "print(sorted(m for m in set(sys.modules) - before if m.startswith('pybuild')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    assert out.strip() == str(["pybuild.store", "pybuild.store.fsutil", "pybuild.store.paths"])


def test_every_name_the_package_exports_loads_on_use():
    import pybuild.store

    for name in pybuild.store.__all__:
        assert getattr(pybuild.store, name) is not None
    with pytest.raises(AttributeError):
        pybuild.store.no_such_name  # noqa: B018
