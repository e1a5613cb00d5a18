"""Image archives: docker-archive and OCI image layout, written as one tar both readers accept
(as docker 25 does), read back from either, from a pipe, a file or a layout directory."""

from __future__ import annotations

from pybuild.archive.layout import SavedImage
from pybuild.archive.load import LoadedImage, load
from pybuild.archive.save import COMPRESSIONS, FORMATS, save

__all__ = ["COMPRESSIONS", "FORMATS", "LoadedImage", "SavedImage", "load", "save"]
