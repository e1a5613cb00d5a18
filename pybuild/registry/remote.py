"""One repository on one registry: manifests, blobs and tags over a ``Transport``.

``open_repository`` maps a reference's domain to the host that serves it (docker.io's API is
at registry-1.docker.io) and names what each request needs in the distribution spec's scope
strings.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import requests

from pybuild.errors import RegistryError
from pybuild.image.reference import DEFAULT_DOMAIN, Reference
from pybuild.registry import tls
from pybuild.registry.manifests import ACCEPT, Fetched, classify, digest_of
from pybuild.registry.transport import DEFAULT_BACKOFF, Transport

DOCKER_HUB_API = "registry-1.docker.io"
MAX_TAG_PAGES = 1000


def api_host(domain: str) -> str:
    return DOCKER_HUB_API if domain == DEFAULT_DOMAIN else domain


class Repository:
    """``path`` (``library/busybox``) on the host ``transport`` talks to; ``shown`` is how
    errors name it (``127.0.0.1:5000/app``)."""

    def __init__(self, transport: Transport, path: str, shown: str):
        self.transport = transport
        self.path = path
        self.shown = shown

    def close(self) -> None:
        self.transport.close()

    def scope(self, *actions: str) -> str:
        return f"repository:{self.path}:{','.join(actions or ('pull',))}"

    # --- manifests -------------------------------------------------------------------------
    def manifest(self, reference: str, *, push: bool = False) -> Fetched:
        """The manifest or index a tag or digest names; by digest, its content is checked."""
        sep = "@" if reference.startswith("sha256:") else ":"
        where = f"{self.shown}{sep}{reference}"
        response = self.transport.request(
            "GET", f"/v2/{self.path}/manifests/{reference}", what=where,
            scope=self.scope("pull", "push") if push else self.scope("pull"),
            headers={"Accept": ACCEPT})
        fetched = classify(response.content, response.headers.get("Content-Type", ""), where)
        if sep == "@" and fetched.digest != reference:
            raise RegistryError(f"{where}: digest mismatch: the registry sent content with "
                                f"digest {fetched.digest}")
        return fetched

    def put_manifest(self, reference: str, raw: bytes, media_type: str) -> str:
        where = f"{self.shown}:{reference}"
        response = self.transport.request(
            "PUT", f"/v2/{self.path}/manifests/{reference}", what=where,
            scope=self.scope("pull", "push"), data=raw, headers={"Content-Type": media_type})
        digest = digest_of(raw)
        told = response.headers.get("Docker-Content-Digest")
        if told and told != digest:
            raise RegistryError(f"{where}: the registry computed digest {told}, not {digest}")
        return digest

    # --- blobs -----------------------------------------------------------------------------
    def blob(self, digest: str) -> requests.Response:
        """A streaming GET of a blob (redirects followed); the caller closes it."""
        return self.transport.request("GET", f"/v2/{self.path}/blobs/{digest}",
                                      what=f"{self.shown}@{digest}", scope=self.scope("pull"),
                                      stream=True)

    def has_blob(self, digest: str) -> int | None:
        """The blob's size when the repository has it, else None."""
        response = self.transport.request(
            "HEAD", f"/v2/{self.path}/blobs/{digest}", what=f"{self.shown}@{digest}",
            scope=self.scope("pull", "push"), ok=(404,))
        if response.status_code == 404:
            return None
        return int(response.headers.get("Content-Length") or 0)

    def mount(self, digest: str, source: str) -> str | None:
        """Cross-repository mount of ``digest`` from ``source`` (a path on the same host):
        None when mounted, else the upload URL the registry opened instead."""
        response = self.transport.request(
            "POST", f"/v2/{self.path}/blobs/uploads/", what=f"{self.shown}@{digest}",
            scope=f"{self.scope('pull', 'push')} repository:{source}:pull",
            params={"mount": digest, "from": source})
        if response.status_code == 201:
            return None
        return self.location(response)

    def start_upload(self) -> str:
        response = self.transport.request("POST", f"/v2/{self.path}/blobs/uploads/",
                                          what=self.shown, scope=self.scope("pull", "push"))
        return self.location(response)

    def location(self, response: requests.Response) -> str:
        location = response.headers.get("Location")
        if not location:
            raise RegistryError(f"{self.shown}: the registry opened an upload without a "
                                "Location")
        if location.startswith("/"):
            return self.transport.url(location)
        return location

    # --- tags ------------------------------------------------------------------------------
    def tags(self) -> list[str]:
        """Every tag, following the Link header's pages."""
        out: list[str] = []
        path: str | None = f"/v2/{self.path}/tags/list"
        for _ in range(MAX_TAG_PAGES):
            if path is None:
                break
            response = self.transport.request("GET", path, what=self.shown,
                                              scope=self.scope("pull"))
            try:
                out += [str(t) for t in response.json().get("tags") or ()]
            except (ValueError, AttributeError):
                raise RegistryError(f"{self.shown}: the tag list is not JSON") from None
            path = _next_page(response)
        return out


def _next_page(response: requests.Response) -> str | None:
    link = response.links.get("next", {}).get("url")
    return link or None


def open_repository(ref: Reference, backoff: tuple[float, ...] = DEFAULT_BACKOFF) -> Repository:
    host = api_host(ref.domain)
    shown = ref.name if ref.domain != DEFAULT_DOMAIN else ref.familiar_name
    return Repository(Transport(host, backoff=backoff), ref.path, shown)


def mirrors_for(ref: Reference,
                backoff: tuple[float, ...] = DEFAULT_BACKOFF) -> Iterator[Repository]:
    """Repositories on daemon.json's registry-mirrors, for docker.io images only."""
    if ref.domain != DEFAULT_DOMAIN:
        return
    from pybuild.network.settings import load

    for url in load().registry_mirrors:
        parts = urlsplit(url if "://" in url else f"https://{url}")
        if not parts.netloc:
            continue
        base = tls.endpoint_for(parts.netloc)
        endpoint = tls.Endpoint(parts.netloc, (parts.scheme or "https",), base.verify,
                                base.cert)
        yield Repository(Transport(parts.netloc, endpoint=endpoint, backoff=backoff), ref.path,
                         f"{parts.netloc}/{ref.path}")


def remote_manifest(name: str) -> Fetched:
    """The manifest or index ``name`` (``repo[:tag|@digest]``) names remotely, as sent."""
    from pybuild.image.reference import parse_normalized

    ref = parse_normalized(name)
    repo = open_repository(ref)
    try:
        return repo.manifest(ref.digest or ref.tag or "latest")
    finally:
        repo.close()
