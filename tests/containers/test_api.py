"""``client.containers`` in docker-py's shape, against real containers."""

from __future__ import annotations

import pytest

from pybuild.client import Client
from pybuild.errors import ContainerError, ContainerNotFound, NetworkNotFound, UsageError


@pytest.fixture
def client(store) -> Client:
    return Client(store.root)


def test_run_returns_the_output_and_raises_with_the_exit_status(client, image):
    assert client.containers.run(image, "echo hello", remove=True) == b"hello\n"
    both = client.containers.run(image, ["sh", "-c", "echo o; echo e >&2"], stderr=True,
                                 remove=True)
    assert both == b"o\ne\n"
    with pytest.raises(ContainerError, match="returned non-zero exit status 4: bad") as err:
        client.containers.run(image, ["sh", "-c", "echo bad >&2; exit 4"], remove=True)
    assert err.value.exit_status == 4
    assert client.containers.list(all=True) == []


def test_a_detached_container_is_listed_waited_for_and_removed(client, image):
    c = client.containers.run(image, ["sh", "-c", "echo up; sleep 30"], detach=True,
                              name="api-detached", labels={"team": "x"},
                              environment={"A": "1"}, volumes={"api-vol": {"bind": "/v"}})
    assert c.status == "running" and len(c.short_id) == 12
    assert [x.id for x in client.containers.list(filters={"label": "team=x"})] == [c.id]
    assert client.containers.get("api-detached").id == c.id
    assert client.containers.get(c.id[:10]).name == "api-detached"
    assert "A=1" in c.attrs["Config"]["Env"]
    assert c.attrs["Mounts"][0]["Name"] == "api-vol" and c.attrs["Mounts"][0]["RW"]
    lines = c.logs(stream=True, follow=True)
    assert next(lines) == b"up\n"
    c.kill("SIGKILL")
    assert c.wait()["StatusCode"] == 137
    assert client.containers.list() == []
    assert [x.id for x in client.containers.list(all=True, filters={"exited": 137})] == [c.id]
    c.remove()
    with pytest.raises(ContainerNotFound):
        client.containers.get("api-detached")


def test_bad_options_are_refused_before_anything_is_made(client, image):
    with pytest.raises(UsageError):
        client.containers.run(image, "true", restart_policy="sometimes")
    with pytest.raises(UsageError):
        client.containers.run(image, "true", no_such_option=1)
    with pytest.raises(NetworkNotFound):  # a user network's name, but no such network
        client.containers.run(image, "true", network_mode="bridge2")
    assert client.containers.list(all=True) == []


@pytest.mark.parametrize("mode", ["none", "host"])
def test_ports_where_the_network_cannot_publish_them_are_a_warning(client, cli, image, mode):
    container = client.containers.create(image, ["true"], network_mode=mode,
                                         ports={"80/tcp": 18080})
    try:
        assert [w for w in container.warnings if "Published ports are discarded" in w]
    finally:
        container.remove()
    res = cli("run", "--rm", "--network", mode, "-p", "18080:80", image, "true")
    assert res.returncode == 0 and "WARNING: Published ports are discarded" in res.stderr
