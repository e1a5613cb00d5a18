"""A pull over a flaky connection: a server on 127.0.0.1 that speaks just enough of the
distribution API, cuts the layer's first download halfway and fails the manifest once with a
503; the pull retries on its schedule and keeps one good copy."""

from __future__ import annotations

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from support.pushpull import GZIP_LAYER, OCI_CONFIG, OCI_MANIFEST, config_for, layer_tar, sha

from pybuild.errors import RegistryError
from pybuild.registry.pull import pull
from pybuild.store import Store

LIE = "sha256:" + "0" * 64  # a digest the server answers with other content


@pytest.fixture
def flaky():
    tar = layer_tar("flaky", 400_000)
    blob = gzip.compress(tar, mtime=0)
    config = config_for([sha(tar)])
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha(config), "size": len(config)},
        "layers": [{"mediaType": GZIP_LAYER, "digest": sha(blob), "size": len(blob)}]}).encode()
    content = {"/v2/flaky/manifests/1": (manifest, OCI_MANIFEST),
               f"/v2/flaky/manifests/{LIE}": (manifest, OCI_MANIFEST),
               f"/v2/flaky/blobs/{sha(config)}": (config, "application/octet-stream"),
               f"/v2/flaky/blobs/{sha(blob)}": (blob, "application/octet-stream")}
    hits: dict[str, int] = {}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802
            with lock:
                hits[self.path] = n = hits.get(self.path, 0) + 1
            if self.path not in content:
                self.send_error(404)
                return
            body, kind = content[self.path]
            if self.path.endswith("/manifests/1") and n == 1:
                self._answer(503, b"", "text/plain")
                return
            if body is blob and n == 1:  # half the bytes, then the connection goes
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self._answer(200, body, kind)

        def _answer(self, status, body, kind):
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", hits, sha(config), sha(tar), blob
    finally:
        server.shutdown()
        server.server_close()


def test_a_dropped_download_and_a_503_are_retried(flaky, tmp_path):
    host, hits, config, diff_id, blob = flaky
    store = Store(tmp_path / "root")
    [record] = pull(store, f"{host}/flaky:1", backoff=(0.01, 0.01, 0.01))
    assert record.id == config and record.diff_ids == (diff_id,)
    assert hits["/v2/flaky/manifests/1"] == 2
    assert hits[f"/v2/flaky/blobs/{sha(blob)}"] == 2
    assert store.blobs.verify(diff_id) is None
    assert not any((tmp_path / "root" / "tmp").iterdir())


def test_no_retry_left_is_one_line_and_keeps_nothing(flaky, tmp_path):
    host, hits, _config, _diff_id, blob = flaky
    store = Store(tmp_path / "root")
    with pytest.raises(RegistryError) as err:
        pull(store, f"{host}/flaky:1", backoff=())
    assert str(err.value) == f"{host}/flaky:1: 503 Service Unavailable"
    assert hits["/v2/flaky/manifests/1"] == 1
    with pytest.raises(RegistryError) as err:
        pull(store, f"{host}/flaky:1", backoff=())  # the manifest works now, the layer not
    assert str(err.value) == (f"{host}/flaky@{sha(blob)}: the connection dropped during the "
                              "download (ProtocolError)")
    assert store.records.ids() == [] and list(store.blobs.digests()) == []


def test_a_manifest_that_is_not_the_digest_asked_for_is_refused(flaky, tmp_path):
    host, _hits, _config, _diff_id, _blob = flaky
    store = Store(tmp_path / "root")
    with pytest.raises(RegistryError, match=f"^{host}/flaky@{LIE}: digest mismatch"):
        pull(store, f"{host}/flaky@{LIE}", backoff=(0.01,))
    assert store.records.ids() == [] and list(store.blobs.digests()) == []
