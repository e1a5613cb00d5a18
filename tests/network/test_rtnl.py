"""rtnl's requests against the kernel, checked with ``ip -j``: a missing link is None, the
kernel's refusals are OSErrors with its errno, a dump reads every part; all names are the
test's own."""

import errno
import os

import pytest
from support.net import ip_json, unique

from pybuild.network import rtnl

pytestmark = pytest.mark.root


def test_link_lookup_and_refusals(made_links):
    name = unique()
    made_links.append(name)
    with rtnl.Rtnl() as ip:
        assert ip.link(name) is None
        ip.add_link(name, "bridge")
        index = ip.link(name)["index"]
        with pytest.raises(FileExistsError):
            ip.add_link(name, "bridge")
        ip.add_address(index, "10.235.9.1", 24)
        with pytest.raises(FileExistsError):
            ip.add_address(index, "10.235.9.1", 24)
        ip.set_link(index, up=True, attrs=[("IFLA_MTU", 1280)])
        assert ("10.235.9.1", 24) in ip.addresses(index)
        ip.del_link(index)
        with pytest.raises(OSError) as err:
            ip.del_link(index)
        assert err.value.errno == errno.ENODEV
    assert name not in {link["ifname"] for link in ip_json("link")}


def test_a_dump_reads_every_part(made_links):
    """More links than one recv() of 64 KiB holds (~1.5 KiB each): every one comes back."""
    names = [unique() for _ in range(60)]
    made_links.extend(names)
    with rtnl.Rtnl() as ip:
        for name in names:
            ip.add_link(name, "bridge")
        found = {link.get_attr("IFLA_IFNAME") for link in
                 ip.request("ifinfmsg", rtnl.RTM_GETLINK, rtnl.NLM_F_DUMP)}
    assert set(names) <= found


def test_a_socket_in_another_netns_leaves_this_thread_here(netns_pid):
    before = os.readlink("/proc/thread-self/ns/net")
    with rtnl.Rtnl(f"/proc/{netns_pid}/ns/net") as ns:
        assert ns.link("lo") is not None and ns.link("eth0") is None
        assert [link["index"] for link in ns.request("ifinfmsg", rtnl.RTM_GETLINK,
                                                       rtnl.NLM_F_DUMP)] == [1]
    assert os.readlink("/proc/thread-self/ns/net") == before
    with pytest.raises(FileNotFoundError):
        rtnl.Rtnl("/proc/self/ns/" + unique("none"))
