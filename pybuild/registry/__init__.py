"""The registry client: the Registry HTTP API v2 / OCI distribution spec over requests.

One job per module: ``tls`` (where and how to connect to a host), ``credentials`` (docker's
config.json and credential helpers), ``auth`` (the 401 challenge: Basic and Bearer tokens),
``transport`` (requests with auth, retries and errors), ``pull``, ``push`` and ``manifests``
(the remote side of an image), ``login`` (``pybuild login``/``logout``).
"""
