"""``--cache-to type=registry`` / ``--cache-from``: the step cache pushed to a real registry
(docker-registry 2.8 on 127.0.0.1) by one store and used by a second, empty one."""

from __future__ import annotations

import json
import random
import shutil
import subprocess

import pytest
from support.build import pybuild_cmd
from support.cacheshare import SAMPLE_STEPS, epoch_env, layer_steps, new_store, run, steps_with
from support.paths import REPO

from pybuild.cache.cacheformat import CONFIG_MEDIA_TYPE
from pybuild.cache.cachespec import parse_all
from pybuild.errors import BuildError
from pybuild.progress import BuildWarning, CacheMiss, StepCached
from pybuild.runner.probe import probe as host_probe

pytestmark = [pytest.mark.root, pytest.mark.oracle]


@pytest.fixture()
def sample(tmp_path):
    from support.cacheshare import sample_context

    return sample_context(tmp_path / "context")


def skopeo_raw(ref: str) -> dict:
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed")
    res = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_registry_cache_gives_a_second_store_every_step(tmp_path, sample, busybox_tar,
                                                        registry):
    ref = f"{registry.host}/team/app:cache"
    a = new_store(tmp_path / "a", busybox_tar)
    image_a, _ = run(a, sample, cache_to=parse_all(f"type=registry,ref={ref}", "to"))
    manifest = skopeo_raw(ref)  # the oracle reads what the registry holds
    assert manifest["config"]["mediaType"] == CONFIG_MEDIA_TYPE
    assert len(manifest["layers"]) == SAMPLE_STEPS

    b = new_store(tmp_path / "b", busybox_tar)
    image_b, events = run(b, sample, cache_from=parse_all(ref, "from"))  # buildx's bare REF
    assert steps_with(events, StepCached) == layer_steps(events)
    assert len(layer_steps(events)) == SAMPLE_STEPS
    assert not steps_with(events, CacheMiss)
    assert image_b == image_a


def test_a_second_export_uploads_no_blob_again(tmp_path, sample, busybox_tar, registry):
    ref = f"{registry.host}/team/again:cache"
    a = new_store(tmp_path / "a", busybox_tar)
    spec = parse_all(f"type=registry,ref={ref},mode=max", "to")
    run(a, sample, cache_to=spec)
    first = skopeo_raw(ref)
    uploads = registry.log.read_text(errors="replace").count('"PUT /v2/team/again/blobs/')
    run(a, sample, cache_to=spec, no_cache=True)  # every step again, same layers
    assert skopeo_raw(ref) == first
    assert registry.log.read_text(errors="replace").count(
        '"PUT /v2/team/again/blobs/') == uploads


def test_missing_tag_warns_and_builds(tmp_path, sample, busybox_tar, registry):
    a = new_store(tmp_path / "a", busybox_tar)
    _, events = run(a, sample, cache_from=parse_all(
        f"type=registry,ref={registry.host}/team/none:cache", "from"))
    (warning,) = [e.message for e in events if isinstance(e, BuildWarning)]
    assert warning.startswith(f"importing cache: {registry.host}/team/none:cache: ")
    assert len(steps_with(events, CacheMiss)) == SAMPLE_STEPS


def test_corrupt_layer_on_the_registry_is_a_miss(tmp_path, sample, busybox_tar, registry):
    ref = f"{registry.host}/team/bad:cache"
    a = new_store(tmp_path / "a", busybox_tar)
    image_a, _ = run(a, sample, cache_to=parse_all(f"type=registry,ref={ref}", "to"))
    victim = skopeo_raw(ref)["layers"][0]["digest"]
    path = registry.blob_path(victim)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    b = new_store(tmp_path / "b", busybox_tar)
    image_b, events = run(b, sample, cache_from=parse_all(ref, "from"))
    warnings = [e.message for e in events if isinstance(e, BuildWarning)]
    assert any("digest mismatch" in w for w in warnings), warnings
    assert steps_with(events, CacheMiss)
    assert image_b == image_a
    assert victim not in set(b.blobs.digests())


