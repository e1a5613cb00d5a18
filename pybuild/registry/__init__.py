"""The registry client: the Registry HTTP API v2 / OCI distribution spec over requests.

One job per module:

* ``tls`` (where and how to connect to a host: schemes, certs.d, insecure-registries),
  ``credentials`` (docker's config.json and credential helpers), ``challenge`` (parsing
  WWW-Authenticate), ``auth`` (answering a 401: Basic, and Bearer tokens cached per scope);
* ``transport`` (requests to one host with auth, retries and one-line errors), ``remote``
  (one repository: manifests, blobs, tags), ``manifests`` (what to ask for, which manifest of
  an index to use);
* ``pull`` with ``download`` (a layer checked on its way into the store), ``push`` with
  ``upload`` (monolithic or chunked) and ``distribution`` (which registry blob a stored layer
  came from, for mounts and for pushing without recompressing);
* ``events`` (pull and push progress), ``login`` (``pybuild login``/``logout``).
"""
