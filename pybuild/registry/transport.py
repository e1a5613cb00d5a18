"""Requests to one registry host: authorization, retries with backoff, one-line errors.

Skeleton (R1 fills it in).
"""
