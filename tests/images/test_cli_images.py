"""The image commands end to end: real processes, a real store under tmp_path."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pybuild.client import Client
from pybuild.image.reference import parse_normalized
from pybuild.store.images import set_repo_digest


def pb(root, *args, check=True, stdin=None):
    result = subprocess.run([sys.executable, "-m", "pybuild", "--root", str(root), *map(str, args)],
                            capture_output=True, text=True, stdin=stdin)
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def root(tmp_path, busybox_tar):
    root = tmp_path / "root"
    image_id = pb(root, "import", busybox_tar, "busybox", "-c", "CMD [\"sh\"]").stdout.strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71
    return root


def image_id(root, name="busybox"):
    return Client(root).images.get(name).id


def test_images_table(root):
    out = pb(root, "images").stdout.splitlines()
    assert out[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert out[0].index("TAG") == out[1].index("latest")
    repo, tag, short, *_rest = out[1].split()
    assert (repo, tag, short) == ("busybox", "latest", image_id(root)[7:19])
    assert out[1].endswith("MB")
    assert pb(root, "images", "-q").stdout == image_id(root)[7:19] + "\n"
    assert pb(root, "images", "-q", "--no-trunc").stdout == image_id(root) + "\n"


def test_images_format_and_digests(root):
    pb(root, "tag", "busybox", "localhost:5000/team/app:v2")
    digest = "sha256:" + "e" * 64
    set_repo_digest(Client(root).store, parse_normalized(f"localhost:5000/team/app@{digest}"),
                    image_id(root))
    lines = pb(root, "images", "--format", "json").stdout.splitlines()
    rows = {(r["Repository"], r["Tag"]): r for r in map(json.loads, lines)}
    assert set(rows) == {("busybox", "latest"), ("localhost:5000/team/app", "v2")}
    assert rows[("localhost:5000/team/app", "v2")]["Digest"] == digest
    assert rows[("busybox", "latest")]["Digest"] == "<none>"
    out = pb(root, "images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    assert sorted(out) == ["busybox:latest", "localhost:5000/team/app:v2"]
    table = pb(root, "images", "--digests").stdout.splitlines()
    assert "DIGEST" in table[0] and any(digest in line for line in table)
    assert pb(root, "images", "busybox", "-q").stdout.strip() == image_id(root)[7:19]


def test_tag_errors(root):
    bad = pb(root, "tag", "nothing", "x", check=False)
    assert bad.returncode == 1 and "No such image: nothing" in bad.stderr
    upper = pb(root, "tag", "busybox", "Busybox:1", check=False)
    assert upper.returncode == 1 and "must be lowercase" in upper.stderr
    digest = pb(root, "tag", "busybox", "x@sha256:" + "a" * 64, check=False)
    assert digest.returncode == 1 and "digest" in digest.stderr


def test_rmi(root):
    full = image_id(root)
    pb(root, "tag", "busybox", "other/name:1")
    pb(root, "tag", "busybox", "busybox:again")
    assert pb(root, "rmi", "busybox:again").stdout == "Untagged: busybox:again\n"
    conflict = pb(root, "rmi", full[7:15], check=False)
    assert conflict.returncode == 1 and "must be forced" in conflict.stderr
    out = pb(root, "rmi", "-f", full[7:15]).stdout.splitlines()
    assert out == ["Untagged: busybox:latest", "Untagged: other/name:1", f"Deleted: {full}"]
    assert pb(root, "images", "-qa").stdout == ""
    missing = pb(root, "rmi", "gone", check=False)
    assert missing.returncode == 1 and "No such image: gone" in missing.stderr


def test_rmi_last_tag_deletes_and_others_continue(root):
    full = image_id(root)
    result = pb(root, "rmi", "nope", "busybox", check=False)
    assert result.returncode == 1
    assert result.stdout.splitlines() == ["Untagged: busybox:latest", f"Deleted: {full}"]


def test_inspect(root):
    [data] = json.loads(pb(root, "inspect", "busybox").stdout)
    assert data["Id"] == image_id(root)
    assert data["RepoTags"] == ["busybox:latest"] and data["RepoDigests"] == []
    assert data["Config"]["Cmd"] == ["sh"] and data["Config"]["Env"] is None
    assert data["RootFS"]["Type"] == "layers" and len(data["RootFS"]["Layers"]) == 1
    assert (data["Architecture"], data["Os"]) == ("amd64", "linux")
    assert data["Size"] > 1_000_000
    for key in ("Parent", "Comment", "Created", "Author", "Metadata"):
        assert key in data
    out = pb(root, "inspect", "-f", "{{.Os}}/{{.Architecture}} {{json .Config.Cmd}}", "busybox")
    assert out.stdout == 'linux/amd64 ["sh"]\n'
    missing = pb(root, "inspect", "busybox", "nope", check=False)
    assert missing.returncode == 1 and len(json.loads(missing.stdout)) == 1
    assert "No such image: nope" in missing.stderr
    assert json.loads(pb(root, "image", "inspect", "--format", "json", "busybox").stdout)


def test_history(root):
    out = pb(root, "history", "busybox").stdout.splitlines()
    assert out[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    assert out[1].startswith(image_id(root)[7:19])
    assert "Imported from /" in out[1]
    assert pb(root, "history", "-q", "busybox").stdout == image_id(root)[7:19] + "\n"
    assert pb(root, "history", "-q", "--no-trunc", "busybox").stdout == image_id(root) + "\n"
    row = json.loads(pb(root, "history", "--format", "json", "busybox").stdout)
    assert row["Size"].endswith("MB") and row["CreatedBy"] == ""


def test_image_group_aliases(root):
    assert "busybox" in pb(root, "image", "ls").stdout
    pb(root, "image", "tag", "busybox", "b2")
    assert pb(root, "image", "rm", "b2").stdout == "Untagged: b2:latest\n"
    assert "IMAGE" in pb(root, "image", "history", "busybox").stdout


def test_prune_and_df(root, busybox_tar):
    dangling = pb(root, "import", busybox_tar, "-c", "USER 1").stdout.strip()
    df = pb(root, "system", "df").stdout.splitlines()
    assert df[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    assert df[1].split()[:3] == ["Images", "2", "1"]
    assert any(line.startswith("Unpacked layers") for line in df)
    out = pb(root, "image", "prune", "-f").stdout
    assert f"deleted: {dangling}" in out and "Total reclaimed space:" in out
    assert pb(root, "images", "-qa").stdout.strip() == image_id(root)[7:19]
    out = pb(root, "image", "prune", "-a", "-f").stdout
    assert "deleted:" in out
    assert pb(root, "images", "-qa").stdout == ""
    store = Client(root).store
    assert list(store.blobs.digests()) == [] and store.layers.chains() == []


def test_system_prune_keeps_referenced(root):
    store = Client(root).store
    junk = store.blobs.put_bytes(b"nobody references this")
    before = set(store.blobs.digests())
    out = pb(root, "system", "prune", "-f").stdout
    assert junk.digest in out
    assert set(store.blobs.digests()) == before - {junk.digest}
    assert pb(root, "system", "check").returncode == 0
    assert Client(root).images.get("busybox")


def test_check_reports_and_repairs(root):
    store = Client(root).store
    record = store.records.get(image_id(root))
    layer = store.blobs.path(record.diff_ids[0])
    os.chmod(layer, 0o644)
    with open(layer, "r+b") as f:
        f.seek(1000)
        f.write(b"X")
    (store.tmp / "blob-leftover").write_bytes(b"half")
    bad = pb(root, "system", "check", check=False)
    assert bad.returncode == 1
    lines = bad.stdout.splitlines()
    assert any(line.startswith(f"blob {record.diff_ids[0]}") for line in lines)
    assert any(line.startswith(f"image {record.id}") for line in lines)
    assert any(line.startswith("ref docker.io/library/busybox:latest") for line in lines)
    assert not any("leftover" in line for line in lines)  # temp files are not corruption
    repaired = pb(root, "system", "check", "--repair")
    assert repaired.returncode == 0 and "removed: " in repaired.stdout
    assert pb(root, "system", "check").stdout == ""
    assert not (store.tmp / "blob-leftover").exists()
    assert pb(root, "images", "-qa").stdout == ""


def test_image_unpack_and_root_from_environment(root, tmp_path):
    dest = tmp_path / "rootfs"
    env = {**os.environ, "PYBUILD_ROOT": str(root)}
    subprocess.run([sys.executable, "-m", "pybuild", "image", "unpack", "busybox", str(dest)],
                   env=env, check=True, capture_output=True)
    assert (dest / "bin" / "busybox").is_file() and (dest / "etc" / "passwd").is_file()
    again = subprocess.run([sys.executable, "-m", "pybuild", "image", "unpack", "busybox",
                            str(dest)], env=env, capture_output=True, text=True)
    assert again.returncode == 2 and "not an empty directory" in again.stderr


def test_df_json_and_image_import_alias(root, busybox_tar):
    pb(root, "image", "import", busybox_tar, "again:1", "-m", "second")
    rows = [json.loads(line) for line in pb(root, "system", "df", "--format", "json")
            .stdout.splitlines()]
    kinds = {row["Type"]: row for row in rows}
    assert kinds["Images"]["TotalCount"] == "2" and kinds["Images"]["Active"] == "2"
    assert kinds["Unpacked layers"]["TotalCount"] == "1"  # one layer, shared
    assert set(kinds) >= {"Images", "Unpacked layers", "Blobs"}
