"""Cache keys, miss explanations, the persistent index and cache-mount storage."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as hst

from pybuild.cache.index import CacheIndex, CacheRecord
from pybuild.cache.keys import KeyInputs, explain_miss, step_key
from pybuild.cache.mounts import CacheMounts
from pybuild.errors import LockTimeout, UsageError

PARENT = "sha256:" + "1" * 64


def inputs(**kw) -> KeyInputs:
    base = dict(parent_key=PARENT, instruction_text="COPY . ./", used_args={"APP_VERSION": "1.0"},
                sources_digest="sha256:aa", sources=(("a.txt", "1"), ("b.txt", "2")))
    base.update(kw)
    return KeyInputs.make(**base)


# ---- keys

def test_step_key_is_stable_and_order_independent():
    k1 = step_key(PARENT, "RUN make", {"A": "1", "B": "2"}, None)
    k2 = step_key(PARENT, "RUN make", {"B": "2", "A": "1"}, None, {})
    assert k1 == k2 and k1.startswith("sha256:") and len(k1) == 71


@given(field=hst.sampled_from(["parent", "text", "args", "sources", "extra"]))
def test_every_input_changes_the_key(field):
    args = dict(parent_key=PARENT, instruction_text="RUN x", used_args={"A": "1"},
                sources_digest="sha256:s", extra={"platform": "linux/amd64"})
    changed = dict(args)
    if field == "parent":
        changed["parent_key"] = "sha256:" + "2" * 64
    elif field == "text":
        changed["instruction_text"] = "RUN y"
    elif field == "args":
        changed["used_args"] = {"A": "2"}
    elif field == "sources":
        changed["sources_digest"] = "sha256:t"
    else:
        changed["extra"] = {"platform": "linux/arm64"}
    assert step_key(**args) != step_key(**changed)


def test_manifest_does_not_enter_the_key_and_inputs_roundtrip():
    a, b = inputs(), inputs(sources=(("z", "9"),))
    assert a.key() == b.key()
    assert KeyInputs.from_json(json.loads(json.dumps(a.to_json()))) == a


# ---- explanations

@pytest.mark.parametrize("change, reason", [
    (dict(used_args={"APP_VERSION": "2.0"}), "build arg APP_VERSION changed"),
    (dict(used_args={}), "build arg APP_VERSION changed"),
    (dict(instruction_text="COPY . /srv/"), "instruction changed"),
    (dict(parent_key="sha256:" + "2" * 64), "parent step changed"),
    (dict(sources_digest="sha256:bb", sources=(("a.txt", "1"), ("b.txt", "3"))),
     "source files changed: b.txt"),
    (dict(sources_digest="sha256:bb", sources=(("a.txt", "1"),)), "source files removed: b.txt"),
    (dict(sources_digest="sha256:bb", sources=()), "source files changed"),
    (dict(extra={"network": "host"}), "network changed"),
    ({}, "no cached result with these inputs"),
])
def test_explain_miss_names_the_changed_input(change, reason):
    assert explain_miss(inputs(), inputs(**change)) == reason


def test_explain_miss_lists_a_few_files_and_counts_the_rest():
    old = inputs(sources=tuple((f"f{i}", "0") for i in range(6)))
    new = inputs(sources_digest="sha256:x", sources=tuple((f"f{i}", "1") for i in range(6)))
    assert explain_miss(old, new) == "source files changed: f0, f1, f2 and 3 more"
    assert explain_miss(None, new) == "no earlier build of this step"
    both = inputs(instruction_text="COPY x y", used_args={"APP_VERSION": "3"})
    assert explain_miss(inputs(), both) == "instruction changed; build arg APP_VERSION changed"


# ---- index

def record(inp: KeyInputs, layer: str | None = "sha256:" + "d" * 64) -> CacheRecord:
    return CacheRecord(key=inp.key(), inputs=inp, layer=layer, config={"Env": ["A=1"]},
                       meta={"size": 3})


def test_index_roundtrip_and_hit_file_is_small(tmp_path: Path):
    index = CacheIndex(tmp_path)
    inp = inputs(sources=tuple((f"small/f{i:03}.txt", "ab" * 32) for i in range(200)))
    index.put(record(inp), slot="ctx|Dockerfile|0/3")
    hit = index.get(inp.key())
    assert hit is not None and hit.layer.startswith("sha256:") and hit.config == {"Env": ["A=1"]}
    assert hit.inputs.sources == ()  # the manifest lives in the slot file only
    assert os.path.getsize(index._key_path(inp.key())) < 1024
    assert index.last_for_slot("ctx|Dockerfile|0/3").inputs == inp
    assert list(index.keys()) == [inp.key()]
    assert index.get(step_key(PARENT, "nope", {}, None)) is None


def test_index_explains_a_miss_from_the_slot(tmp_path: Path):
    index = CacheIndex(tmp_path)
    index.put(record(inputs(), layer=None), slot="s")
    newer = inputs(sources_digest="sha256:cc", sources=(("a.txt", "1"), ("b.txt", "X")))
    assert index.get(newer.key()) is None
    assert index.explain("s", newer) == "source files changed: b.txt"
    assert index.explain("other", newer) == "no earlier build of this step"


def test_corrupt_or_mismatched_records_are_misses(tmp_path: Path):
    index = CacheIndex(tmp_path)
    a, b = inputs(), inputs(instruction_text="RUN b")
    index.put(record(a))
    path = index._key_path(a.key())
    path.write_text(path.read_text()[:40])
    assert index.get(a.key()) is None
    index.put(record(a))
    os.replace(index._key_path(a.key()), index._key_path(b.key()))  # a record under a wrong name
    assert index.get(b.key()) is None
    index.put(record(b))
    assert index.get(b.key()) is not None
    with pytest.raises(ValueError):
        index.put(CacheRecord(key=a.key(), inputs=b))


_WRITER = """
import sys
from pybuild.cache.index import CacheIndex, CacheRecord
from pybuild.cache.keys import KeyInputs
index = CacheIndex(sys.argv[1])
big = tuple((f"f{i}", "x" * 64) for i in range(3000))  # large slot files: slow writes
print("ready", flush=True)
i = 0
while True:
    inp = KeyInputs.make("p", f"RUN {i % 5}", {}, "sha256:s", sources=big)
    index.put(CacheRecord(inp.key(), inp, layer=None), slot="slot")
    i += 1
