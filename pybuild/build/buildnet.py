"""A RUN on the default bridge: the build's ``--network default`` (its default) and
``RUN --network=default``, as docker's builder runs steps with networking.

Each such RUN is on the bridge for as long as its sandbox lives, as a container would be:
``pybuild.network.endpoints`` gives it an address and the bridge's rules before the sandbox
starts, plugs the veth into its PID 1 from the sandbox's prepare step, and undoes all of it
when the step ends, whatever happened. Its /etc/hosts stays BuildKit's (which does not name
the step's address), its resolv.conf loses the host's loopback resolvers (unreachable from a
netns of its own).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from pybuild.randomid import hex_id

BRIDGE = "bridge"  # the default bridge's network name, as docker's


@contextlib.contextmanager
def default_bridge(store_root: Path, state_dir: Path, hostname: str
                   ) -> Iterator[Callable[[int], None]]:
    """The step on the default bridge while the block runs; yields the sandbox's prepare
    step (plug the veth into PID 1's netns). ``state_dir`` (made here) holds the endpoint's
    record, as a container's state dir does."""
    from pybuild.network import endpoints

    (state_dir / "etc").mkdir(parents=True)

    step_id = hex_id()  # a container id's shape: names its veth and rules
    made = endpoints.attach(store_root, state_dir, container_id=step_id, name="",
                            hostname=hostname, requests=(endpoints.Request(BRIDGE),))
    try:
        yield made.plug
    finally:
        endpoints.detach(store_root, state_dir, step_id)
