"""``import``: rootfs tarballs in every compression become the same normalised layer."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import subprocess
import sys
import tarfile

import pytest
import zstandard

from pybuild.client import Client
from pybuild.errors import PybuildError, UsageError
from pybuild.store.check import check

COMPRESSORS = {
    "plain": lambda data: data,
    "gzip": gzip.compress,
    "xz": lzma.compress,
    "bzip2": bz2.compress,
    "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
}


@pytest.fixture(scope="module")
def plain_id(busybox_tar, tmp_path_factory):
    client = Client(tmp_path_factory.mktemp("ref") / "root")
    return client.images.import_(busybox_tar, "ref").layers[0]


@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
def test_every_compression_gives_one_layer(kind, busybox_tar, tmp_path, plain_id):
    src = tmp_path / f"rootfs.{kind}"
    src.write_bytes(COMPRESSORS[kind](busybox_tar.read_bytes()))
    client = Client(tmp_path / "root")
    image = client.images.import_(src, "bb")
    assert image.layers == (plain_id,)
    assert image.tags == ("bb:latest",)
    assert check(client.store) == []


def test_import_config_changes_and_message(busybox_tar, tmp_path):
    client = Client(tmp_path / "root")
    image = client.images.import_(busybox_tar, "localhost/bb:1", message="from test", changes=[
        'CMD ["sh", "-c", "echo hi"]', "ENV A=1 B='two words'", "ENV A 3",
        "EXPOSE 80 53/udp", "LABEL org.example=yes", "WORKDIR /srv", "WORKDIR app",
        "USER nobody", "VOLUME /data", "ENTRYPOINT /bin/echo", "ONBUILD RUN true"])
    c = image.config.config
    assert c.cmd == ("sh", "-c", "echo hi")
    assert c.entrypoint == ("/bin/sh", "-c", "/bin/echo")
    assert c.env == ("A=3", "B=two words")
    assert c.exposed_ports == ("53/udp", "80/tcp")
    assert c.labels == {"org.example": "yes"}
    assert c.working_dir == "/srv/app" and c.user == "nobody" and c.volumes == ("/data",)
    assert c.on_build == ("RUN true",)
    assert image.config.history[0].comment == "from test"
    assert image.config.architecture == "amd64" and image.config.os == "linux"
    assert client.images.inspect("localhost/bb:1")["Comment"] == "from test"


def test_bad_change_is_refused_before_anything_is_stored(busybox_tar, tmp_path):
    client = Client(tmp_path / "root")
    with pytest.raises(UsageError, match="not a valid change"):
        client.images.import_(busybox_tar, "x", changes=["RUN rm -rf /"])
    with pytest.raises(PybuildError, match="digest"):
        client.images.import_(busybox_tar, "x@sha256:" + "a" * 64)
    with pytest.raises(PybuildError, match="lowercase"):
        client.images.import_(busybox_tar, "Upper")
    assert list(client.store.blobs.digests()) == []


def test_import_adopts_the_unpacked_layer(busybox_tar, tmp_path):
    client = Client(tmp_path / "root")
    image = client.images.import_(busybox_tar)
    assert image.tags == ()  # no name: a dangling image, as docker import without a name
    [lower] = client.store.layers.ensure(image.layers)
    assert (lower / "bin" / "busybox").is_file()
    assert os.readlink(lower / "bin" / "sh") == "/bin/busybox"
    assert os.listdir(client.store.tmp) == []


def test_unsafe_tarball_is_refused(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("../escape")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    src = tmp_path / "evil.tar"
    src.write_bytes(buf.getvalue())
    client = Client(tmp_path / "root")
    with pytest.raises(PybuildError):
        client.images.import_(src, "evil")
    assert not (tmp_path / "escape").exists()
    assert client.images.list() == []
    assert os.listdir(client.store.tmp) == []


def test_import_from_stdin_prints_the_id(busybox_tar, tmp_path):
    root = tmp_path / "root"
    with open(busybox_tar, "rb") as stdin:
        out = subprocess.run([sys.executable, "-m", "pybuild", "--root", str(root), "import", "-",
                              "stdin/image:v1", "--change", "USER 1000"],
                             stdin=stdin, capture_output=True, text=True, check=True).stdout
    image = Client(root).images.get("stdin/image:v1")
    assert out == image.id + "\n"
    assert image.config.history[0].comment == "Imported from -"
    assert image.config.config.user == "1000"


def test_unpack_flattens_and_refuses_non_empty(busybox_tar, tmp_path):
    client = Client(tmp_path / "root")
    client.images.import_(busybox_tar, "bb")
    dest = client.images.unpack("bb", tmp_path / "out")
    assert (dest / "bin" / "busybox").is_file()
    assert oct((dest / "tmp").stat().st_mode & 0o7777) == "0o1777"
    with pytest.raises(UsageError, match="not an empty directory"):
        client.images.unpack("bb", dest)
