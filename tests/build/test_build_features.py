"""Build features a golden case cannot show alone: what survives between builds (cache
mounts), what must never be stored (secrets), ADD from a URL served by a local http.server,
and a stage used twice being built once."""

from __future__ import annotations

import email.utils
import gzip
import hashlib
import http.server
import os
import threading
from pathlib import Path

import pytest
from support.build import config_of, image_tree, no_leftovers, probe, run_build, sandbox_store

from pybuild import progress as ev
from pybuild.errors import PybuildError

pytestmark = pytest.mark.root
BASE = "FROM localhost/bench/busybox:latest\n"
SECRET = "pssst-never-stored-4242"


@pytest.fixture(scope="module")
def store(tmp_path_factory, busybox_tar):
    return sandbox_store(tmp_path_factory, busybox_tar, "features")


def build_text(store, context: Path, text: str, **kw):
    context.mkdir(exist_ok=True)
    (context / "Dockerfile").write_text(text)
    return run_build(store, context, **kw)


def ran_runs(events: list) -> list[str]:
    cached = {e.step for e in events if isinstance(e, ev.StepCached)}
    return [e.text for e in events if isinstance(e, ev.StepStarted)
            and e.step not in cached and e.text.startswith("RUN")]


# -- RUN --mount=type=cache


def test_cache_mount_is_kept_between_builds(store, tmp_path):
    write = BASE + ("RUN --mount=type=cache,target=/c,id=feat-keep "
                    "cat /proc/sys/kernel/random/uuid > /c/stamp\n")
    build_text(store, tmp_path / "a", write)
    read = BASE + "RUN --mount=type=cache,target=/data,id=feat-keep cp /data/stamp /seen\n"
    image, _ = build_text(store, tmp_path / "b", read, no_cache=True)
    assert len(probe(store, image, "cat /seen").strip()) == 36
    assert "c/stamp" not in image_tree(store, image, tmp_path / "rootfs")


def test_cache_mount_ids_are_separate(store, tmp_path):
    text = BASE + ("RUN --mount=type=cache,target=/c,id=feat-one touch /c/one\n"
                   "RUN --mount=type=cache,target=/c,id=feat-two ls /c > /two\n")
    image, _ = build_text(store, tmp_path / "a", text, no_cache=True)
    assert probe(store, image, "cat /two") == ""


# -- secrets


def _secret_build(store, ctx: Path, value: str):
    (ctx / "s").mkdir(parents=True, exist_ok=True)
    (ctx / "s" / "tok").write_text(value)
    (ctx / ".dockerignore").write_text("s\n")
    text = BASE + ("RUN --mount=type=secret,id=tok cat /run/secrets/tok | wc -c > /len\n"
                   "RUN --mount=type=secret,id=tok,env=TOK echo ${#TOK} > /len2\n")
    return build_text(store, ctx, text, secrets={"tok": str(ctx / "s" / "tok")})


def _stored_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    if data[:4] == b"\x28\xb5\x2f\xfd":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(data).read()
    return data


def _shm_secrets() -> set[str]:
    shm = Path("/dev/shm")
    if not shm.is_dir():
        return set()
    return {p.name for p in shm.iterdir() if p.name.startswith("secret-")}


def test_secret_never_reaches_layers_history_or_cache(store, tmp_path):
    before = _shm_secrets()  # another process's build may hold one of its own meanwhile
    image, _ = _secret_build(store, tmp_path / "ctx", SECRET)
    assert probe(store, image, "cat /len /len2") == f"{len(SECRET)}\n{len(SECRET)}\n"
    needle = SECRET.encode()
    for path in store.root.rglob("*"):  # blobs (layers, configs), cache index, unpacked layers
        if path.is_file() and not path.is_symlink():
            assert needle not in _stored_bytes(path), f"secret found in {path}"
    assert _shm_secrets() - before == set()  # the step's private copy is gone too
    again, events = _secret_build(store, tmp_path / "ctx", "another-value-of-same-len")
    assert ran_runs(events) == [], "a secret's value is not part of the cache key"


def test_missing_required_secret_fails_with_the_line(store, tmp_path):
    text = BASE + "RUN --mount=type=secret,id=nope,required=true true\n"
    with pytest.raises(PybuildError, match=r"Dockerfile:2: .*secret nope not found"):
        build_text(store, tmp_path / "ctx", text)
    no_leftovers(store.root)


# -- ADD from a URL


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture()
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "file.txt").write_text("downloaded\n")
    os.utime(root / "file.txt", (1_600_000_000, 1_600_000_000))
    (root / "t.tar.gz").write_bytes(gzip.compress(b"not extracted", mtime=0))

    def handler(*args, **kw):
        return _Handler(*args, directory=str(root), **kw)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_add_url(store, tmp_path, server):
    good = "sha256:" + hashlib.sha256(b"downloaded\n").hexdigest()
    text = BASE + (f"ADD {server}/file.txt /dl/\n"
                   f"ADD --checksum={good} {server}/file.txt /dl2/renamed\n"
                   f"ADD {server}/t.tar.gz /dl3/\n")
    image, _ = build_text(store, tmp_path / "ctx", text, network="none")
    tree = image_tree(store, image, tmp_path / "rootfs")
    for path in ("dl/file.txt", "dl2/renamed"):
        assert int(tree[path][1], 8) == 0o600, path
    assert tree["dl3/t.tar.gz"][0] == 0o100000  # a URL's archive is never extracted
    st = os.lstat(tmp_path / "rootfs" / "dl" / "file.txt")
    assert int(st.st_mtime) == 1_600_000_000  # Last-Modified
    assert email.utils.formatdate(st.st_mtime, usegmt=True)
    assert probe(store, image, "cat /dl/file.txt") == "downloaded\n"


