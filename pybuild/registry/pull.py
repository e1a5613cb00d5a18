"""``pybuild pull``: a remote image into the store. Skeleton (R1 fills it in)."""
