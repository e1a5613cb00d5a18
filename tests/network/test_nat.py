"""Published ports end to end: a server in a netns on a test bridge, reached from the host
through the test table's DNAT, at the bridge's address and at 127.0.0.1."""

import secrets

import pytest
from support.net import fetch, serve_once, unique

from pybuild.network import links, rules

pytestmark = pytest.mark.root


def test_published_port_reaches_the_container(nft_table, made_links, netns_pid):
    nft, table = nft_table
    bridge, host_if = unique(), unique("pbv")
    made_links += [bridge, host_if]
    third = secrets.randbelow(256)
    gw, cip = f"10.251.{third}.1", f"10.251.{third}.2"
    links.ensure_bridge(bridge, f"{gw}/24")
    links.connect(bridge, netns_pid, host_ifname=host_if, address=f"{cip}/24", gateway=gw)
    links.route_localnet(bridge)
    rules.ensure_table(nft, table)
    rules.add_bridge(nft, table, tag="net", bridge=bridge, subnet=f"10.251.{third}.0/24")
    port = 20000 + secrets.randbelow(20000)
    rules.publish(nft, table, tag="c", mappings=[
        rules.PortMapping(port, cip, 8080, host_ip=gw),
        rules.PortMapping(port + 1, cip, 8080, host_ip="127.0.0.1")])
    for address, hport in [(gw, port), ("127.0.0.1", port + 1)]:
        server = serve_once(netns_pid, 8080, "the container")
        try:
            assert fetch(address, hport) == b"hello from the container"
        finally:
            server.kill()
            server.wait()
    rules.unpublish(nft, table, "c")
    server = serve_once(netns_pid, 8080, "the container")
    try:
        with pytest.raises(OSError):  # the rule is gone: nothing listens on the host port
            fetch(gw, port, timeout=2)
    finally:
        server.kill()
        server.wait()