def test_add_url_checksum_mismatch_fails(store, tmp_path, server):
    bad = "sha256:" + "0" * 64
    text = BASE + f"ADD --checksum={bad} {server}/file.txt /x\n"
    with pytest.raises(PybuildError, match=r"Dockerfile:2: .*digest mismatch"):
        build_text(store, tmp_path / "ctx", text)
    no_leftovers(store.root)


def test_add_url_not_found_fails(store, tmp_path, server):
    with pytest.raises(PybuildError, match=r"Dockerfile:2: "):
        build_text(store, tmp_path / "ctx", BASE + f"ADD {server}/missing /x\n")
    no_leftovers(store.root)


# -- stages


def test_stage_used_twice_is_built_once(store, tmp_path):
    text = (BASE.replace("\n", " AS gen\n") + "RUN cat /proc/sys/kernel/random/uuid > /stamp\n"
            + BASE.replace("\n", " AS a\n") + "COPY --from=gen /stamp /a\n"
            + BASE.replace("\n", " AS b\n") + "COPY --from=gen /stamp /b\n"
            + "FROM a\nCOPY --from=b /b /b\nCOPY --from=gen /stamp /c\n")
    image, events = build_text(store, tmp_path / "ctx", text, no_cache=True)
    assert ran_runs(events) == ["RUN cat /proc/sys/kernel/random/uuid > /stamp"]
    out = probe(store, image, "cat /a /b /c").split()
    assert len(set(out)) == 1


def test_target_skips_unneeded_failing_stage(store, tmp_path):
    text = (BASE.replace("\n", " AS bad\n") + "RUN exit 7\n"
            + BASE.replace("\n", " AS good\n") + "RUN echo ok > /ok\n"
            + "FROM bad\n")
    image, events = build_text(store, tmp_path / "ctx", text, target="good")
    assert ran_runs(events) in ([], ["RUN echo ok > /ok"])
    assert probe(store, image, "cat /ok") == "ok\n"


def test_onbuild_triggers_of_an_image_run_in_order(store, tmp_path):
    parent = BASE + ("WORKDIR /app\nCMD [\"parent-cmd\"]\n"
                     "ONBUILD COPY f ./f\nONBUILD RUN echo first >> /order\n"
                     "ONBUILD RUN echo second >> /order\nONBUILD ENV TRIGGERED=1\n")
    build_text(store, tmp_path / "p", parent, tags=("feat/onbuild-parent",))
    child_ctx = tmp_path / "c"
    child_ctx.mkdir()
    (child_ctx / "f").write_text("ctx file\n")
    child = "FROM feat/onbuild-parent\nRUN echo child >> /order\nENTRYPOINT [\"/bin/cat\"]\n"
    image, _ = build_text(store, child_ctx, child)
    assert probe(store, image, "cat /order /app/f") == "first\nsecond\nchild\nctx file\n"
    config = config_of(store, image)["config"]
    assert "TRIGGERED=1" in config["Env"]
    assert not config.get("OnBuild")
    assert config.get("Cmd") is None  # a new ENTRYPOINT resets the inherited CMD


def test_no_cache_filter_reruns_only_that_stage(store, tmp_path):
    text = (BASE.replace("\n", " AS deps\n") + "RUN echo deps > /deps\n"
            + BASE.replace("\n", " AS app\n") + "COPY --from=deps /deps /deps\n"
            + "RUN echo app > /app\n")
    build_text(store, tmp_path / "ctx", text)
    _, events = build_text(store, tmp_path / "ctx", text, no_cache_filter=("app",))
    assert ran_runs(events) == ["RUN echo app > /app"]


def test_bind_from_a_stage_reruns_when_the_stage_changes(store, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    text = (BASE.replace("\n", " AS gen\n") + "COPY f /f\n"
            + BASE + "RUN --mount=type=bind,from=gen,source=/f,target=/m cat /m > /seen\n")
    (ctx / "f").write_text("one\n")
    build_text(store, ctx, text)
    (ctx / "f").write_text("two\n")
    image, events = build_text(store, ctx, text)
    assert probe(store, image, "cat /seen") == "two\n"


def _processes_running(word: str) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if word in cmd and "pytest" not in cmd:
            found.append(cmd)
    return found


@pytest.mark.parametrize("end", ["exit 4", "true"])
def test_background_process_of_a_run_does_not_outlive_it(store, tmp_path, end):
    text = BASE + f"RUN (sleep 4242 > /dev/null 2>&1 &) ; {end}\n"
    if end == "true":
        build_text(store, tmp_path / "ctx", text, no_cache=True)
    else:
        with pytest.raises(PybuildError, match="exit code: 4"):
            build_text(store, tmp_path / "ctx", text, no_cache=True)
    assert _processes_running("sleep 4242") == []
    no_leftovers(store.root)
