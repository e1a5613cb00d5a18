"""The store lock: a second writer waits, says so after a second, and proceeds on release."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from pybuild.cli.common import LOCK_WAIT_MESSAGE
from pybuild.errors import LockTimeout
from pybuild.image.config import ImageConfig
from pybuild.store import LayerRef, Store


def make_image(store: Store) -> str:
    layer = store.blobs.put_bytes(b"layer")
    config = ImageConfig(diff_ids=(layer.digest,)).to_bytes()
    return store.commit_image(config, [LayerRef(layer.digest, layer.size)]).id


def test_second_process_waits_and_says_so(tmp_path):
    root = tmp_path / "root"
    store = Store(root)
    image_id = make_image(store)
    err_path = tmp_path / "stderr"
    with store.lock(), open(err_path, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pybuild", "--root", str(root), "tag", image_id, "waited:1"],
            stderr=err, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while LOCK_WAIT_MESSAGE not in err_path.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, "the tag finished while the lock was held"
            time.sleep(0.1)
        assert LOCK_WAIT_MESSAGE in err_path.read_text()
        assert proc.poll() is None
    assert proc.wait(timeout=30) == 0
    assert store.refs.load().tags == {"docker.io/library/waited:1": image_id}


def test_on_wait_is_called_once_after_a_second(tmp_path):
    holder = Store(tmp_path)
    calls: list[float] = []
    waiter = Store(tmp_path, on_wait=lambda: calls.append(time.monotonic()))
    start = time.monotonic()
    with holder.lock():
        def wait_for_lock() -> None:
            with waiter.lock():
                pass

        thread = threading.Thread(target=wait_for_lock)
        thread.start()
        time.sleep(2.5)
    thread.join(10)
    assert len(calls) == 1 and 0.9 <= calls[0] - start < 2.5


def test_lock_timeout(tmp_path):
    holder = Store(tmp_path)
    impatient = Store(tmp_path, lock_timeout=0.2)
    with holder.lock(), pytest.raises(LockTimeout):
        impatient.lock().acquire()


def test_lock_is_reentrant_within_a_store(tmp_path):
    store = Store(tmp_path)
    with store.lock(), store.lock():
        make_image(store)
        store.refs.update(lambda tags, _d: tags.__setitem__("docker.io/library/x:1", "y"))


def test_collection_waits_for_writers(tmp_path):
    from pybuild.store.gc import collect

    writer, collector = Store(tmp_path), Store(tmp_path)
    done = threading.Event()
    with writer.writing():
        unreferenced = writer.blobs.put_bytes(b"not yet in a record")
        thread = threading.Thread(target=lambda: (collect(collector), done.set()))
        thread.start()
        time.sleep(0.5)
        assert not done.is_set() and writer.blobs.has(unreferenced.digest)
    thread.join(10)
    assert done.is_set() and not writer.blobs.has(unreferenced.digest)


def test_shared_writing_lock_spans_threads(tmp_path):
    store = Store(tmp_path)
    first = store.blobs.writer()  # takes the shared lock on this thread
    results = []

    def other_thread() -> None:
        with store.blobs.writer() as out:  # must not wait for the first writer
            out.write(b"second")
        results.append(out.info)
        first.write(b"first")
        results.append(first.commit())  # committed (and released) on another thread

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join(5)
    assert not thread.is_alive() and len(results) == 2
    assert store.writing()._depth == 0  # every holder let go
