"""A missing image is pulled where docker pulls it: ``run`` and ``create`` (``--pull``), a
build's FROM, and the library's ``containers.run``, from a real registry on 127.0.0.1."""

from __future__ import annotations

import subprocess

import pytest
from support.build import BASE, pybuild_cmd, sandbox_store

import pybuild

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def source(tmp_path_factory, busybox_tar):
    """The store images are pushed from."""
    return sandbox_store(tmp_path_factory, busybox_tar, "obtain-source")


@pytest.fixture
def empty(tmp_path):
    """A store without any image, its containers removed at the end."""
    root = tmp_path / "root"
    yield root
    ids = subprocess.run([*pybuild_cmd(root), "ps", "-a", "-q"], capture_output=True,
                         text=True).stdout.split()
    if ids:
        subprocess.run([*pybuild_cmd(root), "rm", "-f", *ids], capture_output=True)


def run(root, *args: str, check: bool = True, stdin: str | None = None):
    res = subprocess.run([*pybuild_cmd(root), *args], capture_output=True, text=True,
                         timeout=120, input=stdin)
    if check and res.returncode:
        raise AssertionError(f"pybuild {' '.join(args)}: {res.returncode} {res.stderr}")
    return res


def published(source, registry, name: str, marker: str | None = None) -> str:
    """``BASE`` (with a file /marker saying ``marker`` when given) pushed as ``name``."""
    ref = f"{registry.host}/{name}"
    if marker is None:
        run(source.root, "tag", BASE, ref)
    else:
        ctx = source.root.parent / f"ctx-{marker}"
        ctx.mkdir(exist_ok=True)
        (ctx / "Dockerfile").write_text(f"FROM {BASE}\nRUN echo {marker} > /marker\n")
        run(source.root, "build", "-q", "-t", ref, str(ctx))
    run(source.root, "push", "-q", ref)
    return ref


def test_run_pulls_a_missing_image_and_keeps_stdout_the_containers(source, registry, empty):
    ref = published(source, registry, "obtain/run:1")
    res = run(empty, "run", "--rm", "--network", "none", ref, "echo", "ran")
    assert res.stdout == "ran\n"
    assert f"Unable to find image '{ref}' locally" in res.stderr
    assert "Status: Downloaded newer image for" in res.stderr
    again = run(empty, "run", "--rm", "--network", "none", ref, "echo", "ran")
    assert again.stdout == "ran\n" and "Unable to find" not in again.stderr


def test_pull_policies_of_run_and_create(source, registry, empty):
    ref = published(source, registry, "obtain/policy:1", marker="one")
    never = run(empty, "create", "--pull", "never", ref, "true", check=False)
    assert never.returncode == 1 and f"No such image: {ref}" in never.stderr
    assert run(empty, "ps", "-a", "-q").stdout == ""
    run(empty, "create", ref, "true")  # missing: pulled
    assert run(empty, "run", "--rm", "--network", "none", ref, "cat", "/marker").stdout == \
        "one\n"
    published(source, registry, "obtain/policy:1", marker="two")  # the tag moves on
    stale = run(empty, "run", "--rm", "--network", "none", ref, "cat", "/marker")
    assert stale.stdout == "one\n"  # missing: the store's copy is used
    fresh = run(empty, "run", "--rm", "--pull", "always", "--network", "none", ref, "cat",
                "/marker")
    assert fresh.stdout == "two\n"
    bad = run(empty, "run", "--pull", "sometimes", ref, "true", check=False)
    assert bad.returncode == 2 and "sometimes" in bad.stderr


def test_a_tag_the_registry_lacks_is_one_line_after_dockers_notice(registry, empty):
    res = run(empty, "run", "--rm", f"{registry.host}/obtain/none:1", "true", check=False)
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert lines[0] == f"Unable to find image '{registry.host}/obtain/none:1' locally"
    assert len(lines) == 2 and "manifest unknown" in lines[1]
    assert run(empty, "ps", "-a", "-q").stdout == ""


def test_a_builds_from_pulls_its_base(source, registry, empty, tmp_path):
    ref = published(source, registry, "obtain/base:1", marker="base")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {ref}\nRUN cat /marker > /copied\n")
    res = run(empty, "build", "-t", "built", "--progress", "plain", str(ctx))
    assert "Pull complete" in res.stderr + res.stdout
    out = run(empty, "run", "--rm", "--network", "none", "built", "cat", "/copied")
    assert out.stdout == "base\n"


def test_the_librarys_containers_run_pulls_what_is_missing(source, registry, empty):
    ref = published(source, registry, "obtain/lib:1")
    client = pybuild.Client(empty)
    out = client.containers.run(ref, ["echo", "lib"], network_mode="none", remove=True)
    assert out == b"lib\n"
    assert ref in client.images.get(ref).tags


def test_build_pull_asks_the_registry_for_a_base_the_store_has(source, registry, empty,
                                                                tmp_path):
    ref = published(source, registry, "obtain/moving:1", marker="old")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {ref}\nRUN cat /marker > /seen\n")
    show = ("run", "--rm", "--network", "none", "seen", "cat", "/seen")
    run(empty, "build", "-q", "-t", "seen", str(ctx))
    assert run(empty, *show).stdout == "old\n"
    published(source, registry, "obtain/moving:1", marker="new")
    run(empty, "build", "-q", "-t", "seen", str(ctx))  # the store's base: no registry asked
    assert run(empty, *show).stdout == "old\n"
    run(empty, "build", "-q", "--pull", "-t", "seen", str(ctx))
    assert run(empty, *show).stdout == "new\n"


def test_build_push_sends_every_tag(source, registry, empty, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {BASE}\nRUN echo pushed > /p\n")
    tags = [f"{registry.host}/obtain/built:{t}" for t in ("1", "latest")]
    iid = tmp_path / "iid"
    res = run(source.root, "build", "--progress", "plain", "--iidfile", str(iid), "--push",
              *(a for t in tags for a in ("-t", t)), str(ctx))
    image_id = iid.read_text()
    assert image_id.startswith("sha256:")
    assert res.stderr.count(": digest: sha256:") == 2
    for tag in tags:
        out = run(empty, "run", "--rm", "--network", "none", tag, "cat", "/p")
        assert out.stdout == "pushed\n"
        assert run(empty, "inspect", "-f", "{{.Id}}", tag).stdout.strip() == image_id
    untagged = run(source.root, "build", "-q", "--push", str(ctx), check=False)
    assert untagged.returncode != 0 and "--push needs a tag" in untagged.stderr
