"""The instruction layer, on hand-built nodes (no parser involved)."""

import pytest
from support.nodes import node

from pybuild.dockerfile.syntax import Heredoc
from pybuild.errors import InstructionError
from pybuild.instructions import (
    Add,
    Arg,
    ArgDef,
    Cmd,
    Copy,
    Env,
    Expose,
    From,
    Healthcheck,
    Onbuild,
    Run,
    Shell,
    convert,
    parse_duration,
)


def err(n) -> str:
    with pytest.raises(InstructionError) as info:
        convert(n)
    return info.value.message


def test_from_forms():
    assert convert(node("from", "alpine")) == From(image="alpine")
    got = convert(node("from", "img", "As", "Build", flags=("--platform=linux/arm64",)))
    assert got == From(image="img", platform="linux/arm64", name="build")
    assert err(node("from", "a", "b")) == "FROM requires either one or three arguments"
    assert err(node("from")) == "FROM requires either one or three arguments"
    assert "invalid name for build stage" in err(node("from", "a", "as", "x$y"))


def test_unknown_instruction_and_flag_suggest():
    assert err(node("coppy", "a", "b", original="COPPY")) == \
        "unknown instruction COPPY (did you mean COPY?)"
    assert err(node("zzzzzz", original="ZZZZZZ")) == "unknown instruction ZZZZZZ"
    assert err(node("copy", "a", "b", flags=("--chwn=1",))) == \
        "unknown flag: --chwn (did you mean --chown?)"
    assert err(node("run", "x", flags=("--mout=type=cache",))) == \
        "unknown flag: --mout (did you mean --mount?)"


def test_error_carries_line():
    with pytest.raises(InstructionError) as info:
        convert(node("user", "a", "b", line=12))
    assert str(info.value) == "Dockerfile:12: USER requires exactly one argument"


def test_run_flags_and_mounts():
    run = convert(node("run", "make", flags=(
        "--mount=type=cache,target=/c,id=x,sharing=locked,mode=0700,uid=1,gid=2",
        "--mount=type=secret,id=tok,env=TOKEN,required",
        "--mount=type=tmpfs,dst=/t,size=64m",
        "--mount=target=/src",
        "--network=none", "--security=insecure")))
    assert isinstance(run, Run) and run.network == "none" and run.security == "insecure"
    cache, secret, tmpfs, bind = run.mounts
    assert (cache.type, cache.target, cache.id, cache.sharing, cache.mode, cache.uid,
            cache.gid, cache.readonly) == ("cache", "/c", "x", "locked", 0o700, 1, 2, False)
    assert secret.required and secret.env == "TOKEN" and secret.readonly
    assert tmpfs.size == "64m" and tmpfs.target == "/t" and not tmpfs.readonly
    assert bind.type == "bind" and bind.readonly


@pytest.mark.parametrize("spec, message", [
    ("type=nope", 'unsupported mount type "nope"'),
    ("type=bind,sharing=shared", "invalid cache sharing set for bind mount"),
    ("type=bind,mode=0700", 'mode not allowed for "bind" type mounts'),
    ("type=cache,required", "unexpected key 'required' for mount type 'cache'"),
    ("type=secret", "invalid secret mount. one of source, target required"),
    ("type=secret,id=a,source=b", "both source and id can't be set"),
    ("type=cache,sharing=weird", 'unsupported sharing value "weird"'),
    ("type=cache,uid=x", "invalid value x for uid"),
    ("type=bind,ro=maybe", "invalid value for readonly: maybe"),
    ("type=bind,from=$STAGE", "'from' doesn't support variable expansion, define alias "
     "stage instead"),
    ("target", "invalid field 'target' must be a key=value pair"),
])
def test_bad_mounts(spec, message):
    assert err(node("run", "x", flags=(f"--mount={spec}",))) == message


def test_run_network_and_security_refused():
    assert err(node("run", "x", flags=("--network=bridge",))) == \
        'unsupported network mode "bridge"'
    assert err(node("run", "x", flags=("--security=root",))) == \
        'unsupported security mode "root"'


def test_copy_and_add_flags():
    copy = convert(node("copy", "a", "b", "/d/", flags=(
        "--from=build", "--chown=1:1", "--chmod=755", "--link", "--parents",
        "--exclude=*.md", "--exclude=x")))
    assert copy == Copy(sources=("a", "b"), dest="/d/", from_="build", chown="1:1",
                        chmod="755", link=True, parents=True, exclude=("*.md", "x"))
    add = convert(node("add", "u", "/d", flags=(
        "--checksum=sha256:00", "--keep-git-dir", "--unpack=false", "--link=false")))
    assert add == Add(sources=("u",), dest="/d", checksum="sha256:00", keep_git_dir=True,
                      unpack=False)
    assert err(node("add", "a", "b", flags=("--from=x",))) == "unknown flag: --from"
    assert err(node("copy", "a", "b", flags=("--link=yes",))) == \
        "expecting boolean value for flag --link, not: yes"
    assert err(node("copy", "a", "b", flags=("--from",))) == "missing a value on flag: --from"
    assert err(node("copy", "a", "b", flags=("--chmod=abc",))).startswith("invalid chmod")


