"""``pybuild rmi`` of an image a container uses, end to end: real processes on a store under
tmp_path; the container's claim is its gc root ``container-<id>``, as containers.create writes."""

from __future__ import annotations

import io
import subprocess
import tarfile

import pytest
from support.archive import pybuild_argv

from pybuild.image.reference import parse_normalized
from pybuild.store import Store
from pybuild.store.images import set_repo_digest

CTR = "5eed" * 16


def pb(root, *args):
    return subprocess.run(pybuild_argv(root, *args), capture_output=True, text=True)


@pytest.fixture
def used(tmp_path):
    """(root, image id) of an image named app:latest and app:v1, in use by container CTR."""
    tar = tmp_path / "rootfs.tar"
    with tarfile.open(tar, "w") as out:
        info = tarfile.TarInfo("hello")
        info.size = 3
        out.addfile(info, io.BytesIO(b"hi\n"))
    root = tmp_path / "pb-rmi-root"
    made = pb(root, "import", tar, "app")
    assert made.returncode == 0, made.stderr
    image_id = made.stdout.strip()
    assert pb(root, "tag", "app", "app:v1").returncode == 0
    Store(root).set_gc_root(f"container-{CTR}", blobs=[image_id])
    return root, image_id


def images(root) -> list[str]:
    return pb(root, "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").stdout.splitlines()


def test_rmi_by_id_in_use_fails_with_one_line(used):
    root, image_id = used
    result = pb(root, "rmi", image_id[7:19])
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == (f"error: conflict: unable to delete {image_id[7:19]} (must be "
                             f"forced) - image is being used by stopped container {CTR[:12]}\n")
    assert sorted(images(root)) == [f"app:latest {image_id[7:19]}", f"app:v1 {image_id[7:19]}"]


def test_rmi_by_name_in_use_untags_until_the_last(used):
    root, image_id = used
    assert pb(root, "rmi", "app:v1").stdout == "Untagged: app:v1\n"
    last = pb(root, "rmi", "app")
    assert last.returncode == 1 and last.stderr.count("\n") == 1
    assert 'unable to remove repository reference "app" (must force)' in last.stderr
    assert images(root) == [f"app:latest {image_id[7:19]}"]


def test_rmi_forced_by_id_in_use_untags_each_name_once_and_keeps_the_image(used):
    root, image_id = used
    digest = "sha256:" + "a" * 64
    set_repo_digest(Store(root), parse_normalized(f"app@{digest}"), image_id)
    result = pb(root, "rmi", "-f", image_id[7:19])
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"Untagged: app:latest\nUntagged: app:v1\nUntagged: app@{digest}\n"
    assert images(root) == [f"<none>:<none> {image_id[7:19]}"]
