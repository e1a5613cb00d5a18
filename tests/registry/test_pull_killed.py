"""The registry killed in the middle of a pull (after the manifest and config, before the
layers): back 0.3 s later, the pull's retries carry it through; left dead, the pull fails in
one line and the store keeps nothing. (A connection cut halfway through a layer is
test_pull_retry's.)"""

from __future__ import annotations

import threading

import pytest
from support.pushpull import make_image, store_state
from support.registry import serve

from pybuild.errors import RegistryError
from pybuild.registry.events import BlobProgress
from pybuild.registry.pull import pull
from pybuild.registry.push import push
from pybuild.store import Store


@pytest.mark.parametrize("restart", [True, False])
def test_a_registry_killed_mid_pull(tmp_path, restart):
    source = Store(tmp_path / "source")
    with serve(tmp_path) as reg:
        image_id = make_image(source, f"{reg.host}/killed:1", ["q1", "q2"])
        push(source, f"{reg.host}/killed:1")
        store = Store(tmp_path / "root")
        killed: list[threading.Timer] = []

        def on_event(event):
            if isinstance(event, BlobProgress) and event.status == "Pulling fs layer" \
                    and not killed:
                reg.kill()
                killed.append(threading.Timer(0.3, reg.start if restart else lambda: None))
                killed[0].start()

        try:
            if restart:
                [record] = pull(store, f"{reg.host}/killed:1", on_event=on_event,
                                backoff=(0.3, 0.6, 1.2, 2.4))
                assert killed and record.id == image_id
                assert all(store.blobs.verify(d) is None for d in record.diff_ids)
            else:
                with pytest.raises(RegistryError) as err:
                    pull(store, f"{reg.host}/killed:1", on_event=on_event, backoff=(0.05,))
                assert str(err.value).startswith(f"{reg.host}/killed@sha256:")
                assert str(err.value).endswith(": connection refused")
                assert store_state(store) == ([], {}, {}, [])
        finally:
            for timer in killed:
                timer.join()
        tmp = tmp_path / "root" / "tmp"
        assert not tmp.exists() or not any(tmp.iterdir())
