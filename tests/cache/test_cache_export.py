"""``--cache-to type=local`` / ``--cache-from type=local``: a build in one store exports its
step cache as an OCI layout, and a second, empty store (with the same base imported) hits
the cache for every step and makes the same image."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess

import pytest
from support.build import BASE, pybuild_cmd
from support.cacheshare import (
    SAMPLE_STEPS,
    epoch_env,
    layer_steps,
    new_store,
    run,
    sample_context,
    steps_with,
)
from support.paths import REPO

from pybuild.cache.cacheformat import CONFIG_MEDIA_TYPE
from pybuild.cache.cachespec import parse_all
from pybuild.progress import BuildReplayed, BuildWarning, CacheMiss, StepCached
from pybuild.registry.events import RegistryStatus
from pybuild.runner.probe import probe as host_probe
from pybuild.store.images import resolve

pytestmark = pytest.mark.root


@pytest.fixture()
def sample(tmp_path):
    return sample_context(tmp_path / "ctx")


def test_second_store_hits_every_step_from_a_local_cache(tmp_path, sample, busybox_tar):
    a = new_store(tmp_path / "a", busybox_tar)
    b = new_store(tmp_path / "b", busybox_tar)
    assert resolve(a, BASE).id == resolve(b, BASE).id  # the same base: the keys can match
    dest = tmp_path / "cache"
    image_a, events_a = run(a, sample, cache_to=parse_all(f"type=local,dest={dest}", "to"))
    assert not steps_with(events_a, StepCached)  # A built everything
    said = [e.message for e in events_a if isinstance(e, RegistryStatus)]
    assert said[-1].startswith(f"exported cache to {dest}: {SAMPLE_STEPS} steps, manifest ")
    index = json.loads((dest / "index.json").read_text())
    (manifest_desc,) = index["manifests"]
    manifest = json.loads((dest / "blobs/sha256" / manifest_desc["digest"][7:]).read_text())
    assert manifest["config"]["mediaType"] == CONFIG_MEDIA_TYPE
    assert len(manifest["layers"]) == 5  # two COPYs, two RUNs, the WORKDIR that made a dir
    for desc in manifest["layers"]:
        assert desc["mediaType"].endswith("+gzip")

    # a second machine: another store, the context in another place
    ctx_b = tmp_path / "elsewhere"
    shutil.copytree(sample, ctx_b)
    image_b, events_b = run(b, ctx_b, cache_from=parse_all(f"type=local,src={dest}", "from"))
    steps = layer_steps(events_b)
    assert len(steps) == SAMPLE_STEPS
    assert steps_with(events_b, StepCached) == steps
    assert not steps_with(events_b, CacheMiss)
    assert image_b == image_a
    said = [e.message for e in events_b if isinstance(e, RegistryStatus)]
    assert said == [f"importing cache manifest from {dest}: {SAMPLE_STEPS} steps"]


def test_a_corrupt_blob_is_a_miss_and_keeps_nothing(tmp_path, sample, busybox_tar):
    a = new_store(tmp_path / "a", busybox_tar)
    dest = tmp_path / "cache"
    image_a, _ = run(a, sample, cache_to=parse_all(f"type=local,dest={dest}", "to"))
    manifest_desc = json.loads((dest / "index.json").read_text())["manifests"][0]
    manifest = json.loads((dest / "blobs/sha256" / manifest_desc["digest"][7:]).read_text())
    victim = dest / "blobs/sha256" / manifest["layers"][0]["digest"][7:]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.chmod(0o644)
    victim.write_bytes(bytes(data))

    b = new_store(tmp_path / "b", busybox_tar)
    before = set(b.blobs.digests())
    spec = parse_all(f"type=local,src={dest}", "from")
    image_b, events = run(b, sample, cache_from=spec)
    warnings = [e.message for e in events if isinstance(e, BuildWarning)]
    assert any("digest mismatch" in w for w in warnings), warnings
    assert steps_with(events, CacheMiss)  # that step ran (and so did those after it)
    assert image_b == image_a  # the build is reproducible, so the image is the same anyway
    assert not {d for d in set(b.blobs.digests()) - before} & {manifest["layers"][0]["digest"]}

    run(a, sample, cache_to=parse_all(f"type=local,dest={dest}", "to"))  # a new export mends it
    assert hashlib.sha256(victim.read_bytes()).hexdigest() == victim.name


def test_missing_cache_is_a_warning_and_the_build_goes_on(tmp_path, sample, busybox_tar):
    a = new_store(tmp_path / "a", busybox_tar)
    _, events = run(a, sample,
                    cache_from=parse_all(f"type=local,src={tmp_path / 'nothing'}", "from"))
    (warning,) = [e.message for e in events if isinstance(e, BuildWarning)]
    assert warning == (f"importing cache: {tmp_path / 'nothing'}: no index.json (nothing "
                       "exported there yet)")
    assert len(steps_with(events, CacheMiss)) == SAMPLE_STEPS


def test_mode_min_and_max_of_a_multi_stage_build(tmp_path, sample, busybox_tar):
    (sample / "Dockerfile").write_text(
        f"FROM {BASE} AS tool\nRUN echo tool > /tool\n"
        f"FROM {BASE}\nCOPY --from=tool /tool /tool\nRUN cat /tool > /copied\n")
    a = new_store(tmp_path / "a", busybox_tar)
    for mode in ("min", "max"):
        dest = tmp_path / mode
        run(a, sample, cache_to=parse_all(f"type=local,dest={dest},mode={mode}", "to"))
    counts = {}
    for mode in ("min", "max"):
        b = new_store(tmp_path / f"b-{mode}", busybox_tar)
        _, events = run(b, sample,
                        cache_from=parse_all(f"type=local,src={tmp_path / mode}", "from"))
        counts[mode] = len(steps_with(events, StepCached))
    # min: the final image's two steps; max: the tool stage's RUN too
    assert counts == {"min": 2, "max": 3}


def test_jdk_tomcat_example_through_the_cli(tmp_path, busybox_tar):
    """The README's sample build, store A -> a cache directory -> empty store B."""
    why = host_probe().reason_if_missing
    if why:
        pytest.skip(why)
    dest = tmp_path / "cache"
    ids = []
    for name, flag in (("a", f"--cache-to=type=local,dest={dest}"),
                       ("b", f"--cache-from=type=local,src={dest}")):
        cmd = pybuild_cmd(tmp_path / name)
        new_store(tmp_path / name, busybox_tar)
        iid = tmp_path / f"{name}.iid"
        res = subprocess.run([*cmd, "build", "--progress", "plain", flag, "--iidfile",
                              str(iid), str(REPO / "examples" / "jdk-tomcat")],
                             capture_output=True, text=True,
                             env=epoch_env())
        assert res.returncode == 0, res.stderr
        ids.append(iid.read_text())
        if name == "b":
            cached = [ln for ln in res.stderr.splitlines() if ln.endswith(" CACHED")]
            assert len(cached) == 4, res.stderr  # ADD, ADD, RUN, WORKDIR
            assert 'openjdk version' not in res.stderr  # the RUN did not run
    assert ids[0] == ids[1]


