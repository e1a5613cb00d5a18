"""``pybuild login``/``logout``. Skeleton (R2 fills it in)."""
