"""Config, manifest and index models: canonical bytes, round trips, docker names."""

from __future__ import annotations

import json

import pytest

from pybuild.errors import ImageError, UsageError
from pybuild.image import mediatypes as mt
from pybuild.image.canonical import canonical_json
from pybuild.image.changes import apply_changes
from pybuild.image.config import (
    ContainerConfig,
    HealthConfig,
    HistoryEntry,
    ImageConfig,
    parse_rfc3339,
    rfc3339,
)
from pybuild.image.manifest import Descriptor, Index, Manifest, Platform, build_manifest

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def test_canonical_json_is_sorted_and_compact():
    assert canonical_json({"b": 1, "a": [1, {"d": 2, "c": "é"}]}) == \
        '{"a":[1,{"c":"é","d":2}],"b":1}'.encode()


def test_config_round_trip_and_omitempty():
    config = ImageConfig(
        created="2024-01-01T00:00:00Z", author="me",
        config=ContainerConfig(user="1", env=("PATH=/bin",), cmd=("sh",), working_dir="/w",
                               exposed_ports=("80/tcp",), volumes=("/v",), labels={"a": "b"},
                               healthcheck=HealthConfig(("CMD", "true"), interval=10**9),
                               stop_signal="SIGTERM", shell=("/bin/sh", "-c")),
        diff_ids=(D1, D2), history=(HistoryEntry(created_by="x"),
                                    HistoryEntry(created_by="y", empty_layer=True)))
    raw = config.to_bytes()
    assert ImageConfig.from_bytes(raw) == config
    data = json.loads(raw)
    assert data["config"]["ExposedPorts"] == {"80/tcp": {}}
    assert data["rootfs"] == {"type": "layers", "diff_ids": [D1, D2]}
    assert "Entrypoint" not in data["config"] and "variant" not in data
    assert raw == canonical_json(data)


def test_foreign_fields_are_kept():
    raw = json.dumps({"architecture": "arm64", "os": "linux", "variant": "v8",
                      "docker_version": "24.0", "rootfs": {"type": "layers", "diff_ids": [D1]},
                      "config": {"Cmd": "sh"}}).encode()
    config = ImageConfig.from_bytes(raw)
    assert config.extra == {"docker_version": "24.0"} and config.config.cmd == ("sh",)
    assert config.to_json()["docker_version"] == "24.0"
    with pytest.raises(ImageError):
        ImageConfig.from_bytes(b"[1, 2]")


def test_rfc3339():
    assert rfc3339(0) == "1970-01-01T00:00:00Z"
    assert rfc3339(1.5) == "1970-01-01T00:00:01.5Z"
    assert parse_rfc3339("2024-01-02T03:04:05.123456789Z") == pytest.approx(1704164645.123456789)
    assert parse_rfc3339("2024-01-02T03:04:05+01:00") == 1704161045
    assert parse_rfc3339("garbage") is None and parse_rfc3339("") is None


def test_manifest_oci_and_docker():
    config = Descriptor(mt.OCI_CONFIG, D1, 10)
    layers = [Descriptor(mt.OCI_LAYER_GZIP, D2, 20)]
    oci = build_manifest(config, layers)
    docker = build_manifest(config, layers, docker=True)
    assert json.loads(oci.to_bytes())["mediaType"] == mt.OCI_MANIFEST
    assert docker.config.media_type == mt.DOCKER_CONFIG
    assert docker.layers[0].media_type == mt.DOCKER_LAYER_GZIP
    assert Manifest.from_bytes(docker.to_bytes()) == docker
    assert Manifest.from_bytes(oci.to_bytes()) == oci
    with pytest.raises(ImageError):
        Manifest.from_bytes(b'{"layers": []}')


def test_index_selects_platform():
    index = Index((Descriptor(mt.OCI_MANIFEST, D1, 1, platform=Platform("arm64", "linux", "v8")),
                   Descriptor(mt.OCI_MANIFEST, D2, 2, platform=Platform())))
    assert Index.from_bytes(index.to_bytes()) == index
    assert index.select().digest == D2
    assert index.select(Platform.parse("linux/arm64")).digest == D1
    with pytest.raises(ImageError):
        index.select(Platform.parse("windows/amd64"))
    with pytest.raises(ImageError):
        Platform.parse("linux")


def test_changes_shell_and_json_forms():
    c = apply_changes(ContainerConfig(), ["cmd echo hi", "VOLUME [\"/a\", \"/b\"]",
                                          "EXPOSE 8000-8002/udp", 'LABEL "x y"="z"'])
    assert c.cmd == ("/bin/sh", "-c", "echo hi")
    assert c.volumes == ("/a", "/b")
    assert c.exposed_ports == ("8000/udp", "8001/udp", "8002/udp")
    assert c.labels == {"x y": "z"}
    for bad in ("EXPOSE 70000", "ENV", "LABEL novalue", "FROM x", "HEALTHCHECK NONE"):
        with pytest.raises(UsageError):
            apply_changes(ContainerConfig(), [bad])
