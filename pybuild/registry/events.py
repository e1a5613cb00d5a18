"""Pull and push progress: the events ``pull`` and ``push`` hand to ``on_event``.

Kept apart from ``pybuild.progress`` (the build's events and renderers), which the registry
code does not need to load; the CLI renders these in docker's words (``cli.registry``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RegistryStatus:
    """A line about the whole operation: ``latest: Pulling from library/busybox``,
    ``Digest: sha256:...``, ``Status: Downloaded newer image for busybox:latest``."""

    message: str


@dataclass(frozen=True)
class BlobProgress:
    """One layer's state, in docker's words: ``Pulling fs layer``, ``Downloading``,
    ``Download complete``, ``Already exists``, ``Pull complete``; ``Preparing``, ``Pushing``,
    ``Pushed``, ``Layer already exists``, ``Mounted from user/other``.

    ``digest`` is the layer's blob digest in the registry; ``current``/``total`` count bytes
    while downloading or pushing.
    """

    digest: str
    status: str
    current: int = 0
    total: int = 0

    @property
    def short(self) -> str:
        return self.digest.removeprefix("sha256:")[:12]


PROGRESS_STATES = ("Downloading", "Pushing")


def line(event: RegistryStatus | BlobProgress) -> str | None:
    """The line docker prints off a terminal for ``event``; None for byte counts."""
    if isinstance(event, RegistryStatus):
        return event.message
    return None if event.status in PROGRESS_STATES else f"{event.short}: {event.status}"


class PlainLines:
    """A build's plain renderer shows a pull (FROM an image not yet here) in docker's lines."""

    def _write(self, text: str) -> None: ...

    def _on_RegistryStatus(self, e: RegistryStatus | BlobProgress) -> None:  # noqa: N802
        text = line(e)
        if text is not None:
            self._write(text)

    _on_BlobProgress = _on_RegistryStatus


class TtyLines:
    """A build's tty renderer keeps a pull's lines as permanent lines above the live area."""

    def _on_RegistryStatus(self, e: RegistryStatus | BlobProgress) -> list[str]:  # noqa: N802
        text = line(e)
        return [] if text is None else [text]

    _on_BlobProgress = _on_RegistryStatus
