"""``--cache-to`` / ``--cache-from`` values (buildx's ``type=...,key=value`` syntax): what
they mean, the one line a bad one gets, and that a bad one builds nothing."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pybuild.cache.cachespec import CacheSpec, parse, parse_all
from pybuild.client import build_options
from pybuild.errors import UsageError


def test_local_and_registry_forms():
    assert parse("type=local,dest=out", "to") == CacheSpec(
        "local", path=os.path.abspath("out"))
    assert parse("type=local,src=/c,tag=v2", "from") == CacheSpec("local", path="/c", tag="v2")
    assert parse("type=registry,ref=127.0.0.1:5000/a/b:cache,mode=max", "to") == CacheSpec(
        "registry", ref="127.0.0.1:5000/a/b:cache", mode="max")
    assert parse("type=registry,ref=r/x,compression=uncompressed,ignore-error=true",
                 "to") == CacheSpec("registry", ref="r/x", compression="none",
                                    ignore_error=True)
    # buildx: a value with no "=" is a registry ref
    assert parse("localhost:5000/app:cache", "from") == CacheSpec(
        "registry", ref="localhost:5000/app:cache")
    # attributes BuildKit has whose effect pybuild has anyway
    assert parse("type=registry,ref=r/x,oci-mediatypes=true,image-manifest=true",
                 "to").ref == "r/x"


@pytest.mark.parametrize(("value", "direction", "says"), [
    ("type=gha", "to", "unsupported cache type 'gha' (pybuild has local, registry)"),
    ("dest=/x", "to", "type= is required"),
    ("type=local", "to", "dest= is required for type local"),
    ("type=local,dest=/x", "from", "unknown attribute dest= for type local"),
    ("type=local,src=/x", "to", "unknown attribute src= for type local"),
    ("type=registry", "from", "ref= is required for type registry"),
    ("type=registry,ref=r/x,mode=all", "to", "mode must be min or max"),
    ("type=registry,ref=r/x,mode=max", "from", "unknown attribute mode="),
    ("type=registry,ref=Bad/Name", "to", "must be lowercase"),
    ("type=local,dest=/x,dest=/y", "to", "dest= given twice"),
    ("type=local,,dest=/x", "to", "'' is not KEY=VALUE"),
    ("type=local,dest=/x,compression=lz4", "to", "compression must be"),
])
def test_bad_values_say_what_in_one_line(value, direction, says):
    with pytest.raises(UsageError) as info:
        parse(value, direction)
    message = str(info.value)
    assert message.startswith(f"invalid --cache-{direction} {value!r}: ")
    assert says in message and "\n" not in message


_word = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789-_./"), min_size=1,
                max_size=20).filter(lambda s: "/" not in s[:1])


@given(path=_word, tag=_word.filter(lambda s: "/" not in s), mode=st.sampled_from(["min", "max"]),
       order=st.permutations(["type", "dest", "tag", "mode"]))
def test_attribute_order_does_not_matter(path, tag, mode, order):
    values = {"type": "local", "dest": path, "tag": tag, "mode": mode}
    spec = parse(",".join(f"{k}={values[k]}" for k in order), "to")
    assert spec == CacheSpec("local", path=os.path.abspath(path), tag=tag, mode=mode)


def test_library_names_as_docker_py():
    options = build_options(".", cache_from=["r/x:cache", "type=local,src=/c"],
                            cache_to="type=local,dest=/d,mode=max")
    assert options.cache_from == (CacheSpec("registry", ref="r/x:cache"),
                                  CacheSpec("local", path="/c"))
    assert options.cache_to == (CacheSpec("local", path="/d", mode="max"),)
    assert parse_all(None, "to") == ()


def test_cli_bad_value_builds_nothing(tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY Dockerfile /\n")
    root = tmp_path / "root"
    res = subprocess.run([sys.executable, "-m", "pybuild", "--root", str(root), "build",
                          "--cache-to", "type=s3,bucket=b", str(ctx)],
                         capture_output=True, text=True)
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "unsupported cache type 's3'" in lines[0], res.stderr
    assert "Traceback" not in res.stderr
    assert not any((root / "images").glob("*.json"))
