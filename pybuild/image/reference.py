"""Image references, normalised the way docker's distribution/reference does it.

``busybox`` is ``docker.io/library/busybox:latest``, ``user/app`` is ``docker.io/user/app:latest``,
a first component with a dot, a colon or exactly ``localhost`` is a registry. Shown short
("familiar") the way docker shows them: ``busybox``, ``user/app``, ``localhost:5000/x``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pybuild.errors import ReferenceError_

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_PATH = rf"{_COMPONENT}(?:/{_COMPONENT})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

_REFERENCE_RE = re.compile(
    rf"(?P<name>(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_PATH}))"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?",
    re.ASCII,
)
_DOMAIN_RE = re.compile(_DOMAIN, re.ASCII)
_PATH_RE = re.compile(_PATH, re.ASCII)
_TAG_RE = re.compile(_TAG, re.ASCII)
_ID_RE = re.compile(r"[a-f0-9]{64}")
_SHA256_RE = re.compile(r"sha256:[a-f0-9]{64}")


@dataclass(frozen=True, order=True)
class Reference:
    """A fully qualified reference: ``domain/path[:tag][@digest]``."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """The repository, fully qualified: ``docker.io/library/busybox``."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """The repository as docker shows it: ``busybox``, ``user/app``, ``quay.io/x/y``."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        if self.path.startswith(OFFICIAL_PREFIX) and "/" not in self.path[len(OFFICIAL_PREFIX):]:
            return self.path[len(OFFICIAL_PREFIX):]
        return self.path

    def familiar(self) -> str:
        return self.familiar_name + self._suffix()

    def _suffix(self) -> str:
        return (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def __str__(self) -> str:
        return self.name + self._suffix()

    def with_tag(self, tag: str) -> Reference:
        if not _TAG_RE.fullmatch(tag):
            raise ReferenceError_(f"invalid tag format: {tag!r}")
        return Reference(self.domain, self.path, tag, None)

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.domain, self.path, None, digest)

    def normalized(self) -> Reference:
        """What docker stores: ``:latest`` when there is neither tag nor digest; a digest wins."""
        if self.digest:
            return Reference(self.domain, self.path, None, self.digest)
        return Reference(self.domain, self.path, self.tag or DEFAULT_TAG, None)


def split_domain(name: str) -> tuple[str, str]:
    """Docker's splitDockerDomain: which part of ``name`` is a registry, which the path."""
    slash = name.find("/")
    first = name[:slash] if slash >= 0 else ""
    if slash < 0 or (
        not any(c in first for c in ".:") and first != "localhost" and first.lower() == first
    ):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, name[slash + 1:]
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_PREFIX + remainder
    return domain, remainder


def parse(text: str) -> Reference:
    """Parse and normalise like docker's ParseNormalizedNamed (no default tag added)."""
    if _ID_RE.fullmatch(text):
        raise ReferenceError_(
            f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings"
        )
    if not text:
        raise ReferenceError_("invalid reference format: empty reference")
    domain, remainder = split_domain(text)
    repo = remainder.split("@", 1)[0].split(":", 1)[0]
    if repo.lower() != repo:
        raise ReferenceError_(
            f"invalid reference format: repository name ({repo}) must be lowercase"
        )
    match = _REFERENCE_RE.fullmatch(f"{domain}/{remainder}")
    if match is None or match.group("domain") is None:
        raise ReferenceError_(f"invalid reference format: {text!r}")
    if len(match.group("name")) > NAME_MAX:
        raise ReferenceError_(
            f"invalid reference format: repository name must not be more than {NAME_MAX} "
            f"characters: {text!r}"
        )
    digest = match.group("digest")
    if digest and digest.startswith("sha256:") and not _SHA256_RE.fullmatch(digest):
        raise ReferenceError_(f"invalid reference format: bad sha256 digest in {text!r}")
    return Reference(match.group("domain"), match.group("path"), match.group("tag"), digest)


def parse_normalized(text: str) -> Reference:
    """``parse`` plus docker's defaults: ``:latest`` when untagged, tag dropped beside a digest."""
    return parse(text).normalized()


def is_valid_domain(text: str) -> bool:
    return bool(_DOMAIN_RE.fullmatch(text))


def is_valid_path(text: str) -> bool:
    return bool(_PATH_RE.fullmatch(text))


def familiar(text: str) -> str:
    """A fully qualified reference string shown as docker shows it."""
    return parse(text).familiar()
