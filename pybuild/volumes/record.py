"""One volume's metadata (``volumes/<name>/volume.json``) and its ``docker volume inspect`` form."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pybuild.errors import VolumeError

LOCAL = "local"
# docker 23+ labels anonymous volumes so that ``volume prune`` (without --all) finds them
ANONYMOUS_LABEL = "com.docker.volume.anonymous"
# what docker's local driver accepts: a filesystem to mount (type, device, o) or a quota (size)
LOCAL_OPTIONS = ("type", "device", "o", "size")


@dataclass(frozen=True)
class VolumeRecord:
    name: str
    created: str  # RFC 3339, UTC
    driver: str = LOCAL
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    anonymous: bool = False
    # set by the first copy-up attempt: docker copies an image's content into a volume once
    populated: bool = False

    def to_json(self) -> bytes:
        return json.dumps({
            "Name": self.name, "CreatedAt": self.created, "Driver": self.driver,
            "Labels": self.labels, "Options": self.options, "Anonymous": self.anonymous,
            "Populated": self.populated,
        }, sort_keys=True, indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes, where: Path) -> VolumeRecord:
        try:
            doc = json.loads(data)
            record = cls(str(doc["Name"]), str(doc["CreatedAt"]), str(doc["Driver"]),
                         _strings(doc.get("Labels")), _strings(doc.get("Options")),
                         bool(doc.get("Anonymous")), bool(doc.get("Populated")))
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise VolumeError(f"{where}: unreadable volume metadata ({err})") from None
        return record

    def marked_populated(self) -> VolumeRecord:
        return replace(self, populated=True)

    def inspect(self, mountpoint: Path) -> dict[str, Any]:
        """One element of ``docker volume inspect``'s list."""
        return {
            "CreatedAt": self.created, "Driver": self.driver, "Labels": dict(self.labels),
            "Mountpoint": str(mountpoint), "Name": self.name, "Options": dict(self.options),
            "Scope": "local",
        }


def _strings(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError("not an object")
    return {str(k): str(v) for k, v in value.items()}


def check_options(name: str, driver: str, options: dict[str, str]) -> None:
    """Refuse what docker's local driver refuses: another driver, an option it does not know."""
    if driver != LOCAL:
        raise VolumeError(f"create {name}: volume driver {driver!r} not found "
                          f"(only {LOCAL!r} is available)")
    unknown = sorted(set(options) - set(LOCAL_OPTIONS))
    if unknown:
        raise VolumeError(f"create {name}: invalid option {unknown[0]!r} for the local driver "
                          f"(known: {', '.join(LOCAL_OPTIONS)})")
    if "size" in options:  # docker's local driver has it on xfs with project quotas only
        raise VolumeError(f"create {name}: quota size requested but no quota support")
    if ("device" in options or "o" in options) and "type" not in options:
        raise VolumeError(f"create {name}: missing required option \"type\" "
                          "(device and o need it)")