def test_copy_heredoc_sources():
    doc = Heredoc("EOF", "hi\n")
    copy = convert(node("copy", "<<EOF", "/etc/motd", heredocs=(doc,)))
    assert copy.sources == () and copy.heredocs == (doc,) and copy.dest == "/etc/motd"
    assert err(node("copy", "a", "<<EOF", heredocs=(doc,))) == \
        "COPY cannot accept a heredoc as a destination"


def test_command_forms():
    assert convert(node("cmd", "echo hi")) == Cmd(command=("echo hi",), shell_form=True)
    assert convert(node("cmd", "a", "b", json=True)) == Cmd(command=("a", "b"),
                                                           shell_form=False)
    assert convert(node("shell", "/bin/sh", "-c", json=True)) == \
        Shell(shell=("/bin/sh", "-c"))
    assert err(node("shell", "/bin/sh -c")) == "SHELL requires the arguments to be in JSON form"
    assert err(node("shell", json=True)) == "SHELL requires at least one argument"


def test_env_label_arg():
    env = convert(node("env", "A", "1", "=", "B", '"x y"', "="))
    assert env == Env(pairs=(("A", "1"), ("B", '"x y"')), legacy=False)
    assert convert(node("env", "A", "b c", "")).legacy
    arg = convert(node("arg", "A", "B=2", 'C="x y"'))
    assert arg == Arg(args=(ArgDef("A"), ArgDef("B", "2"), ArgDef("C", '"x y"')))
    assert err(node("arg", "=x")) == "ARG names can not be blank"


def test_expose():
    ok = convert(node("expose", "80", "443/tcp", "8000-8010/udp", "${PORT}", "53/UDP"))
    assert ok == Expose(ports=("80", "443/tcp", "8000-8010/udp", "${PORT}", "53/UDP"))
    assert err(node("expose", "abc")) == "invalid containerPort: abc"
    assert err(node("expose", "80/icmp")) == "invalid proto: icmp"
    assert err(node("expose", "90-80")) == "invalid range specified for containerPort: 90-80"


def test_healthcheck():
    none = convert(node("healthcheck", "NONE"))
    assert none == Healthcheck(test=("NONE",))
    hc = convert(node("healthcheck", "CMD", "curl -f x", flags=(
        "--interval=1m30s", "--timeout=0s", "--start-period=1.5s", "--start-interval=5ms",
        "--retries=0")))
    assert hc.test == ("CMD-SHELL", "curl -f x")
    assert (hc.interval, hc.timeout, hc.start_period, hc.start_interval) == \
        (90 * 10**9, 0, 15 * 10**8, 5 * 10**6)
    assert convert(node("healthcheck", "cmd", "a", "b", json=True)).test == ("CMD", "a", "b")
    assert err(node("healthcheck", "CMD", "x", flags=("--retries=-2",))) == \
        "--retries cannot be negative (-2)"
    assert err(node("healthcheck", "CMD", "x", flags=("--interval=-1s",))) == \
        'Interval "interval" cannot be less than 1ms'
    assert err(node("healthcheck", "CMD", json=True)) == "Missing command after HEALTHCHECK CMD"
    assert err(node("healthcheck", "CMD", "x", flags=("--interval=1",))) == \
        'time: invalid duration "1"'


@pytest.mark.parametrize("text, ns", [
    ("0", 0), ("0s", 0), ("1m30s", 90 * 10**9), ("1h", 3600 * 10**9), ("1.5ms", 1_500_000),
    ("300ms", 300_000_000), ("-2s", -2 * 10**9), ("1µs", 1000), ("2h45m", 9900 * 10**9),
])
def test_go_durations(text, ns):
    assert parse_duration(text) == ns


@pytest.mark.parametrize("text", ["", "1", "s", "1x", "1s2", "--1s", "1 s"])
def test_bad_go_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_onbuild():
    child = node("run", "make")
    got = convert(node("onbuild", child=child, raw="ONBUILD RUN make"))
    assert isinstance(got, Onbuild) and got.instruction == Run(command=("make",))
    assert got.expression == "RUN make"
    assert err(node("onbuild", child=node("onbuild", child=child))) == \
        "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"
    assert err(node("onbuild", child=node("from", "x"))) == \
        "FROM isn't allowed as an ONBUILD trigger"
    assert err(node("onbuild", child=node("maintainer", "me"))) == \
        "MAINTAINER isn't allowed as an ONBUILD trigger"


def test_equality_ignores_location():
    a = convert(node("workdir", "/app", line=3))
    b = convert(node("workdir", "/app", line=9))
    assert a == b and a.span.start == 3 and b.line == 9


# ---- the converters build their objects without the dataclass __init__ (base.build) ---------