def test_unreachable_registry_fails_the_export(tmp_path, sample, busybox_tar):
    a = new_store(tmp_path / "a", busybox_tar)
    refused = r"^exporting cache: 127\.0\.0\.1:9/x[:@].*connection refused"
    with pytest.raises(BuildError, match=refused):
        run(a, sample, cache_to=parse_all("type=registry,ref=127.0.0.1:9/x:c", "to"))
    _, events = run(a, sample, cache_to=parse_all(
        "type=registry,ref=127.0.0.1:9/x:c,ignore-error=true", "to"))
    assert any(isinstance(e, BuildWarning) and "exporting cache" in e.message for e in events)


def test_jdk_tomcat_example_through_a_registry(tmp_path, busybox_tar, registry):
    """The check of issue #12: --cache-from on a second, empty store hits every step of the
    sample build (the README's examples/jdk-tomcat), through the CLI."""
    why = host_probe().reason_if_missing
    if why:
        pytest.skip(why)
    ref = f"{registry.host}/ci/jdk-tomcat:buildcache"
    ids = []
    for name, flag in (("a", f"--cache-to=type=registry,ref={ref},mode=max"),
                       ("b", f"--cache-from={ref}")):
        new_store(tmp_path / name, busybox_tar)
        iid = tmp_path / f"{name}.iid"
        res = subprocess.run([*pybuild_cmd(tmp_path / name), "build", "--progress", "plain",
                              flag, "--iidfile", str(iid), str(REPO / "examples/jdk-tomcat")],
                             capture_output=True, text=True, env=epoch_env(), timeout=600)
        assert res.returncode == 0, res.stderr
        ids.append(iid.read_text())
    cached = [line for line in res.stderr.splitlines() if line.endswith(" CACHED")]
    assert len(cached) == 4, res.stderr  # ADD, ADD, RUN, WORKDIR
    assert "openjdk version" not in res.stderr  # the RUN did not run again
    assert ids[0] == ids[1]


def test_registry_killed_mid_export_then_the_next_export_completes(tmp_path, sample,
                                                                   busybox_tar):
    """The tag is written last: a cut export leaves no tag naming half a cache, and the next
    export, the registry back, completes it (each blob sent whole or not at all)."""
    from support.registry import serve

    from pybuild.build import BuildOptions, build
    from pybuild.registry.events import BlobProgress

    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed")
    (sample / "big.bin").write_bytes(random.Random(12).randbytes(9 << 20))  # does not shrink
    (sample / "Dockerfile").write_text((sample / "Dockerfile").read_text()
                                       + "COPY big.bin /big.bin\n")
    a = new_store(tmp_path / "a", busybox_tar)
    with serve(tmp_path / "reg") as reg:
        ref = f"{reg.host}/team/cut:cache"
        options = BuildOptions(context=str(sample), source_date_epoch=1700000000,
                               cache_to=parse_all(f"type=registry,ref={ref}", "to"))

        def kill_on_upload(event):
            if isinstance(event, BlobProgress) and event.status == "Pushing":
                reg.kill()

        with pytest.raises(BuildError, match="^exporting cache: "):
            build(a, options, kill_on_upload)
        reg.start()
        res = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                              f"docker://{ref}"], capture_output=True, text=True, timeout=60)
        assert res.returncode != 0 and "manifest unknown" in res.stderr
        image_a, _ = run(a, sample, cache_to=options.cache_to)
        assert len(skopeo_raw(ref)["layers"]) == SAMPLE_STEPS + 1
        b = new_store(tmp_path / "b", busybox_tar)
        image_b, events = run(b, sample, cache_from=parse_all(ref, "from"))
        assert steps_with(events, StepCached) == layer_steps(events)
        assert image_b == image_a
