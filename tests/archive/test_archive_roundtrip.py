"""save/load round trips: determinism, byte-identical re-saves, compressions, formats, CLI."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from support.archive import (
    TAG,
    docker_manifest,
    make_image,
    pybuild,
    read_tar_members,
    store_state,
    system_check_clean,
    tar_bytes,
)

from pybuild.archive import load, save
from pybuild.client import Client
from pybuild.errors import ImageNotFound, UsageError
from pybuild.store import Store


@pytest.fixture(scope="module")
def source(tmp_path_factory, busybox_tar) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("archive-src") / "root"
    return root, make_image(root, busybox_tar)


def _save(root: Path, *names: str, **kwargs) -> bytes:
    out = io.BytesIO()
    save(Store(root), list(names), out, **kwargs)
    return out.getvalue()


def test_two_saves_are_byte_identical_and_deterministic(source):
    root, image_id = source
    first = _save(root, "busybox")
    assert _save(root, "busybox") == first
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        members = tar.getmembers()
    assert [m.name for m in members][:2] == ["blobs", "blobs/sha256"]
    assert [m.name for m in members][-4:] == ["index.json", "manifest.json", "oci-layout",
                                              "repositories"]
    assert {(m.uid, m.gid, m.mtime, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}


def test_source_date_epoch_sets_mtimes(source, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    with tarfile.open(fileobj=io.BytesIO(_save(source[0], "busybox"))) as tar:
        assert {m.mtime for m in tar} == {1700000000}


def test_archive_is_docker_and_oci_at_once(source):
    root, image_id = source
    files = read_tar_members(_save(root, "busybox"))
    (entry,) = json.loads(files["manifest.json"])
    assert entry["Config"] == "blobs/sha256/" + image_id[7:]
    assert entry["RepoTags"] == ["busybox:latest"]
    assert len(entry["Layers"]) == 3 and all(n in files for n in entry["Layers"])
    index = json.loads(files["index.json"])
    (desc,) = index["manifests"]
    assert desc["annotations"] == {"io.containerd.image.name": TAG,
                                   "org.opencontainers.image.ref.name": "latest"}
    manifest = json.loads(files["blobs/sha256/" + desc["digest"][7:]])
    assert [ly["digest"][7:] for ly in manifest["layers"]] == [
        n.rsplit("/", 1)[1] for n in entry["Layers"]]
    assert {ly["mediaType"] for ly in manifest["layers"]} == {
        "application/vnd.oci.image.layer.v1.tar+gzip"}
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    assert json.loads(files["repositories"])["busybox"]["latest"]


def test_import_save_load_save_is_byte_identical(source, tmp_path):
    first = _save(source[0], "busybox")
    loaded = load(Store(tmp_path / "b"), io.BytesIO(first))
    assert [(i.id, i.tags) for i in loaded] == [(source[1], (TAG,))]
    assert _save(tmp_path / "b", "busybox") == first
    system_check_clean(tmp_path / "b")


@pytest.mark.parametrize("compression, media", [
    ("zstd", "application/vnd.oci.image.layer.v1.tar+zstd"),
    ("none", "application/vnd.oci.image.layer.v1.tar"),
])
def test_other_compressions_load_back(source, tmp_path, compression, media):
    data = _save(source[0], "busybox", compression=compression)
    files = read_tar_members(data)
    desc = json.loads(files["index.json"])["manifests"][0]
    manifest = json.loads(files["blobs/sha256/" + desc["digest"][7:]])
    assert {ly["mediaType"] for ly in manifest["layers"]} == {media}
    (image,) = load(Store(tmp_path / "b"), io.BytesIO(data))
    assert image.id == source[1]
    assert Store(tmp_path / "b").records.get(image.id).diff_ids == \
        Store(source[0]).records.get(source[1]).diff_ids
    assert _save(tmp_path / "b", "busybox", compression=compression) == data


def test_second_save_uses_the_compressed_memo(source, monkeypatch):
    _save(source[0], "busybox", compression="zstd")
    from pybuild.store import compressed

    def boom(*_args, **_kwargs):
        raise AssertionError("compressed again")

    monkeypatch.setattr(compressed.CompressedIndex, "_compress", boom)
    _save(source[0], "busybox", compression="zstd")


def test_oci_dir_format_and_load_from_dir(source, tmp_path):
    dest = tmp_path / "layout"
    save(Store(source[0]), ["busybox"], format="oci-dir", dest_dir=dest)
    assert sorted(p.name for p in dest.iterdir()) == [
        "blobs", "index.json", "manifest.json", "oci-layout", "repositories"]
    (image,) = load(Store(tmp_path / "b"), dest)
    assert image.id == source[1] and image.tags == (TAG,)
    with pytest.raises(Exception, match="not an empty directory"):
        save(Store(source[0]), ["busybox"], format="oci-dir", dest_dir=dest)


def test_save_by_id_is_untagged_and_several_names_merge(source, tmp_path):
    root, image_id = source
    (entry,) = docker_manifest(_save(root, image_id[7:19]))
    assert entry["RepoTags"] is None
    index = json.loads(read_tar_members(_save(root, image_id[7:19]))["index.json"])
    assert "annotations" not in index["manifests"][0]
    (image,) = load(Store(tmp_path / "b"), io.BytesIO(_save(root, image_id)))
    assert image.tags == ()
    (entry,) = docker_manifest(_save(root, "busybox:latest", image_id))
    assert entry["RepoTags"] == ["busybox:latest"]


def test_save_errors(source):
    with pytest.raises(ImageNotFound):
        _save(source[0], "nosuch:image")
    with pytest.raises(UsageError):
        _save(source[0], "busybox", compression="lz4")


def test_multiple_images_and_tags(source, tmp_path):
    client = Client(source[0])
    client.images.tag("busybox", "example.com/team/app:1.0")
    try:
        data = _save(source[0], "busybox", "example.com/team/app:1.0")
    finally:
        client.images.remove("example.com/team/app:1.0")
    (entry,) = docker_manifest(data)
    assert entry["RepoTags"] == ["busybox:latest", "example.com/team/app:1.0"]
    (image,) = load(Store(tmp_path / "b"), io.BytesIO(data))
    assert image.tags == (TAG, "example.com/team/app:1.0")


def test_old_docker_archive_format(source, tmp_path):
    """docker < 25: <v1id>/layer.tar (uncompressed), <id>.json config, manifest.json."""
    store = Store(source[0])
    record = store.records.get(source[1])
    entries, layer_names = [], []
    for i, diff_id in enumerate(record.diff_ids):
        name = f"{i:064x}/layer.tar"
        entries += [(f"{i:064x}", "dir", None, 0o755),
                    (name, "file", store.blobs.read_bytes(diff_id), 0o644),
                    (f"{i:064x}/VERSION", "file", b"1.0", 0o644)]
        layer_names.append(name)
    manifest = [{"Config": f"{source[1][7:]}.json", "RepoTags": ["old:v1"],
                 "Layers": layer_names}]
    entries += [(f"{source[1][7:]}.json", "file", store.blobs.read_bytes(source[1]), 0o644),
                ("manifest.json", "file", json.dumps(manifest).encode(), 0o644),
                ("repositories", "file", b"{}", 0o644)]
    (image,) = load(Store(tmp_path / "b"), io.BytesIO(tar_bytes(entries)))
    assert image.id == source[1] and image.tags == ("docker.io/library/old:v1",)


def test_cli_save_pipe_load_and_output_file(source, tmp_path):
    out = pybuild(source[0], "save", "busybox").stdout
    assert out == _save(source[0], "busybox")
    result = pybuild(tmp_path / "b", "load", input=out)
    assert result.stdout.decode() == "Loaded image: busybox:latest\n"
    pybuild(source[0], "save", "-o", str(tmp_path / "x.tar"), "--compression", "zstd",
            "busybox")
    result = pybuild(tmp_path / "c", "load", "-q", "-i", str(tmp_path / "x.tar"))
    assert result.stdout.decode() == "Loaded image: busybox:latest\n"
    result = pybuild(source[0], "save", source[1])
    result = pybuild(tmp_path / "d", "load", input=result.stdout)
    assert result.stdout.decode() == f"Loaded image ID: {source[1]}\n"
    pybuild(source[0], "save", "--format", "oci-dir", "-o", str(tmp_path / "dir"), "busybox")
    assert pybuild(tmp_path / "e", "load", "-i", str(tmp_path / "dir")).returncode == 0
    bad = pybuild(source[0], "save", "nosuch", check=False)
    assert bad.returncode == 1 and bad.stdout == b""
    assert bad.stderr.decode().count("\n") == 1
    assert not list(tmp_path.glob(".x.tar.tmp-*"))
    for root in ("b", "c", "d", "e"):
        system_check_clean(tmp_path / root)


def test_client_api(source, tmp_path):
    buf = io.BytesIO()
    saved = Client(source[0]).images.save(["busybox"], buf)
    assert saved[0].image_id == source[1]
    (image,) = Client(tmp_path / "b").images.load(io.BytesIO(buf.getvalue()))
    assert image.id == source[1]
    assert Client(tmp_path / "b").images.get("busybox").id == source[1]


def test_loading_twice_changes_nothing(source, tmp_path):
    data = _save(source[0], "busybox")
    load(Store(tmp_path / "b"), io.BytesIO(data))
    before = store_state(tmp_path / "b")
    load(Store(tmp_path / "b"), io.BytesIO(data))
    assert store_state(tmp_path / "b") == before


def test_bare_repository_saves_every_tag_of_it(source, tmp_path, busybox_tar):
    root = tmp_path / "a"
    first = make_image(root, busybox_tar, "docker.io/library/multi:1")
    client = Client(root)
    second = client.images.import_(busybox_tar, "multi:2", changes=["ENV X=1"]).id
    assert first != second
    loaded = load(Store(tmp_path / "b"), io.BytesIO(_save(root, "multi")))
    assert sorted((i.id, i.tags) for i in loaded) == sorted([
        (first, ("docker.io/library/multi:1",)), (second, ("docker.io/library/multi:2",))])
    system_check_clean(tmp_path / "b")


@pytest.mark.parametrize("compress", ["gzip", "zstd", "xz"])
@pytest.mark.parametrize("via", ["file", "pipe"])
def test_a_compressed_archive_loads(source, tmp_path, compress, via):
    import subprocess

    data = subprocess.run([compress, "-c"], input=_save(source[0], "busybox"),
                          capture_output=True, check=True).stdout
    if via == "pipe":
        result = pybuild(tmp_path / "b", "load", input=data)
    else:
        (tmp_path / "x.tar.z").write_bytes(data)
        result = pybuild(tmp_path / "b", "load", "-i", str(tmp_path / "x.tar.z"))
    assert result.stdout.decode() == "Loaded image: busybox:latest\n"


def test_empty_input_is_one_clear_line(tmp_path):
    result = pybuild(tmp_path / "b", "load", input=b"", check=False)
    assert result.returncode == 1
    assert result.stderr.decode() == "error: the archive is empty\n"


def test_loading_over_a_tag_reports_the_renamed_image(source, tmp_path, busybox_tar):
    root = tmp_path / "b"
    other = Client(root).images.import_(busybox_tar, "busybox:latest").id
    result = pybuild(root, "load", input=_save(source[0], "busybox"))
    assert result.stdout.decode().splitlines() == [
        f"The image busybox:latest already exists, renaming the old one with ID {other} to "
        "empty string",
        "Loaded image: busybox:latest"]
    assert Client(root).images.get("busybox").id == source[1]
    assert Client(root).images.get(other).tags == ()


def test_a_rotten_layer_in_the_store_is_not_saved(tmp_path, busybox_tar):
    import shutil

    from pybuild.errors import DigestMismatch

    root = tmp_path / "root"
    client = Client(root)
    image = client.images.import_(busybox_tar, "rot/x:1")
    blob = Store(root).blobs.path(image.layers[0])
    data = bytearray(blob.read_bytes())
    data[-2000] ^= 0xFF  # one flipped byte inside the layer
    blob.chmod(0o644)
    blob.write_bytes(bytes(data))
    for compression in ("gzip", "none"):
        with pytest.raises(DigestMismatch) as err:
            save(Store(root), ["rot/x:1"], io.BytesIO(), compression=compression)
        assert "corrupt" in str(err.value) and "\n" not in str(err.value)
    assert not list((root / "tmp").glob("blob-*"))
    shutil.rmtree(root)