"""


def test_killed_writer_leaves_a_readable_index(tmp_path: Path):
    mid_write = 0
    deadline = time.monotonic() + 60
    for attempt in range(200):  # until a kill has landed inside a write at least twice
        if time.monotonic() > deadline:
            break
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.05 + 0.037 * (attempt % 7))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        index = CacheIndex(tmp_path)
        keys = list(index.keys())
        assert keys and all(index.get(k) is not None for k in keys)
        slot = index.last_for_slot("slot")  # None when killed before the first slot write
        assert slot is None or slot.key in keys
        strays = list(index.dir.glob("*/.*.tmp"))
        mid_write += bool(strays)
        for stray in strays:
            stray.unlink()
        if mid_write >= 2:
            break
    assert mid_write >= 2, "no kill landed mid-write: the test proved nothing"


# ---- cache mounts

def test_mount_created_with_owner_and_mode_once(tmp_path: Path):
    mounts = CacheMounts(tmp_path)
    with mounts.acquire("go-build", uid=1000, gid=1001, mode=0o750) as path:
        s = path.stat()
        assert (s.st_uid, s.st_gid, stat.S_IMODE(s.st_mode)) == (1000, 1001, 0o750)
        (path / "obj").write_text("cached")
    with mounts.acquire("go-build", uid=0, gid=0, mode=0o700) as again:
        assert again == path and (again / "obj").read_text() == "cached"
        assert stat.S_IMODE(again.stat().st_mode) == 0o750
    with pytest.raises(UsageError):
        with mounts.acquire("x", sharing="exclusive"):
            pass


def test_shared_mounts_are_used_at_once(tmp_path: Path):
    mounts = CacheMounts(tmp_path)
    with mounts.acquire("c") as a, mounts.acquire("c", timeout=0.2) as b:
        assert a == b


def test_locked_mount_waits_for_the_holder(tmp_path: Path):
    mounts = CacheMounts(tmp_path)
    order: list[str] = []
    with mounts.acquire("c", sharing="locked"):
        with pytest.raises(LockTimeout):
            with mounts.acquire("c", sharing="locked", timeout=0.1):
                pass
        with pytest.raises(LockTimeout):  # a shared user waits for a locked one too
            with mounts.acquire("c", sharing="shared", timeout=0.1):
                pass

        def second():
            with mounts.acquire("c", sharing="locked"):
                order.append("second")

        t = threading.Thread(target=second)
        t.start()
        time.sleep(0.1)
        order.append("first done")
    t.join(5)
    assert order == ["first done", "second"]


def test_private_mount_gets_a_fresh_dir_when_busy(tmp_path: Path):
    mounts = CacheMounts(tmp_path)
    with mounts.acquire("c", sharing="private") as first:
        (first / "mine").write_text("1")
        with mounts.acquire("c", sharing="private", uid=7, gid=7, mode=0o700) as other:
            assert other != first and not any(other.iterdir())
            assert (other.stat().st_uid, stat.S_IMODE(other.stat().st_mode)) == (7, 0o700)
        assert not other.exists()
    assert first == mounts.path("c") and (first / "mine").exists()


# ---- context + keys + index together

def test_touch_hits_and_an_edit_misses_naming_the_file(tmp_path: Path):
    from pybuild.cache.filehashes import FileHashMemo
    from pybuild.context.walk import BuildContext

    root = tmp_path / "ctx"
    for d in range(2):
        (root / f"small/d0{d}").mkdir(parents=True)
        for f in range(3):
            (root / f"small/d0{d}/f00{f}.txt").write_text(f"file {d} {f}\n")
    time.sleep(0.1)  # out of the memo's racy window
    index, memo_dir = CacheIndex(tmp_path / "store"), tmp_path / "store" / "cache"

    def key_inputs() -> KeyInputs:
        ctx = BuildContext(root, memo=FileHashMemo.for_context(memo_dir, str(root)))
        manifest = ctx.manifest(ctx.resolve_sources(["."]))
        from pybuild.context.walk import manifest_digest
        return KeyInputs.make(PARENT, "COPY . ./", {}, manifest_digest(manifest),
                              sources=manifest)

    first = key_inputs()
    index.put(record(first), slot="ctx|Dockerfile|0/2")
    os.utime(root / "small/d00/f001.txt")
    assert index.get(key_inputs().key()) is not None
    (root / "small/d00/f001.txt").write_text("edited\n")
    edited = key_inputs()
    assert index.get(edited.key()) is None
    assert index.explain("ctx|Dockerfile|0/2", edited) == "source files changed: small/d00/f001.txt"
