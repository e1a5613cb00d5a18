"""The shared build cache through a registry that wants a login (htpasswd Basic auth over TLS
with a CA the test makes): --cache-to and --cache-from use the stored credentials as push and
pull do, and without them the export fails in one line and the import only warns."""

from __future__ import annotations

import pytest
from support.cacheshare import SAMPLE_STEPS, layer_steps, new_store, run, steps_with
from support.pushpull import cli
from support.registry import serve
from support.registry_auth import htpasswd, isolate, make_tls, trust

from pybuild.cache.cachespec import parse_all
from pybuild.errors import BuildError
from pybuild.progress import BuildWarning, StepCached

pytestmark = [pytest.mark.root, pytest.mark.oracle]
USER, PASSWORD = "carol", "cache me if you can"


@pytest.fixture(scope="module")
def locked(tmp_path_factory):
    """A registry that wants USER's password, over TLS with a CA of its own: (registry, tls)."""
    directory = tmp_path_factory.mktemp("cache-basic")
    tls = make_tls(directory / "tls")
    users = {"realm": "pybuild-test", "path": str(htpasswd(directory / "htpasswd",
                                                           {USER: PASSWORD}))}
    keys = {"certificate": str(tls.cert), "key": str(tls.key)}
    with serve(directory, auth={"htpasswd": users}, tls=keys) as reg:
        yield reg, tls


@pytest.fixture()
def sample(tmp_path):
    from support.cacheshare import sample_context

    return sample_context(tmp_path / "ctx")


def test_cache_through_a_registry_with_basic_auth(monkeypatch, tmp_path, locked, sample,
                                                  busybox_tar):
    registry, tls = locked
    home = isolate(monkeypatch, tmp_path)
    trust(home, registry.host, tls.ca)
    ref = f"{registry.host}/team/locked:cache"
    a = new_store(tmp_path / "a", busybox_tar)
    with pytest.raises(BuildError, match="^exporting cache: .*authentication required"):
        run(a, sample, cache_to=parse_all(f"type=registry,ref={ref}", "to"))
    b = new_store(tmp_path / "b", busybox_tar)
    _, events = run(b, sample, cache_from=parse_all(ref, "from"))
    (warning,) = [e.message for e in events if isinstance(e, BuildWarning)]
    assert warning.startswith("importing cache: ") and "authentication required" in warning

    res = cli(a.root, "login", "-u", USER, "--password-stdin", registry.host,
              input=PASSWORD + "\n")
    assert res.returncode == 0, res.stderr
    image_a, _ = run(a, sample, cache_to=parse_all(f"type=registry,ref={ref}", "to"))
    c = new_store(tmp_path / "c", busybox_tar)
    image_c, events = run(c, sample, cache_from=parse_all(ref, "from"))
    assert steps_with(events, StepCached) == layer_steps(events)
    assert len(layer_steps(events)) == SAMPLE_STEPS
    assert image_c == image_a
