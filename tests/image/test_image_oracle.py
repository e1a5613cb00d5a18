"""Reference tools read what the store writes: skopeo inspects it, umoci unpacks it the same."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from pybuild.client import Client
from pybuild.image import mediatypes as mt

pytestmark = pytest.mark.oracle


def oci_layout(client: Client, name: str, dest: Path) -> Path:
    """A minimal OCI layout from the store's blobs (pybuild.archive writes real ones)."""
    image = client.images.get(name)
    dest.mkdir()
    (dest / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (dest / "blobs" / "sha256").mkdir(parents=True)
    for digest in (image.id, image.manifest_digest, *image.layers):
        shutil.copy(client.store.blobs.path(digest), dest / "blobs" / "sha256" / digest[7:])
    size = client.store.blobs.size(image.manifest_digest)
    index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [
        {"mediaType": mt.OCI_MANIFEST, "digest": image.manifest_digest, "size": size,
         "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}
    (dest / "index.json").write_text(json.dumps(index))
    return dest


def tree(root: Path) -> dict[str, tuple]:
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(dirpath, name)
            st = os.lstat(path)
            kind = stat.S_IFMT(st.st_mode)
            extra = os.readlink(path) if stat.S_ISLNK(st.st_mode) else (
                path.read_bytes() if stat.S_ISREG(st.st_mode) else None)
            out[str(path.relative_to(root))] = (kind, stat.S_IMODE(st.st_mode), st.st_uid,
                                                st.st_gid, extra)
    return out


@pytest.fixture
def client(tmp_path, busybox_tar):
    client = Client(tmp_path / "root")
    client.images.import_(busybox_tar, "bb", changes=['CMD ["sh"]', "ENV A=1"])
    return client


def test_skopeo_reads_manifest_and_config(client, tmp_path):
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed")
    layout = oci_layout(client, "bb", tmp_path / "layout")
    out = subprocess.run(["skopeo", "inspect", "--config", f"oci:{layout}:latest"],
                         capture_output=True, text=True, check=True).stdout
    config = json.loads(out)
    assert config["config"]["Cmd"] == ["sh"] and config["config"]["Env"] == ["A=1"]
    raw = subprocess.run(["skopeo", "inspect", "--raw", f"oci:{layout}:latest"],
                         capture_output=True, check=True).stdout
    assert raw == client.store.blobs.read_bytes(client.images.get("bb").manifest_digest)


def test_unpack_matches_umoci(client, tmp_path):
    if shutil.which("umoci") is None:
        pytest.skip("umoci is not installed")
    layout = oci_layout(client, "bb", tmp_path / "layout")
    bundle = tmp_path / "bundle"
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:latest", str(bundle)],
                   capture_output=True, check=True)
    ours = client.images.unpack("bb", tmp_path / "ours")
    assert tree(ours) == tree(bundle / "rootfs")
