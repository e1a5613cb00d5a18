"""The build cache: step keys, the index of step results, cache-mount storage, the context
file-hash memo, the no-change replay (``replay``) that answers before the builder loads, and
the cache shared between machines (``shared``: ``--cache-to`` / ``--cache-from``).

Nothing here knows Dockerfile syntax: callers hand over instruction text, argument values and
content digests; the cache hands back result records and explanations of misses.
"""
