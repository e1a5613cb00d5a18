"""Golden build cases under testdata/builds/<case>/: build each context with pybuild and check
the image config and filesystem (through pybuild's own unpack and a probe run in the image).

A case holds ``context/`` (with its Dockerfile), ``expect.json`` and optionally ``setup.sh``
(run in a copy of the context first, for what git cannot hold: odd modes, tarballs). See
testdata/builds/README.md for the expect.json keys.
"""

from __future__ import annotations

import json

import pytest
from support.build import (
    config_of,
    image_tree,
    no_leftovers,
    prepare_context,
    probe,
    run_build,
    sandbox_store,
)
from support.paths import TESTDATA

from pybuild.errors import PybuildError

CASES = sorted(p.name for p in (TESTDATA / "builds").iterdir() if (p / "expect.json").is_file())
pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def store(tmp_path_factory, busybox_tar):
    return sandbox_store(tmp_path_factory, busybox_tar, "golden")


def check_config(config: dict, expect: dict) -> None:
    for key, want in expect.get("config", {}).items():
        assert config["config"].get(key) == want, f"Config.{key}"
    if "author" in expect:
        assert config.get("author") == expect["author"]


def check_history(config: dict, expect: dict) -> None:
    text = "\n".join(h.get("created_by", "") for h in config.get("history", []))
    for want in expect.get("history_contains", []):
        assert want in text, f"history lacks {want!r}: {text}"
    for unwanted in expect.get("history_absent", []):
        assert unwanted not in text, f"history has {unwanted!r}"


def check_files(tree: dict, expect: dict) -> None:
    types = {"file": 0o100000, "dir": 0o040000, "symlink": 0o120000}
    for path, want in expect.get("files", {}).items():
        got = tree.get(path.lstrip("/"))
        if want.get("type") == "absent":
            assert got is None, f"{path} should not exist"
            continue
        assert got is not None, f"{path} missing"
        kind, mode, uid, gid, _size, extra, _x = got
        assert kind == types[want.get("type", "file")], f"{path} type"
        if "mode" in want:
            assert int(mode, 8) == int(str(want["mode"]), 8), f"{path} mode"
        for key, value in (("uid", uid), ("gid", gid)):
            if key in want:
                assert value == want[key], f"{path} {key}"
        if "target" in want:
            assert extra == want["target"], f"{path} link target"


def assert_no_image(store, name: str) -> None:
    """A failed build tags nothing and leaves the store sound (``system check`` clean)."""
    from pybuild.errors import ImageNotFound
    from pybuild.store.check import check
    from pybuild.store.images import resolve

    with pytest.raises(ImageNotFound):
        resolve(store, name)
    assert check(store) == []


@pytest.mark.parametrize("case", CASES)
def test_golden_build(case, store, tmp_path):
    expect = json.loads((TESTDATA / "builds" / case / "expect.json").read_text())
    context = prepare_context(case, tmp_path / "context")
    kw = {"tags": (f"golden/{case}",), "build_args": expect.get("build_args", {}),
          "target": expect.get("target"), "labels": expect.get("labels", {}),
          "dockerfile": str(context / expect["dockerfile"]) if "dockerfile" in expect else None,
          "secrets": {
              k: str(context / v) for k, v in expect.get("secrets", {}).items()}}
    before = {p: (context / p).read_bytes() for p in expect.get("context_unchanged", [])}
    if "error" in expect:
        with pytest.raises(PybuildError) as err:
            run_build(store, context, **kw)
        assert expect["error"] in str(err.value)
        assert "\n" not in str(err.value)
        no_leftovers(store.root)
        assert_no_image(store, f"golden/{case}")
        return
    image, _ = run_build(store, context, **kw)
    config = config_of(store, image)
    check_config(config, expect)
    check_history(config, expect)
    assert {p: (context / p).read_bytes() for p in before} == before, "context changed"
    check_files(image_tree(store, image, tmp_path / "rootfs"), expect)
    for item in expect.get("probes", []):
        assert probe(store, image, item["run"]) == item["stdout"], item["run"]
    no_leftovers(store.root)
