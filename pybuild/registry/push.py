"""``pybuild push``: a stored image to a registry. Skeleton (R1 fills it in)."""
