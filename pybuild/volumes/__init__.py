"""Docker's local volumes without a daemon: ``<store root>/volumes/<name>/_data``.

``VolumeStore`` (service.py) does the work on a Store: create, get, list with docker's filters,
remove (refused while a container uses the volume), prune, inspect, and copy-up from an image
(copyup.py). ``VolumeCollection`` / ``Volume`` (api.py) are ``client.volumes`` in docker-py's
shape.
"""

from pybuild.volumes.api import Volume, VolumeCollection
from pybuild.volumes.names import anonymous_name, check_name
from pybuild.volumes.record import ANONYMOUS_LABEL, VolumeRecord
from pybuild.volumes.service import InUse, PruneResult, VolumeStore

__all__ = ["ANONYMOUS_LABEL", "InUse", "PruneResult", "Volume", "VolumeCollection",
           "VolumeRecord", "VolumeStore", "anonymous_name", "check_name"]
