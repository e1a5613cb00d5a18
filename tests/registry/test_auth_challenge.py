"""WWW-Authenticate parsing (RFC 7235) and the token bookkeeping that needs no server."""

from __future__ import annotations

import base64
import json

from hypothesis import given
from hypothesis import strategies as st

from pybuild.registry.auth import _expiry, jwt_access
from pybuild.registry.challenge import Challenge, parse, render

TCHARS = "!#$%&'*+.^_`|~0123456789abcdefghijklmnopqrstuvwxyz-"
tokens = st.text(alphabet=TCHARS, min_size=1, max_size=12)
values = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=30)
with_params = st.builds(lambda scheme, params: Challenge(scheme, params), tokens,
                        st.dictionaries(tokens, values, max_size=4))
# a token68 that ends in "=" once reads as an empty parameter, so: none, or "=="
with_token68 = st.builds(lambda scheme, t, pad: Challenge(scheme, token68=t + pad), tokens,
                         st.text(alphabet="abcXYZ019-._~+/", min_size=1, max_size=16),
                         st.sampled_from(["", "=="]))
challenges = st.one_of(with_params, with_token68)


@given(st.lists(challenges, min_size=1, max_size=4))
def test_rendered_challenges_parse_back(items):
    assert parse(render(items)) == items


@given(st.text(max_size=80))
def test_any_header_parses_without_error(header):
    for c in parse(header):
        assert c.scheme == c.scheme.lower() and c.scheme


def test_distribution_bearer_challenge():
    header = ('Bearer realm="https://auth.example/token",service="registry.example",'
              'scope="repository:samalba/my-app:pull,push",error="insufficient_scope"')
    [c] = parse(header)
    assert c.scheme == "bearer"
    assert dict(c.params) == {"realm": "https://auth.example/token",
                              "service": "registry.example",
                              "scope": "repository:samalba/my-app:pull,push",
                              "error": "insufficient_scope"}


def test_several_challenges_quoted_commas_escapes_and_token68():
    header = 'Negotiate abc+/9==, Basic Realm="a, \\"b\\"", Bearer realm=https://x/t,service=s'
    got = parse(header)
    assert [c.scheme for c in got] == ["negotiate", "basic", "bearer"]
    assert got[0].token68 == "abc+/9=="
    assert got[1].params == {"realm": 'a, "b"'}
    assert got[2].params == {"realm": "https://x/t", "service": "s"}


def test_a_bare_scheme_and_empty_elements():
    assert parse(", ,Basic,") == [Challenge("basic")]
    assert parse("") == []


def _jwt(claims: dict) -> str:
    def enc(d: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
    return f"{enc({'alg': 'RS256'})}.{enc(claims)}.c2ln"


def test_jwt_access_claim_or_none():
    access = [{"type": "repository", "name": "a", "actions": ["pull"]}]
    assert jwt_access(_jwt({"access": access})) == access
    assert jwt_access(_jwt({"sub": "x"})) is None
    assert jwt_access("opaque-token") is None
    assert jwt_access("a.!!!.b") is None


def test_expiry_uses_expires_in_issued_at_and_the_spec_default():
    now = 1_700_000_000.0
    assert _expiry({}, now) == now + 60
    assert _expiry({"expires_in": 0}, now) == now + 60
    assert _expiry({"expires_in": 300}, now) == now + 300
    # issued 10 s ago by the server's clock: it lives 10 s less
    assert _expiry({"expires_in": 300, "issued_at": "2023-11-14T22:13:10.123456789Z"},
                   now) == 1_699_999_990.123456 + 300
    # a server clock ahead of ours does not stretch the lifetime
    assert _expiry({"expires_in": 30, "issued_at": "2030-01-01T00:00:00Z"}, now) == now + 30
    assert _expiry({"expires_in": "junk", "issued_at": "junk"}, now) == now + 60
