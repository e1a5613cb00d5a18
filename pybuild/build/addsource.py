"""What ADD does beyond COPY: extract local archives, fetch URLs.

A local file is extracted when it is a tar archive (plain, gzip, bzip2, xz or zstd): as in
docker, when a tar header reads once it is decompressed; never a URL and never a file inside
a copied directory.
Extraction goes through the safe extractor, so a hostile archive cannot write outside the
destination.
"""

from __future__ import annotations

import bz2
import hashlib
import lzma
import os
import posixpath
import zlib
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlparse

from pybuild.build.staging import Item, apply_chmod
from pybuild.context.walk import SourceEntry
from pybuild.errors import BuildError, LayerError
from pybuild.layers import tarformat as tf


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def is_archive(path: str) -> bool:
    """As docker's ``isArchivePath``: a tar header reads once the file is decompressed. A
    compressed file that holds no tar, and a tar without a single entry, are copied."""
    from pybuild.layers.compression import open_decompressed

    try:
        with open(path, "rb") as f:
            plain = open_decompressed(f)
            head = b""
            while len(head) < tf.BLOCK:
                more = plain.read(tf.BLOCK - len(head))
                if not more:
                    return False
                head += more
            if tf.is_zero_block(head):
                return False
            tf.parse_block(head)
    except (OSError, EOFError, ValueError, LayerError, lzma.LZMAError, zlib.error):
        return False
    return True


def split_archives(root: str, entries: Sequence[SourceEntry]
                   ) -> tuple[list[SourceEntry], list[tuple[int, str]]]:
    """Top-level regular files that are archives leave the copy list to be extracted; each
    as (its source match, its host path)."""
    keep: list[SourceEntry] = []
    archives: list[tuple[int, str]] = []
    for e in entries:
        top = "/" not in e.dest
        path = os.path.join(root, e.relpath)
        if e.kind == "file" and top and e.dest == posixpath.basename(e.relpath) \
                and _named_directly(e) and is_archive(path):
            archives.append((e.match, path))
        else:
            keep.append(e)
    return keep, archives


def _named_directly(e: SourceEntry) -> bool:
    """The entry is the source itself, not a file found inside a named directory."""
    source = e.source.rstrip("/")
    return any(ch in source for ch in "*?[") or posixpath.normpath(source) == e.relpath


def archives_digest(paths: Sequence[str]) -> str:
    h = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            h.update(hashlib.file_digest(f, "sha256").digest())
    return h.hexdigest()


def _decompressed(path: str):
    f = open(path, "rb")  # noqa: SIM115 - handed to the caller
    head = f.read(6)
    f.seek(0)
    if head.startswith(b"BZh"):
        return bz2.open(f)
    if head.startswith(b"\xfd7zXZ\x00"):
        return lzma.open(f)
    return f  # plain, gzip and zstd: the layer reader detects them itself


def extract(path: str, dest_dir: str) -> None:
    """Unpack ``path`` into ``dest_dir``. The entries keep their headers' owners also with
    ``ADD --chown``, as in BuildKit 20.10, which chowns only the directories it makes."""
    from pybuild.layers.extract import apply_layer

    with _decompressed(path) as stream:
        try:
            apply_layer(stream, Path(dest_dir), mode="apply", untar=True)
        except (OSError, EOFError, lzma.LZMAError) as err:
            raise BuildError(f"cannot extract {os.path.basename(path)}: {err}") from None


def fetch(url: str, checksum: str | None, chmod: str | None) -> Item:
    """Download ``url`` (mode 600, Last-Modified as mtime), checked against ``checksum``."""
    import requests

    try:
        resp = requests.get(url, timeout=60)
        resp.raise_for_status()
    except requests.RequestException as err:
        raise BuildError(f"failed to fetch {url}: {err}") from None
    data = resp.content
    if checksum:
        algo, _, want = checksum.partition(":")
        got = hashlib.new(algo, data).hexdigest() if algo in ("sha256", "sha384", "sha512") \
            else None
        if got != want:
            raise BuildError(f"digest mismatch for {url}: expected {checksum}, got "
                             f"{algo}:{got}")
    import email.utils

    mtime = None
    if "Last-Modified" in resp.headers:
        parsed = email.utils.parsedate_to_datetime(resp.headers["Last-Modified"])
        mtime = parsed.timestamp()
    name = posixpath.basename(urlparse(url).path) or "index.html"
    return Item(name, "file", apply_chmod(0o600, chmod, False), data=data, mtime=mtime)
