"""The exported cache's format (pybuild.cache.cacheformat) and its OCI layout (cachelocal):
entries survive a round trip, tags share a directory, and nothing unchecked is believed."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pybuild.cache.cacheformat import CacheEntry, document, read_entries, read_manifest
from pybuild.cache.cachelocal import LocalSource, write
from pybuild.cache.index import CacheRecord
from pybuild.cache.keys import KeyInputs
from pybuild.errors import ArchiveError, DigestMismatch, ImageError
from pybuild.image import mediatypes as mt
from pybuild.image.manifest import Descriptor
from pybuild.store import Store

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
_hex = st.text("0123456789abcdef", min_size=64, max_size=64)


@st.composite
def entries(draw) -> CacheEntry:
    inputs = KeyInputs.make(
        "sha256:" + draw(_hex), draw(_text), draw(st.dictionaries(_text, _text, max_size=3)),
        draw(st.none() | _hex.map(lambda h: "sha256:" + h)),
        draw(st.dictionaries(_text, _text, max_size=3)))
    if draw(st.booleans()):
        return CacheEntry(CacheRecord(inputs.key(), inputs))
    layer = "sha256:" + draw(_hex)
    digest = draw(_hex)  # one digest names one content, so one size: derived from it
    blob = Descriptor(mt.OCI_LAYER_GZIP, "sha256:" + digest, int(digest[:10], 16))
    return CacheEntry(CacheRecord(inputs.key(), inputs, layer, meta={"size": 7}), blob)


@given(st.lists(entries(), max_size=6, unique_by=lambda e: e.record.key))  # a key: one entry
def test_entries_survive_the_round_trip(items):
    doc = document(items)
    manifest = read_manifest(doc.manifest_bytes, "here")
    assert manifest.config.digest == doc.manifest.config.digest
    back = read_entries(doc.config, manifest, "here")
    assert back == {e.record.key: e for e in items}
    assert document(reversed(items)).manifest_digest == doc.manifest_digest  # one digest


def test_an_entry_that_does_not_hash_to_its_key_is_refused():
    inputs = KeyInputs.make("sha256:" + "0" * 64, "RUN true", {})
    doc = document([CacheEntry(CacheRecord(inputs.key(), inputs))])
    forged = doc.config.replace(b"RUN true", b"RUN evil")
    with pytest.raises(ImageError, match="does not match its inputs"):
        read_entries(forged, doc.manifest, "here")


def test_an_image_manifest_is_not_a_cache():
    raw = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "layers": [],
                      "config": {"mediaType": mt.OCI_CONFIG, "digest": "sha256:" + "1" * 64,
                                 "size": 2}}).encode()
    with pytest.raises(ImageError, match="^here: not a pybuild build cache"):
        read_manifest(raw, "here")


def test_tags_share_a_layout_and_a_tampered_config_is_refused(tmp_path):
    store = Store(tmp_path / "root")
    inputs = KeyInputs.make("sha256:" + "2" * 64, "WORKDIR /x", {})
    doc = document([CacheEntry(CacheRecord(inputs.key(), inputs))])
    layout = tmp_path / "layout"
    write(store, str(layout), "one", doc)
    write(store, str(layout), "two", document([]))
    assert LocalSource(str(layout), "one").entries.keys() == {inputs.key()}
    assert LocalSource(str(layout), "two").entries == {}
    with pytest.raises(ArchiveError, match="no cache tagged 'three'"):
        LocalSource(str(layout), "three")
    config = layout / "blobs/sha256" / doc.manifest.config.digest[7:]
    config.chmod(0o644)
    config.write_bytes(config.read_bytes().replace(b"WORKDIR", b"WORKDIX"))
    with pytest.raises(DigestMismatch, match="digest mismatch"):
        LocalSource(str(layout), "one")
    (layout / "index.json").write_text("{not json")
    with pytest.raises(ArchiveError, match="unreadable index.json"):
        LocalSource(str(layout), "one")
