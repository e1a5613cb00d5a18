"""Generated typed instructions, rendered to Dockerfile text, parse back to equal ones."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pybuild.dockerfile import parser
from pybuild.dockerfile.syntax import Heredoc
from pybuild.instructions import (
    Add,
    Arg,
    ArgDef,
    Cmd,
    Copy,
    Entrypoint,
    Env,
    Expose,
    From,
    Healthcheck,
    Label,
    Maintainer,
    Mount,
    Onbuild,
    Run,
    Shell,
    Stopsignal,
    User,
    Volume,
    Workdir,
    from_document,
)
from pybuild.instructions.render import render

SAFE = "abcdefghijklmnopqrstuvwxyz0123456789._-/"
word = st.text(SAFE, min_size=1, max_size=12).filter(lambda w: not w.startswith("-"))
name = st.from_regex(r"\A[a-z][a-z0-9_.-]{0,8}\Z")
key = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,8}\Z")
sentence = st.lists(word, min_size=1, max_size=5).map(" ".join).filter(
    lambda s: not s.startswith("["))
json_words = st.lists(st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")),
                              max_size=8), min_size=1, max_size=4).map(tuple)
ms = st.integers(1, 10**6).map(lambda n: n * 1_000_000)


def command(cls):
    shell = st.builds(lambda s: cls(command=(s,), shell_form=True), sentence)
    exec_ = st.builds(lambda w: cls(command=w, shell_form=False), json_words)
    return shell | exec_


mounts = st.one_of(
    st.builds(Mount, type=st.just("cache"), target=word, id=st.none() | word,
              sharing=st.none() | st.sampled_from(["shared", "private", "locked"]),
              mode=st.none() | st.integers(0, 0o777), uid=st.none() | st.integers(0, 9999),
              readonly=st.just(False)),
    st.builds(Mount, type=st.just("secret"), id=word, target=st.none() | word,
              required=st.booleans(), env=st.none() | key),
    st.builds(Mount, type=st.just("ssh"), id=st.none() | word, required=st.booleans()),
    st.builds(Mount, type=st.just("tmpfs"), target=word, size=st.none() | st.just("64m"),
              readonly=st.just(False)),
    st.builds(Mount, type=st.just("bind"), target=word, source=st.none() | word,
              from_=st.none() | name, readonly=st.booleans()),
)
runs = st.builds(
    lambda cmd, ms_, net, sec: Run(command=cmd.command, shell_form=cmd.shell_form,
                                   mounts=tuple(ms_), network=net, security=sec),
    command(Cmd), st.lists(mounts, max_size=2),
    st.none() | st.sampled_from(["default", "none", "host"]),
    st.none() | st.sampled_from(["sandbox", "insecure"]))
heredoc_runs = st.builds(
    lambda body: Run(command=("cat <<EOF",), heredocs=(Heredoc("EOF", body),)),
    st.lists(sentence, max_size=3).map(lambda lines: "".join(f"{x}\n" for x in lines)))
ports = st.builds(lambda p, proto: f"{p}{proto}", st.integers(1, 65535),
                  st.sampled_from(["", "/tcp", "/udp", "/sctp"]))
pairs = st.lists(st.tuples(key, word), min_size=1, max_size=3).map(tuple)
copy_flags = dict(chown=st.none() | word, chmod=st.none() | st.sampled_from(["755", "0644"]),
                  link=st.booleans(), exclude=st.lists(word, max_size=2).map(tuple))
copies = st.builds(Copy, sources=st.lists(word, min_size=1, max_size=3).map(tuple), dest=word,
                   from_=st.none() | name, parents=st.booleans(), **copy_flags)
adds = st.builds(Add, sources=st.lists(word, min_size=1, max_size=3).map(tuple), dest=word,
                 checksum=st.none() | st.just("sha256:" + "a" * 64), keep_git_dir=st.booleans(),
                 unpack=st.none() | st.booleans(), **copy_flags)
healthchecks = st.just(Healthcheck(test=("NONE",))) | st.builds(
    lambda cmd, i, t, r: Healthcheck(
        test=("CMD-SHELL", *cmd.command) if cmd.shell_form else ("CMD", *cmd.command),
        interval=i, timeout=t, retries=r),
    command(Cmd), st.just(0) | ms, st.just(0) | ms, st.integers(0, 10))
simple = st.one_of(
    runs, heredoc_runs, command(Cmd), command(Entrypoint), copies, adds, healthchecks,
    st.builds(Shell, shell=json_words),
    st.builds(User, user=word), st.builds(Workdir, path=word), st.builds(Stopsignal, signal=word),
    st.builds(Maintainer, maintainer=sentence),
    st.builds(Expose, ports=st.lists(ports, min_size=1, max_size=3).map(tuple)),
    st.builds(Volume, paths=st.lists(word, min_size=1, max_size=3).map(tuple)),
    st.builds(Env, pairs=pairs), st.builds(Label, pairs=pairs),
    st.builds(lambda k, v: Env(pairs=((k, v),), legacy=True), key, sentence),
    st.builds(Arg, args=st.lists(st.builds(ArgDef, key, st.none() | word), min_size=1,
                                 max_size=3).map(tuple)),
)
triggers = st.one_of(runs, copies, st.builds(Env, pairs=pairs), st.builds(User, user=word))
onbuilds = triggers.map(lambda t: Onbuild(instruction=t, expression=render(t)))
froms = st.builds(From, image=word, platform=st.none() | st.just("linux/arm64"),
                  name=st.none() | name)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(froms, st.lists(simple | onbuilds, max_size=6)), min_size=1,
                max_size=3))
def test_render_parse_roundtrip(stages):
    instructions = [i for head, body in stages for i in (head, *body)]
    text = "".join(render(i) + "\n" for i in instructions)
    doc = parser.parse(text, file="Dockerfile")
    assert from_document(doc) == instructions, text
