"""An image by name for a build's FROM or a container: the store's, or pulled, as docker's
``--pull`` policy says.

``missing`` (docker's default for run and create, and a build's FROM) pulls only what the store
does not have; ``always`` asks the registry every time (a pull of an image the store has
fetches no blob again, so it costs a manifest request); ``never`` keeps to the store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pybuild.errors import ImageNotFound, UsageError
from pybuild.store import Store
from pybuild.store.records import ImageRecord

POLICIES = ("missing", "always", "never")


def obtain(store: Store, name: str, *, policy: str = "missing", platform: str | None = None,
           on_event: Callable[[Any], None] | None = None) -> ImageRecord:
    """The record of image ``name`` (a reference or an image id), pulled per ``policy``;
    pull progress goes to ``on_event``. ImageNotFound when ``never`` and not local, or when
    ``name`` is an id, which no registry can be asked for."""
    from pybuild.store.images import resolve

    if policy not in POLICIES:
        raise UsageError(f"invalid pull policy {policy!r}: use {', '.join(POLICIES)}")
    if policy != "always" or not _pullable(name):
        try:
            return resolve(store, name)
        except ImageNotFound:
            if policy == "never" or not _pullable(name):
                raise
        if on_event is not None:
            from pybuild.image.reference import parse
            from pybuild.registry.events import RegistryStatus

            on_event(RegistryStatus(
                f"Unable to find image '{parse(name).normalized().familiar()}' locally"))
    from pybuild.registry.pull import pull

    return pull(store, name, platform=platform, on_event=on_event)[0]


def _pullable(name: str) -> bool:
    """Whether ``name`` is a reference a registry can serve (not an image id or its prefix)."""
    from pybuild.errors import ReferenceError_
    from pybuild.image.reference import parse
    from pybuild.store.blobs import is_digest

    if is_digest(name):
        return False
    try:
        parse(name)
    except ReferenceError_:
        return False
    return True
