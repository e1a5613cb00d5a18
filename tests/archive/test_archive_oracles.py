"""Reference tools read what pybuild saves, and pybuild loads what they write:
skopeo, umoci and oci-image-tool as oracles."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest
from support.archive import TAG, make_image, system_check_clean

from pybuild.archive import load, save
from pybuild.client import Client
from pybuild.store import Store

pytestmark = pytest.mark.oracle


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


def _run(*args: str) -> str:
    result = subprocess.run(args, capture_output=True, text=True)
    assert result.returncode == 0, f"{args}: {result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def saved(tmp_path_factory, busybox_tar):
    """(store root, image id, archive path, extracted layout dir)."""
    base = tmp_path_factory.mktemp("oracle")
    root = base / "root"
    image_id = make_image(root, busybox_tar)
    archive = base / "busybox.tar"
    with open(archive, "wb") as out:
        save(Store(root), ["busybox"], out)
    layout = base / "layout"
    layout.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(layout, filter="data")
    return root, image_id, archive, layout


def _index_manifest(layout: Path) -> tuple[str, dict]:
    desc = json.loads((layout / "index.json").read_text())["manifests"][0]
    return desc["digest"], json.loads((layout / "blobs/sha256" / desc["digest"][7:]).read_text())


def test_skopeo_inspects_both_views(saved):
    _tool("skopeo")
    root, image_id, archive, layout = saved
    record = Store(root).records.get(image_id)
    digest, manifest = _index_manifest(layout)
    oci = json.loads(_run("skopeo", "inspect", f"oci-archive:{archive}"))
    assert oci["Digest"] == digest
    assert oci["Layers"] == [ly["digest"] for ly in manifest["layers"]]
    docker = json.loads(_run("skopeo", "inspect", f"docker-archive:{archive}"))
    assert docker["Layers"] == list(record.diff_ids)
    config = json.loads(_run("skopeo", "inspect", "--config", f"docker-archive:{archive}"))
    assert config["rootfs"]["diff_ids"] == list(record.diff_ids)
    raw = _run("skopeo", "inspect", "--raw", f"oci:{layout}:latest").encode()
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == digest


def test_oci_image_tool_validates_layout_and_documents(saved):
    _tool("oci-image-tool")
    _root, image_id, _archive, layout = saved
    digest, manifest = _index_manifest(layout)
    blobs = layout / "blobs" / "sha256"
    _run("oci-image-tool", "validate", "--type", "image", "--ref", "name=latest", str(layout))
    _run("oci-image-tool", "validate", "--type", "imageIndex", str(layout / "index.json"))
    _run("oci-image-tool", "validate", "--type", "manifest", str(blobs / digest[7:]))
    _run("oci-image-tool", "validate", "--type", "config", str(blobs / image_id[7:]))
    assert manifest["config"]["digest"] == image_id


def _tree(root: Path) -> dict[str, tuple]:
    """type, mode, uid, gid, size, content hash or link target of every path under root."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(dirpath, name)
            st = path.lstat()
            rel = path.relative_to(root).as_posix()
            if stat.S_ISREG(st.st_mode):
                extra = hashlib.sha256(path.read_bytes()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                extra = os.readlink(path)
            else:
                extra = ""
            size = st.st_size if not stat.S_ISDIR(st.st_mode) else 0
            out[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid,
                        st.st_gid, size, extra)
    return out


def test_umoci_unpack_matches_our_unpack(saved, tmp_path):
    _tool("umoci")
    if os.geteuid() != 0:
        pytest.skip("umoci unpack without --rootless needs root")
    root, _image_id, _archive, layout = saved
    work = tmp_path / "layout"
    shutil.copytree(layout, work)  # umoci writes into the layout (its cache); keep ours clean
    _run("umoci", "unpack", "--image", f"{work}:latest", str(tmp_path / "bundle"))
    ours = Client(root).images.unpack("busybox", tmp_path / "ours")
    theirs = _tree(tmp_path / "bundle" / "rootfs")
    mine = _tree(ours)
    assert mine == theirs
    assert "opt/app/new" in mine and "opt/app/run.sh" not in mine and "etc/hello" not in mine


@pytest.mark.parametrize("transport", ["docker-archive", "oci-archive"])
def test_archives_skopeo_writes_load_with_the_same_diff_ids(saved, tmp_path, transport):
    _tool("skopeo")
    root, image_id, _archive, layout = saved
    out = tmp_path / "copy.tar"
    _run("skopeo", "copy", "-q", f"oci:{layout}:latest", f"{transport}:{out}:busybox:latest")
    (image,) = load(Store(tmp_path / "b"), str(out))
    assert image.tags == (TAG,)
    assert Store(tmp_path / "b").records.get(image.id).diff_ids == \
        Store(root).records.get(image_id).diff_ids
    system_check_clean(tmp_path / "b")


def test_skopeo_reads_our_archive_into_its_own_layout_and_we_load_it(saved, tmp_path):
    _tool("skopeo")
    root, image_id, archive, _layout = saved
    dest = tmp_path / "skopeo-layout"
    _run("skopeo", "copy", "-q", f"docker-archive:{archive}", f"oci:{dest}:busybox:latest")
    (image,) = load(Store(tmp_path / "b"), dest)
    assert Store(tmp_path / "b").records.get(image.id).diff_ids == \
        Store(root).records.get(image_id).diff_ids
    assert image.tags == (TAG,)  # ref name "busybox:latest" names a repository


def test_docker_archive_symlinked_legacy_layers_load(saved, tmp_path):
    """skopeo's docker-archive links <v1id>/layer.tar to ../<diffid>.tar; those links stay
    inside the archive and are followed, not extracted."""
    _tool("skopeo")
    _root, _image_id, _archive, layout = saved
    out = tmp_path / "copy.tar"
    _run("skopeo", "copy", "-q", f"oci:{layout}:latest", f"docker-archive:{out}:x:1")
    with tarfile.open(out) as tar:
        kinds = {m.type for m in tar}
    assert tarfile.SYMTYPE in kinds
    with open(out, "rb") as stream:
        (image,) = load(Store(tmp_path / "b"), io.BufferedReader(_Pipe(stream)))
    assert image.tags == ("docker.io/library/x:1",)


class _Pipe(io.RawIOBase):
    """A file that is not seekable, as stdin from a pipe."""

    def __init__(self, stream):
        self._stream = stream

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer) -> int:
        return self._stream.readinto(buffer)


def test_oci_dir_output_is_a_valid_layout(saved, tmp_path):
    _tool("oci-image-tool")
    _tool("skopeo")
    root, _image_id, _archive, layout = saved
    dest = tmp_path / "dir"
    save(Store(root), ["busybox"], format="oci-dir", dest_dir=dest)
    _run("oci-image-tool", "validate", "--type", "image", "--ref", "name=latest", str(dest))
    # oci-image-tool 1.0.0-rc1 predates the zstd layer type (image-spec 1.1): skopeo only
    save(Store(root), ["busybox"], format="oci-dir", dest_dir=tmp_path / "z",
         compression="zstd")
    for layout_dir in (dest, tmp_path / "z"):
        digest, _manifest = _index_manifest(layout_dir)
        inspected = json.loads(_run("skopeo", "inspect", f"oci:{layout_dir}:latest"))
        assert inspected["Digest"] == digest
