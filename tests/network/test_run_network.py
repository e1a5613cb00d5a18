"""Containers on networks end to end, with busybox: the default bridge with a published port
and inspect, user networks resolving names and isolated from each other, ``none`` and
``container:X``, churn and a taken host port.

Everything is the test's own: the default bridge is a bridge the module makes (the settings'
``bridge``, docker's ``-b``), the firewall table is named by ``$PYBUILD_NFT_TABLE``, user
networks get subnets of 10.2xx. All of it is removed at the end, also after a failure.
resolv.conf points at the container's own loopback: no name ever goes to an outside server.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time

import pytest
from support.build import BASE, pybuild_cmd, sandbox_store
from support.net import bridge_settings, ip_json, nft_list, unique

pytestmark = pytest.mark.root

PAGE = "hello from httpd"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A test bridge as the default one, a test nft table, a daemon.json saying so
    (support.net.bridge_settings), and the bridges of the test's user networks, removed at
    the end."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    from pybuild.network import links
    from pybuild.network.nft import Table

    with bridge_settings(tmp_path_factory.mktemp("netcfg"), "10.249") as made:
        bridges: list[str] = []  # bridges of the test's user networks
        try:
            yield {**made, "table": Table(made["table"]), "made": bridges}
        finally:
            for name in bridges:
                links.delete(name)


@pytest.fixture(scope="module")
def store(tmp_path_factory, busybox_tar, env):
    store = sandbox_store(tmp_path_factory, busybox_tar, "netrun")
    yield store
    root = store.root / "containers"
    ids = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
    subprocess.run([*pybuild_cmd(store.root), "rm", "-f", *ids], capture_output=True)


@pytest.fixture
def cli(store):
    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        res = subprocess.run([*pybuild_cmd(store.root), *args], capture_output=True,
                             text=True, timeout=60)
        if check and res.returncode:
            raise AssertionError(f"pybuild {' '.join(args)}: {res.returncode} {res.stderr}")
        return res
    return run


@pytest.fixture
def containers(cli, network):
    """Names of containers a test starts; removed afterwards (before its networks)."""
    names: list[str] = []
    yield names
    if names:
        cli("rm", "-f", *names, check=False)


@pytest.fixture
def network(store, env):
    """``network(name)``: a user network with a 10.2xx subnet of its own; removed after."""
    from pybuild.network import endpoints, model

    made = []

    def make(name: str | None = None, **kw) -> model.Network:
        kw.setdefault("subnet", f"10.{240 + secrets.randbelow(9)}.{secrets.randbelow(256)}.0/24")
        record = model.create(store.root, name or unique("net"), **kw)
        made.append(record)
        env["made"].append(record.bridge)
        return record
    yield make
    for record in made:
        try:
            model.remove(store.root, record.id)
        finally:
            endpoints.remove_network(store, record)


def httpd(cli, containers, name: str, *args: str) -> None:
    """busybox httpd serving PAGE at /index.html, detached."""
    containers.append(name)
    cli("run", "-d", "--name", name, "--dns", "127.0.0.1", *args, BASE, "sh", "-c",
        f"mkdir -p /www && echo '{PAGE}' > /www/index.html && exec httpd -f -p 80 -h /www")


def inspect(cli, name: str) -> dict:
    return json.loads(cli("inspect", name).stdout)[0]


def fetch(url: str, timeout: float = 5) -> str:
    import urllib.request

    # no proxy: the suite's conftest sends non-loopback HTTP to a dead one on purpose
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while True:
        try:
            with opener.open(url, timeout=2) as resp:
                return resp.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def wget(cli, containers, *args: str, url: str) -> subprocess.CompletedProcess:
    """busybox wget of ``url`` in a new container, named so that cleanup finds it. Under sh,
    not as its last command (that sh would exec), so that busybox's timeout can end it (PID 1
    ignores SIGTERM); its own -T crashes."""
    name = unique("wget")
    containers.append(name)
    return cli("run", "--rm", "--name", name, "--dns", "127.0.0.1", *args, BASE, "sh", "-c",
               f"timeout 5 wget -q -O - {url}; exit $?", check=False)


def test_default_bridge_publish_and_inspect(cli, containers, env):
    name = unique("web")
    port = 20000 + secrets.randbelow(20000)
    httpd(cli, containers, name, "--network", "bridge", "-p", f"127.0.0.1:{port}:80")
    info = inspect(cli, name)
    settings = info["NetworkSettings"]
    ip = settings["IPAddress"]
    assert ip.startswith(env["subnet"].rpartition(".")[0] + ".")
    assert settings["Gateway"] == env["subnet"].rpartition(".")[0] + ".1"
    assert settings["MacAddress"] == "02:42:" + ":".join(f"{int(b):02x}" for b in ip.split("."))
    assert settings["Ports"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
    assert settings["Networks"]["bridge"]["IPAddress"] == ip
    assert fetch(f"http://127.0.0.1:{port}/") == PAGE + "\n"  # through DNAT
    assert fetch(f"http://{ip}/") == PAGE + "\n"  # the container's own address
    hosts = cli("exec", name, "cat", "/etc/hosts").stdout
    assert f"{ip}\t{info['Config']['Hostname']}" in hosts


def test_a_free_host_port_is_picked(cli, containers):
    name = unique("web")
    httpd(cli, containers, name, "-p", "127.0.0.1::80", "--network", "bridge")
    [binding] = inspect(cli, name)["NetworkSettings"]["Ports"]["80/tcp"]
    assert int(binding["HostPort"]) > 0
    assert fetch(f"http://127.0.0.1:{binding['HostPort']}/") == PAGE + "\n"


def test_user_network_names_resolve(cli, containers, network):
    net = network()
    server = unique("srv")
    httpd(cli, containers, server, "--network", net.name, "--network-alias", "web")
    for host in (server, "web"):
        res = wget(cli, containers, "--network", net.name, url=f"http://{host}/")
        assert res.returncode == 0 and res.stdout == PAGE + "\n", res.stderr
    # the default bridge has no names (as docker's)
    res = wget(cli, containers, "--network", "bridge", url=f"http://{server}/")
    assert res.returncode != 0


def test_user_networks_are_isolated(cli, containers, network):
    one, two = network(), network()
    server = unique("srv")
    httpd(cli, containers, server, "--network", one.name)
    ip = inspect(cli, server)["NetworkSettings"]["Networks"][one.name]["IPAddress"]
    assert wget(cli, containers, "--network", one.name, url=f"http://{ip}/").stdout == PAGE + "\n"
    res = wget(cli, containers, "--network", two.name, url=f"http://{ip}/")
    assert res.returncode != 0 and PAGE not in res.stdout


def test_internal_network_has_no_route_out(cli, network):
    net = network(internal=True)
    res = cli("run", "--rm", "--network", net.name, BASE, "ip", "route")
    assert "default" not in res.stdout and net.subnet in res.stdout


def test_none_has_only_lo(cli):
    res = cli("run", "--rm", "--network", "none", BASE, "ip", "-o", "link")
    assert [line.split(":")[1].strip() for line in res.stdout.splitlines()] == ["lo"]


def test_container_mode_shares_the_address(cli, containers):
    name = unique("web")
    httpd(cli, containers, name, "--network", "bridge")
    ip = inspect(cli, name)["NetworkSettings"]["IPAddress"]
    res = cli("run", "--rm", "--network", f"container:{name}", BASE, "sh", "-c",
              "ip -o -4 addr show eth0; wget -q -O - http://127.0.0.1/; cat /etc/hostname")
    assert f"inet {ip}/" in res.stdout and PAGE in res.stdout
    assert inspect(cli, name)["Config"]["Hostname"] in res.stdout


def test_a_taken_host_port_is_one_line_and_leaves_nothing(cli, containers, env, store):
    name = unique("web")
    port = 20000 + secrets.randbelow(20000)
    httpd(cli, containers, name, "-p", f"{port}:80", "--network", "bridge")
    before = _allocations(store)
    res = cli("run", "--rm", "-p", f"{port}:80", "--network", "bridge", BASE, "true",
              check=False)
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and f"Bind for 0.0.0.0:{port} failed: port is already allocated" \
        in lines[0]
    assert _allocations(store) == before


def _allocations(store) -> dict:
    from pybuild.network import model, predefined

    return model.ipam(store.root, predefined.default_bridge(store.root)).allocations()


def test_churn_leaves_nothing(cli, store, env, network):
    net = network()
    names = [unique("churn") for _ in range(10)]
    ids = []
    for name in names:
        cli("run", "-d", "--name", name, "--network", net.name, "-p", "127.0.0.1::80", BASE,
            "sleep", "60")
        ids.append(inspect(cli, name)["Id"])
    assert len(_veths(net.bridge)) == 10
    cli("rm", "-f", *names)
    assert _veths(net.bridge) == []
    from pybuild.network import model

    assert model.ipam(store.root, net).allocations() == {}
    tags = {r["rule"].get("comment") for r in nft_list(env["table"]) if "rule" in r}
    assert not any(t and t.startswith("ctr-") and t[4:] in {i[:16] for i in ids} for t in tags)


def _veths(bridge: str) -> list[str]:
    return [link["ifname"] for link in ip_json("link", "show", "master", bridge)]


def test_connect_and_disconnect_a_running_container(cli, containers, network, store):
    from pybuild.client import Client

    net = network()
    server = unique("srv")
    httpd(cli, containers, server, "--network", net.name)
    client = unique("cli")
    containers.append(client)
    cli("run", "-d", "--name", client, "--network", "bridge", "--dns", "127.0.0.1", BASE,
        "sleep", "60")

    def get() -> subprocess.CompletedProcess:
        return cli("exec", client, "sh", "-c", f"timeout 5 wget -q -O - http://{server}/; "
                   "exit $?", check=False)
    assert get().returncode != 0  # not on the network yet: no name, no route
    api = Client(store.root)
    api.networks.connect(net.name, client, aliases=["c2"])
    assert get().stdout == PAGE + "\n"
    entry = inspect(cli, client)["NetworkSettings"]["Networks"][net.name]
    assert entry["IPAddress"] and entry["Aliases"] == ["c2"]
    api.networks.disconnect(net.name, client)
    assert get().returncode != 0
    assert net.name not in inspect(cli, client)["NetworkSettings"]["Networks"]
    from pybuild.network import model

    assert set(model.ipam(store.root, net).allocations().values()) == {
        inspect(cli, server)["Id"]}
