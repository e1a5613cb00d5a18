"""Container networking: the daemon settings file, IPAM, bridges and veths (pyroute2), NAT and
published ports (nftables' JSON interface) and user networks.

- ``settings``: ``/etc/pybuild/daemon.json`` (or ``$PYBUILD_CONFIG``) with dockerd's keys.
- ``ipam``: addresses per network, persisted and flock-ed under the store root.
- ``nft``: a ctypes binding to libnftables and the rules of pybuild's own table.
- ``links``: bridges, veth pairs, addresses and routes inside a container's netns.
- ``model``: network records under ``<root>/networks/<id>/``.
- ``predefined``: ``bridge`` (the default bridge's record, from the settings), ``host``, ``none``.
- ``ports``: docker's ``-p`` forms and ``-P``, free and taken host ports.
- ``api``: ``client.networks`` in docker-py's shape (``netfilters``: its filters,
  ``netoptions``: the ``-o`` options ``create`` takes).
"""
