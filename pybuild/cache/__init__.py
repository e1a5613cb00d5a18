"""The build cache: step keys, the index of step results, cache-mount storage, the context
file-hash memo, and the no-change replay (``replay``) that answers before the builder loads.

Nothing here knows Dockerfile syntax: callers hand over instruction text, argument values and
content digests; the cache hands back result records and explanations of misses.
"""