def test_library_takes_docker_py_names(tmp_path, sample, busybox_tar):
    from pybuild.client import Client

    dest = tmp_path / "cache"
    new_store(tmp_path / "a", busybox_tar)
    new_store(tmp_path / "b", busybox_tar)
    first = Client(tmp_path / "a").images.build(
        sample, source_date_epoch=1700000000, cache_to=f"type=local,dest={dest},mode=max")
    events: list = []
    second = Client(tmp_path / "b").images.build(
        sample, source_date_epoch=1700000000, cache_from=[f"type=local,src={dest}"],
        on_event=events.append)
    assert second.id == first.id
    assert steps_with(events, StepCached) == layer_steps(events)


@pytest.mark.parametrize("compression", ["zstd", "uncompressed"])
def test_other_compressions_and_a_second_source(tmp_path, sample, busybox_tar, compression):
    a = new_store(tmp_path / "a", busybox_tar)
    dest = tmp_path / "cache"
    image_a, _ = run(a, sample, cache_to=parse_all(
        f"type=local,dest={dest},compression={compression}", "to"))
    manifest_desc = json.loads((dest / "index.json").read_text())["manifests"][0]
    manifest = json.loads((dest / "blobs/sha256" / manifest_desc["digest"][7:]).read_text())
    suffix = {"zstd": "+zstd", "uncompressed": ".tar"}[compression]
    assert all(d["mediaType"].endswith(suffix) for d in manifest["layers"])
    b = new_store(tmp_path / "b", busybox_tar)
    sources = parse_all([f"type=local,src={tmp_path / 'empty'}", f"type=local,src={dest}"],
                        "from")
    image_b, events = run(b, sample, cache_from=sources)
    assert steps_with(events, StepCached) == layer_steps(events)
    assert image_b == image_a
    record = b.records.get(image_b)
    assert record.layers == a.records.get(image_a).layers  # diff ids and sizes


def test_an_unchanged_rebuild_still_exports(tmp_path, sample, busybox_tar):
    """The no-change answer would skip the steps; a build with --cache-to passes them, all
    cached, so the second cache has every step too."""
    a = new_store(tmp_path / "a", busybox_tar)
    run(a, sample, tags=("x/y",), cache_to=parse_all(f"type=local,dest={tmp_path / 'one'}",
                                                      "to"))
    run(a, sample, tags=("x/y",))  # recorded for the no-change answer
    _, events = run(a, sample, tags=("x/y",),
                    cache_to=parse_all(f"type=local,dest={tmp_path / 'two'}", "to"))
    assert not [e for e in events if isinstance(e, BuildReplayed)]
    assert steps_with(events, StepCached) == layer_steps(events)
    assert len(layer_steps(events)) == SAMPLE_STEPS
    said = [e.message for e in events if isinstance(e, RegistryStatus)]
    assert said[-1].startswith(f"exported cache to {tmp_path / 'two'}: {SAMPLE_STEPS} steps")
