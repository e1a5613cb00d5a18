"""Unpacked layers by chain ID: overlay lower dirs, adoption of upper dirs, flattening."""

from __future__ import annotations

import io
import os
import stat
import tarfile

from pybuild.store import Store, chain_ids
from pybuild.store.gc import collect


def layer(entries: dict[str, bytes | None]) -> bytes:
    """A tiny tar: name -> content, None for a directory."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def put_layers(store: Store) -> list[str]:
    base = store.blobs.put_bytes(layer({"etc": None, "etc/a": b"a", "etc/b": b"b"}))
    top = store.blobs.put_bytes(layer({"etc": None, "etc/.wh.a": b"", "etc/c": b"c"}))
    return [base.digest, top.digest]


def test_ensure_unpacks_each_chain_once(tmp_path):
    store = Store(tmp_path / "root")
    diff_ids = put_layers(store)
    lower, upper = store.layers.ensure(diff_ids)
    assert [lower, upper] == [store.layers.path(c) for c in chain_ids(diff_ids)]
    assert (lower / "etc/a").read_bytes() == b"a"
    whiteout = os.lstat(upper / "etc/a")  # an overlay whiteout: a 0/0 character device
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0
    assert (upper / "etc/c").read_bytes() == b"c"
    inode = os.stat(upper / "etc/c").st_ino
    assert store.layers.ensure(diff_ids)[1] == upper
    assert os.stat(upper / "etc/c").st_ino == inode  # not unpacked again
    assert os.listdir(store.tmp) == []


def test_unpack_to_flattens(tmp_path):
    store = Store(tmp_path / "root")
    dest = tmp_path / "flat"
    store.layers.unpack_to(put_layers(store), dest)
    assert sorted(os.listdir(dest / "etc")) == ["b", "c"]


def test_adopt_moves_an_upper_dir_in(tmp_path):
    store = Store(tmp_path / "root")
    base, top = put_layers(store)
    store.layers.ensure([base])
    upper = store.tmp / "upper"
    (upper / "srv").mkdir(parents=True)
    (upper / "srv/file").write_text("built")
    path = store.layers.adopt(base, top, upper)
    assert path == store.layers.path(chain_ids([base, top])[1])
    assert (path / "srv/file").read_text() == "built" and not upper.exists()
    again = store.tmp / "again"
    again.mkdir()
    assert store.layers.adopt(base, top, again) == path and not again.exists()


def test_gc_roots_keep_unreferenced_content(tmp_path):
    store = Store(tmp_path / "root")
    diff_ids = put_layers(store)
    chains = chain_ids(diff_ids)
    store.layers.ensure(diff_ids)
    store.set_gc_root("build-cache", blobs=diff_ids[:1], chains=chains[:1])
    result = collect(store)
    assert result.blobs == (diff_ids[1],) and result.layers == (chains[1],)
    assert store.blobs.has(diff_ids[0]) and store.layers.has(chains[0])
    store.remove_gc_root("build-cache")
    collect(store)
    assert list(store.blobs.digests()) == [] and store.layers.chains() == []
