"""``Client.images.build``: every option the CLI's build has, under docker-py's names; an Image
back; a failed RUN raised as a BuildError that says which step, its exit status and its log."""

from __future__ import annotations

import typing

import pytest
from support.build import new_store, probe

from pybuild.client import Client, Image, build_options
from pybuild.errors import BuildError, UsageError
from pybuild.progress import BuildDone, Event, StepStarted
from pybuild.runner.probe import probe as host_probe

BASE = "localhost/bench/busybox:latest"


@pytest.fixture()
def client(tmp_path, busybox_tar):
    if why := host_probe().reason_if_missing:
        pytest.skip(why)
    return Client(new_store(tmp_path / "root", busybox_tar).root)


def context(tmp_path, text: str):
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(text)
    return ctx


@pytest.mark.root
def test_every_option_reaches_the_image(client, tmp_path):
    ctx = context(tmp_path, f"FROM {BASE} AS base\nARG V\nRUN echo \"$V\" > /v\n"
                            f"FROM base AS app\nRUN echo app > /app\n"
                            "FROM scratch AS never\nCOPY nothing /\n")
    (tmp_path / "tok").write_text("s3cret")
    events: list = []
    image = client.images.build(
        ctx, tag=["lib/x", "lib/y:2"], buildargs={"V": "seven"}, target="app",
        labels={"made.by": "lib"}, platform="linux/amd64", network_mode="none",
        source_date_epoch=86400, no_cache_filter=["APP"], secrets={"tok": str(tmp_path / "tok")},
        on_event=events.append)
    assert isinstance(image, Image)
    assert image.tags == ("lib/x:latest", "lib/y:2") and image.labels == {"made.by": "lib"}
    assert image.created == "1970-01-02T00:00:00Z"
    assert probe(client.store, image.id, "cat /v /app") == "seven\napp\n"
    assert isinstance(events[-1], BuildDone) and events[-1].image_id == image.id
    again = client.images.build(ctx, tag="lib/x", buildargs={"V": "seven"}, target="app",
                                source_date_epoch=86400, labels={"made.by": "lib"},
                                no_cache_filter=["app"])
    assert again.id == image.id  # the filtered stage ran again and gave the same layer


@pytest.mark.root
def test_failed_run_raises_build_error_with_step_code_and_log(client, tmp_path):
    ctx = context(tmp_path, f"FROM {BASE}\nRUN echo one; echo two >&2; exit 3\n")
    with pytest.raises(BuildError) as info:
        client.images.build(ctx, tag="lib/fails")
    err = info.value
    assert err.step == "RUN echo one; echo two >&2; exit 3"
    assert err.returncode == 3 and err.exit_code == 1  # the CLI still exits 1, as docker does
    assert set(err.log_tail) == {"one", "two"}
    assert "did not complete successfully: exit code: 3" in str(err)


@pytest.mark.root
def test_a_step_without_a_process_has_no_exit_status(client, tmp_path):
    ctx = context(tmp_path, f"FROM {BASE}\nCOPY absent /absent\n")
    with pytest.raises(BuildError) as info:
        client.images.build(ctx)
    assert info.value.step == "COPY absent /absent" and info.value.returncode is None


@pytest.mark.root
def test_build_iter_yields_typed_events(client, tmp_path):
    ctx = context(tmp_path, f"FROM {BASE}\nRUN echo hi\n")
    events = list(client.images.build_iter(ctx, tag="lib/iter"))
    kinds = typing.get_args(Event)
    assert all(isinstance(e, kinds) for e in events)
    assert [e.text for e in events if isinstance(e, StepStarted)] == [f"FROM {BASE}",
                                                                      "RUN echo hi"]
    assert events[-1].image_id == client.images.get("lib/iter").id
    with pytest.raises(BuildError) as info:
        list(client.images.build_iter(context(tmp_path, f"FROM {BASE}\nRUN exit 4\n")))
    assert info.value.returncode == 4


def test_options_under_docker_py_names():
    options = build_options("ctx", dockerfile="ctx/Other", tag="a", buildargs={"X": None},
                            nocache=True, network_mode="host", no_cache_filter=("Build",),
                            source_date_epoch=5)
    assert (options.context, options.dockerfile, options.tags) == ("ctx", "ctx/Other", ("a",))
    assert options.build_args == {"X": None} and options.no_cache
    assert options.network == "host" and options.no_cache_filter == ("build",)
    assert options.source_date_epoch == 5
    assert build_options("ctx").network == "default"


def test_sde_from_the_environment_unless_given(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "42")
    assert build_options("ctx").source_date_epoch == 42
    assert build_options("ctx", source_date_epoch=7).source_date_epoch == 7


def test_unknown_option_and_bad_network_are_refused(tmp_path):
    with pytest.raises(TypeError, match="tags"):
        build_options("ctx", tags=["x"])  # type: ignore[call-arg]
    client = Client(tmp_path / "root")
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    with pytest.raises(UsageError, match="network 'bridge'"):
        client.images.build(tmp_path, network_mode="bridge")


@pytest.mark.root
def test_output_writes_the_image_as_an_archive(client, tmp_path):
    import json
    import tarfile

    dest = tmp_path / "out" / "app.tar"
    image = client.images.build(context(tmp_path, f"FROM {BASE}\nRUN echo o > /o\n"),
                                tag="lib/out", output=dest, output_compression="none")
    with tarfile.open(dest) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
    assert manifest[0]["RepoTags"] == ["lib/out:latest"]
    assert manifest[0]["Config"].split("/")[-1].split(".")[0] in image.id
