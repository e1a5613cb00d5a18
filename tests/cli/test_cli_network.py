"""``pybuild network`` and ``pybuild port`` end to end: real processes on a store under
tmp_path, the settings file and firewall table the test's own."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
from support.archive import pybuild_argv
from support.net import unique

from pybuild.cli.network import port_lines
from pybuild.errors import NetworkError, UsageError


@pytest.fixture
def env(tmp_path):
    return {**os.environ, "PYBUILD_CONFIG": str(tmp_path / "daemon.json"),
            "PYBUILD_NFT_TABLE": unique()}  # a removal's teardown finds no table of ours


@pytest.fixture
def pb(tmp_path, env):
    root = tmp_path / "root"

    def run(*args, check=True, stdin=None):
        result = subprocess.run(pybuild_argv(root, *args), capture_output=True, text=True,
                                input=stdin, env=env, timeout=60)
        if check:
            assert result.returncode == 0, result.stderr
        return result

    return run


def one_line_error(result, pattern, code=1):
    assert result.returncode == code, result
    assert result.stderr.count("\n") == 1 and re.search(pattern, result.stderr), result.stderr


def test_create_ls_inspect(pb):
    made = pb("network", "create", "--subnet", "10.77.0.0/24", "--gateway", "10.77.0.254",
              "--ip-range", "10.77.0.128/25", "--internal", "--label", "tier=web",
              "-o", "com.docker.network.driver.mtu=1400", "front").stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", made)
    lines = pb("network", "ls").stdout.splitlines()
    assert re.split(r"\s{2,}", lines[0]) == ["NETWORK ID", "NAME", "DRIVER", "SCOPE"]
    assert [re.split(r"\s+", line)[1:] for line in lines[1:]] == [
        ["bridge", "bridge", "local"], ["front", "bridge", "local"],
        ["host", "host", "local"], ["none", "null", "local"]]
    assert lines[2].split()[0] == made[:12]
    assert made in pb("network", "ls", "-q", "--no-trunc").stdout.split()
    assert pb("network", "ls", "-q", "--filter", "label=tier=web").stdout == made[:12] + "\n"
    assert pb("network", "ls", "--format", "{{.Name}}:{{.Internal}}:{{.Labels}}", "-f",
              "type=custom").stdout == "front:true:tier=web\n"
    row = json.loads(pb("network", "ls", "--format", "json", "-f", "name=front").stdout)
    assert row["ID"] == made[:12] and row["Driver"] == "bridge"
    [attrs] = json.loads(pb("network", "inspect", "front").stdout)
    assert attrs["Id"] == made and attrs["Internal"] is True
    assert attrs["IPAM"]["Config"] == [{"Subnet": "10.77.0.0/24", "Gateway": "10.77.0.254",
                                        "IPRange": "10.77.0.128/25"}]
    assert attrs["Options"] == {"com.docker.network.driver.mtu": "1400"}
    assert pb("network", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Scope}}", "host",
              "bridge").stdout == "host host local\nbridge bridge local\n"
    failed = pb("network", "inspect", "front", "nope", check=False)
    assert json.loads(failed.stdout)[0]["Name"] == "front"
    one_line_error(failed, "network nope not found")


def test_an_overlapping_subnet_is_one_line_and_changes_nothing(pb):
    pb("network", "create", "--subnet", "10.77.0.0/24", "front")
    before = pb("network", "ls", "--no-trunc").stdout
    one_line_error(pb("network", "create", "--subnet", "10.77.0.128/25", "back", check=False),
                   r"^error: network back: subnet 10.77.0.128/25 overlaps 10.77.0.0/24 of "
                   "front$")
    one_line_error(pb("network", "create", "--subnet", "172.29.9.0/24", "back", check=False),
                   "overlaps 172.29.0.0/16 of bridge")
    one_line_error(pb("network", "create", "--subnet", "10.78.0.0/24", "front", check=False),
                   "network with name front already exists")
    assert pb("network", "ls", "--no-trunc").stdout == before


@pytest.mark.parametrize("args, pattern, code", [
    (["-o", "color=blue"], "unknown option 'color' for driver bridge", 1),
    (["-o", "com.docker.network.driver.mtu=big"], "invalid value 'big'", 1),
    (["-o", "=x"], r"invalid --opt '=x' \(expected KEY=VALUE\)", 2),
    (["-d", "overlay"], "unknown driver 'overlay'", 1),
    (["-d", "macvlan"], "macvlan needs -o parent=INTERFACE", 1),
    (["--gateway", "10.1.0.1"], "need --subnet", 1),
    (["--subnet", "10.1.0.0/24", "--subnet", "10.2.0.0/24"], "one subnet per network", 2),
    (["--subnet", "10.1.0.0/24", "--gateway", "10.1.0.1", "--gateway", "10.1.0.2"],
     "needs a --subnet of its own", 2),
    (["--subnet", "10.1.0.7/24"], "invalid --subnet", 1),
    (["--ipv6"], "IPv6 networks are not supported yet", 1),
])
def test_bad_create_options(pb, args, pattern, code):
    one_line_error(pb("network", "create", *args, "back", check=False), pattern, code)
    assert "back" not in pb("network", "ls").stdout


def test_rm_and_prune(pb):
    for name in ("a", "b", "c"):
        pb("network", "create", "--label", f"name={name}", name)
    removed = pb("network", "rm", "a", "bridge", "nope", "b", check=False)
    assert removed.returncode == 1 and removed.stdout == "a\nb\n"
    assert removed.stderr == ("error: bridge is a pre-defined network and cannot be removed\n"
                              "error: network nope not found\n")
    assert pb("network", "rm", "-f", "nope").stdout == ""
    for name in ("host", "none"):
        one_line_error(pb("network", "rm", name, check=False), "pre-defined network")
    pb("network", "create", "d")
    refused = pb("network", "prune", check=False, stdin="n\n")
    assert refused.returncode == 130 and "WARNING! This will remove all custom networks" \
        in refused.stderr
    assert pb("network", "prune", "-f", "--filter", "label=name=c").stdout == \
        "Deleted Networks:\nc\n"
    assert pb("network", "prune", "-f").stdout == "Deleted Networks:\nd\n"
    assert pb("network", "prune", "-f").stdout == ""
    assert pb("network", "ls", "--format", "{{.Name}}").stdout == "bridge\nhost\nnone\n"
    one_line_error(pb("network", "prune", "-f", "--filter", "color=x", check=False),
                   "invalid filter 'color'", 2)


def test_connect_needs_a_container(pb):
    pb("network", "create", "front")
    result = pb("network", "connect", "--alias", "web", "front", "nope", check=False)
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    one_line_error(pb("network", "disconnect", "-f", "nope", "x", check=False),
                   "network nope not found|not available yet")


def test_port_lines():
    published = {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"},
                            {"HostIp": "127.0.0.1", "HostPort": "8081"}],
                 "53/udp": [{"HostIp": "0.0.0.0", "HostPort": "5353"}], "443/tcp": None}
    assert port_lines(published, None, "web") == [
        "53/udp -> 0.0.0.0:5353", "80/tcp -> 0.0.0.0:8080", "80/tcp -> 127.0.0.1:8081"]
    assert port_lines(published, "80", "web") == ["0.0.0.0:8080", "127.0.0.1:8081"]
    assert port_lines(published, "53/udp", "web") == ["0.0.0.0:5353"]
    with pytest.raises(NetworkError, match="no public port '443/tcp' published for web"):
        port_lines(published, "443/tcp", "web")
    with pytest.raises(UsageError, match="invalid port 'http'"):
        port_lines(published, "http", "web")
    assert port_lines({}, None, "web") == []


def test_port_of_a_container(pb, tmp_path, busybox_tar):
    from support.build import BASE, new_store

    from pybuild.client import Client

    new_store(tmp_path / "root", busybox_tar)
    ctr = Client(tmp_path / "root").containers.create(BASE, ["true"], name="portweb")
    published = (ctr.attrs.get("NetworkSettings") or {}).get("Ports") or {}
    assert pb("port", "portweb").stdout == "".join(
        f"{line}\n" for line in port_lines(published, None, "portweb"))
    one_line_error(pb("port", "portweb", "80", check=False),
                   "no public port '80/tcp' published for portweb")
    one_line_error(pb("port", "nope", check=False), "No such container: nope")
