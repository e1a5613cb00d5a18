"""RUN as BuildKit 20.10 runs it, through whole builds: what its mount points leave in the
layer, who it runs as, its environment and /etc/hosts, a scratch stage, and the error a
failed RUN raises (the layers-run-stubs, perms-user and run-env oracle cases compare the
same against BuildKit)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.build import config_of, image_tree, no_leftovers, probe, run_build, sandbox_store

from pybuild.build.runstep import HOSTS, proxy_env
from pybuild.errors import BuildError
from pybuild.store.images import resolve

pytestmark = pytest.mark.root
BASE = "FROM localhost/bench/busybox:latest\n"


@pytest.fixture(scope="module")
def store(tmp_path_factory, busybox_tar):
    return sandbox_store(tmp_path_factory, busybox_tar, "runstep")


def build_text(store, context: Path, text: str, **kw) -> str:
    context.mkdir(exist_ok=True)
    (context / "Dockerfile").write_text(text)
    return run_build(store, context, **kw)[0]


def top_layer(store, image: str) -> list[str]:
    """The paths in the image's last layer, as unpacked (overlay form)."""
    record = resolve(store, image)
    top = store.layers.ensure(record.diff_ids)[-1]
    return sorted(str(p.relative_to(top)) for p in Path(top).rglob("*"))


# -- what the mount points leave


def test_run_leaves_etc_with_its_time_but_no_stubs(store, tmp_path):
    image = build_text(store, tmp_path / "ctx", BASE + "RUN true\n")
    assert top_layer(store, image) == ["etc"]
    image_tree(store, image, tmp_path / "rootfs")
    assert os.stat(tmp_path / "rootfs/etc").st_mtime > 0  # the base's /etc has mtime 0
    assert not (tmp_path / "rootfs/etc/hosts").exists()
    assert not (tmp_path / "rootfs/etc/hostname").exists()
    no_leftovers(store.root)


def test_run_with_both_etc_files_leaves_etc_alone(store, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    for name in ("hosts", "resolv.conf"):
        (ctx / name).write_text("")
    image = build_text(store, ctx, BASE + "COPY hosts resolv.conf /etc/\nRUN touch /x\n")
    assert top_layer(store, image) == ["x"]  # /etc/hostname's stub left nothing


def test_scratch_run_leaves_empty_mount_point_dirs(store, tmp_path):
    text = ("FROM scratch\nCOPY --from=localhost/bench/busybox:latest /bin /bin\n"
            "USER 0:0\nRUN touch /x\n")
    image = build_text(store, tmp_path / "ctx", text)
    assert top_layer(store, image) == ["dev", "etc", "proc", "sys", "x"]
    assert config_of(store, image)["config"]["WorkingDir"] == "/"


def test_scratch_stage_has_workdir_root_without_a_run(store, tmp_path):
    text = "FROM scratch\nCOPY --from=localhost/bench/busybox:latest /bin/busybox /bin/\n"
    image = build_text(store, tmp_path / "ctx", text)
    assert config_of(store, image)["config"]["WorkingDir"] == "/"


# -- who it runs as


def test_uid_without_passwd_entry_has_gid_0_and_no_groups(store, tmp_path):
    image = build_text(store, tmp_path / "ctx", BASE + "USER 65\nRUN id > /tmp/id\n")
    assert probe(store, image, "cat /tmp/id") == "uid=65 gid=0(root)\n"


def test_named_user_gets_listed_groups_only(store, tmp_path):
    text = BASE + (
        "RUN echo 'app:x:1001:1002::/:/bin/sh' >> /etc/passwd && "
        "echo 'app:x:1002:' >> /etc/group && echo 'extra:x:1005:app' >> /etc/group\n"
        "USER app\nRUN id > /tmp/id\nUSER app:nobody\nRUN id > /tmp/id2\n")
    image = build_text(store, tmp_path / "ctx", text)
    assert probe(store, image, "cat /tmp/id") == (
        "uid=1001(app) gid=1002(app) groups=1005(extra)\n")
    assert probe(store, image, "cat /tmp/id2") == "uid=1001(app) gid=65534(nobody)\n"


def test_default_user_needs_no_passwd(store, tmp_path):
    image = build_text(store, tmp_path / "ctx", BASE + "RUN rm /etc/passwd\nRUN id > /id\n")
    assert probe(store, image, "cat /id") == "uid=0 gid=0(root)\n"


def test_bare_uid_without_passwd_fails(store, tmp_path):
    text = BASE + "RUN rm /etc/passwd\nUSER 0\nRUN true\n"
    with pytest.raises(BuildError, match="Dockerfile:4: unable to find user 0"):
        build_text(store, tmp_path / "ctx", text)
    image = build_text(store, tmp_path / "ctx2", BASE + "RUN rm /etc/passwd\nUSER 0:0\nRUN true\n")
    assert image


def test_workdir_under_bare_uid_is_uid_uid(store, tmp_path):
    image = build_text(store, tmp_path / "ctx", BASE + "USER 65\nWORKDIR /w/x\n")
    got = image_tree(store, image, tmp_path / "rootfs")
    assert (got["w"][2:4], got["w/x"][2:4]) == ((65, 65), (65, 65))


# -- environment and /etc/hosts


def test_proxy_args_under_both_spellings():
    assert proxy_env({"HTTP_PROXY": "http://p:3128", "no_proxy": "localhost", "X": "y",
                      "https_proxy": ""}) == {
        "HTTP_PROXY": "http://p:3128", "http_proxy": "http://p:3128",
        "NO_PROXY": "localhost", "no_proxy": "localhost"}
    assert proxy_env({"http_proxy": "low", "HTTP_PROXY": "up"})["http_proxy"] == "up"


def test_run_sees_proxy_args_and_buildkits_hosts(store, tmp_path):
    text = BASE + "RUN env > /env.txt && cat /etc/hosts > /hosts.txt\n"
    image = build_text(store, tmp_path / "ctx", text, build_args={"no_proxy": "localhost"})
    env = probe(store, image, "cat /env.txt").splitlines()
    assert "NO_PROXY=localhost" in env and "no_proxy=localhost" in env
    assert probe(store, image, "cat /hosts.txt") == HOSTS
    assert HOSTS == ("127.0.0.1\tlocalhost buildkitsandbox\n"
                     "::1\tlocalhost ip6-localhost ip6-loopback\n")


# -- a failed RUN


def test_failed_run_error_carries_step_exit_status_and_log(store, tmp_path):
    text = BASE + "RUN echo first && echo oops >&2 && exit 3\n"
    with pytest.raises(BuildError) as info:
        build_text(store, tmp_path / "ctx", text)
    err = info.value
    assert str(err).startswith("Dockerfile:2: process ")
    assert err.returncode == 3
    assert err.step == "RUN echo first && echo oops >&2 && exit 3"
    assert err.log_tail[-2:] == ("first", "oops")
    no_leftovers(store.root)


def test_failed_copy_error_has_step_and_no_exit_status(store, tmp_path):
    with pytest.raises(BuildError) as info:
        build_text(store, tmp_path / "ctx", BASE + "COPY nothing /\n")
    assert (info.value.step, info.value.returncode) == ("COPY nothing /", None)
