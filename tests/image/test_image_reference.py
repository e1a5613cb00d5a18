"""Reference normalisation as docker's distribution/reference does it."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pybuild.errors import ReferenceError_
from pybuild.image.reference import Reference, parse, parse_normalized

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize("text, full, short", [
    ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("ubuntu:22.04", "docker.io/library/ubuntu:22.04", "ubuntu:22.04"),
    ("library/ubuntu", "docker.io/library/ubuntu:latest", "ubuntu:latest"),
    ("docker.io/library/ubuntu", "docker.io/library/ubuntu:latest", "ubuntu:latest"),
    ("index.docker.io/foo", "docker.io/library/foo:latest", "foo:latest"),
    ("user/app", "docker.io/user/app:latest", "user/app:latest"),
    ("docker.io/foo/bar", "docker.io/foo/bar:latest", "foo/bar:latest"),
    ("a/b/c", "docker.io/a/b/c:latest", "a/b/c:latest"),
    ("localhost/x", "localhost/x:latest", "localhost/x:latest"),
    ("localhost:5000/x", "localhost:5000/x:latest", "localhost:5000/x:latest"),
    ("example.com/foo/bar:v1", "example.com/foo/bar:v1", "example.com/foo/bar:v1"),
    ("127.0.0.1:5000/foo", "127.0.0.1:5000/foo:latest", "127.0.0.1:5000/foo:latest"),
    ("[::1]:5000/foo", "[::1]:5000/foo:latest", "[::1]:5000/foo:latest"),
    ("foo_bar.com:8080", "docker.io/library/foo_bar.com:8080", "foo_bar.com:8080"),
    ("Foo/bar", "Foo/bar:latest", "Foo/bar:latest"),  # an uppercase first part is a registry
    (f"busybox@{DIGEST}", f"docker.io/library/busybox@{DIGEST}", f"busybox@{DIGEST}"),
    (f"quay.io/a/b:tag@{DIGEST}", f"quay.io/a/b@{DIGEST}", f"quay.io/a/b@{DIGEST}"),
])
def test_docker_examples(text, full, short):
    ref = parse_normalized(text)
    assert str(ref) == full
    assert ref.familiar() == short
    assert parse_normalized(full) == ref


def test_familiar_names():
    assert parse("docker.io/library/busybox").familiar_name == "busybox"
    assert parse("docker.io/library/a/b").familiar_name == "library/a/b"
    assert parse("docker.io/user/app").familiar_name == "user/app"
    assert parse("busybox").tag is None
    assert parse(f"x:1@{DIGEST}").tag == "1"  # parse keeps both; normalised drops the tag


@pytest.mark.parametrize("text, message", [
    ("Busybox", "must be lowercase"),
    ("UPPER:tag", "must be lowercase"),
    ("docker.io/Foo", "must be lowercase"),
    ("localhost/Foo", "must be lowercase"),
    ("a" * 64, "64-byte hexadecimal"),
    ("", "empty"),
    ("foo:", "invalid reference format"),
    ("foo/", "invalid reference format"),
    ("foo//bar", "invalid reference format"),
    ("-foo", "invalid reference format"),
    ("foo-", "invalid reference format"),
    ("foo/_bar", "invalid reference format"),
    ("foo:bar:baz", "invalid reference format"),
    ("foo:-tag", "invalid reference format"),
    ("aa/asdf$$^/aa", "invalid reference format"),
    ("foo@sha256:abc", "invalid reference format"),
    ("foo_bar.com:8080/foo", "invalid reference format"),
    ("foo:" + "t" * 129, "invalid reference format"),
    ("a/" * 127 + "bb", "255"),
])
def test_rejects(text, message):
    with pytest.raises(ReferenceError_, match=message):
        parse(text)


def test_tag_with_digest_is_refused_by_with_tag():
    with pytest.raises(ReferenceError_):
        parse("x").with_tag("bad tag")


LOWER = "abcdefghijklmnopqrstuvwxyz0123456789"
ALNUM = st.text(LOWER, min_size=1, max_size=6)
SEPARATOR = st.sampled_from([".", "_", "__", "-", "---"])
COMPONENT = st.builds(lambda first, rest: first + "".join(s + a for s, a in rest),
                      ALNUM, st.lists(st.tuples(SEPARATOR, ALNUM), max_size=2))
TAG_CHARS = LOWER + "ABCXYZ_"
TAG = st.builds(str.__add__, st.sampled_from(TAG_CHARS), st.text(TAG_CHARS + ".-", max_size=12))
HOST = st.builds(lambda a, mid: a + (f"-{mid}" if mid else ""), ALNUM,
                 st.one_of(st.none(), ALNUM))
DOMAIN = st.one_of(
    st.just("docker.io"), st.just("localhost"),
    st.builds(lambda h, p: f"localhost:{p}", HOST, st.integers(1, 65535)),
    st.builds(lambda a, b: f"{a}.{b}", HOST, HOST),
    st.builds(lambda a, b, p: f"{a}.{b}:{p}", HOST, HOST, st.integers(1, 65535)),
)


@st.composite
def references(draw) -> Reference:
    domain = draw(DOMAIN)
    parts = draw(st.lists(COMPONENT, min_size=1, max_size=4))
    if domain == "docker.io":
        # docker's own quirk: a first component that looks like a registry cannot round-trip
        assume("." not in parts[0] and parts[0] != "localhost")
        if len(parts) == 1:
            parts = ["library", *parts]
    path = "/".join(parts)
    assume(len(domain) + 1 + len(path) <= 255)
    tag = draw(st.one_of(st.none(), TAG))
    digest = draw(st.one_of(st.none(), st.just(DIGEST)))
    return Reference(domain, path, tag, digest)


@settings(deadline=None)
@given(references())
def test_round_trip(ref):
    assert parse(str(ref)) == ref
    assert parse(ref.familiar()) == ref
    normal = ref.normalized()
    assert normal.normalized() == normal
    assert parse_normalized(normal.familiar()) == normal
    assert (normal.tag is None) == (normal.digest is not None)


@settings(max_examples=50, deadline=None)
@given(references(), st.integers(0, 200), st.sampled_from("ABCXYZ"))
def test_uppercase_repository_refused(ref, position, letter):
    path = ref.path
    spots = [i for i, c in enumerate(path) if c.isalnum()]
    i = spots[position % len(spots)]
    bad = Reference(ref.domain, path[:i] + letter + path[i + 1:], ref.tag)
    with pytest.raises(ReferenceError_, match="lowercase"):
        parse(str(bad))


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet="!$%^&*()+=<> \t\"'`\\|?,;~", min_size=1, max_size=5),
       references())
def test_garbage_refused(junk, ref):
    with pytest.raises(ReferenceError_):
        parse(ref.familiar_name + junk)
