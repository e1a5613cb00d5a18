"""The store lock: a second writer waits, says so after a second, and proceeds on release.

Every wait here is bounded (lock timeouts, join and process timeouts, daemon threads), so a
broken lock fails the test within seconds instead of hanging the run.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pybuild.cli.common import LOCK_WAIT_MESSAGE
from pybuild.errors import LockTimeout
from pybuild.image.config import ImageConfig
from pybuild.store import LayerRef, Store

BOUND = 10.0  # seconds: far more than any wait here needs


def bounded_store(root: Path, *, lock_timeout: float = BOUND, **kwargs) -> Store:
    """A store whose locks give up (LockTimeout) rather than wait forever."""
    return Store(root, lock_timeout=lock_timeout, **kwargs)


def start(target: Callable[[], object]) -> threading.Thread:
    """A daemon thread: one stuck on a broken lock cannot keep pytest from exiting."""
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def finish(thread: threading.Thread) -> None:
    thread.join(BOUND)
    assert not thread.is_alive(), f"still waiting after {BOUND:g}s"


def make_image(store: Store) -> str:
    layer = store.blobs.put_bytes(b"layer")
    config = ImageConfig(diff_ids=(layer.digest,)).to_bytes()
    return store.commit_image(config, [LayerRef(layer.digest, layer.size)]).id


def test_second_process_waits_and_says_so(tmp_path):
    root = tmp_path / "root"
    store = bounded_store(root)
    image_id = make_image(store)
    err_path = tmp_path / "stderr"
    with open(err_path, "wb") as err:
        with store.lock():
            proc = subprocess.Popen(
                [sys.executable, "-m", "pybuild", "--root", str(root), "tag", image_id,
                 "waited:1"], stderr=err, stdout=subprocess.DEVNULL)
            try:
                deadline = time.monotonic() + BOUND
                while (LOCK_WAIT_MESSAGE not in err_path.read_text()
                       and time.monotonic() < deadline):
                    assert proc.poll() is None, "the tag finished while the lock was held"
                    time.sleep(0.1)
                assert LOCK_WAIT_MESSAGE in err_path.read_text()
                assert proc.poll() is None
            except BaseException:
                proc.kill()
                proc.wait(BOUND)
                raise
        try:
            assert proc.wait(timeout=2 * BOUND) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(BOUND)
    assert store.refs.load().tags == {"docker.io/library/waited:1": image_id}


def test_on_wait_is_called_once_after_a_second(tmp_path):
    holder = bounded_store(tmp_path)
    calls: list[float] = []
    waiter = bounded_store(tmp_path, on_wait=lambda: calls.append(time.monotonic()))
    start_time = time.monotonic()

    def wait_for_lock() -> None:
        with waiter.lock():
            pass

    with holder.lock():
        thread = start(wait_for_lock)
        time.sleep(2.5)
    finish(thread)
    assert len(calls) == 1 and 0.9 <= calls[0] - start_time < 2.5


def test_lock_timeout(tmp_path):
    holder = bounded_store(tmp_path)
    impatient = bounded_store(tmp_path, lock_timeout=0.2)
    raised: list[BaseException] = []

    def try_lock() -> None:  # on a thread, so a timeout that never fires cannot hang us
        try:
            impatient.lock().acquire()
        except LockTimeout as err:
            raised.append(err)

    with holder.lock():
        finish(start(try_lock))
    assert raised


def test_lock_is_reentrant_within_a_store(tmp_path):
    store = bounded_store(tmp_path)  # a second acquire that blocked would time out
    with store.lock(), store.lock():
        make_image(store)
        store.refs.update(lambda tags, _d: tags.__setitem__("docker.io/library/x:1", "y"))


def test_collection_waits_for_writers(tmp_path):
    from pybuild.store.gc import collect

    writer, collector = bounded_store(tmp_path), bounded_store(tmp_path)
    done = threading.Event()
    with writer.writing():
        unreferenced = writer.blobs.put_bytes(b"no record names this")
        thread = start(lambda: (collect(collector), done.set()))
        time.sleep(0.5)
        assert not done.is_set() and writer.blobs.has(unreferenced.digest)
    finish(thread)
    assert done.is_set() and not writer.blobs.has(unreferenced.digest)


def test_shared_writing_lock_spans_threads(tmp_path):
    store = bounded_store(tmp_path)
    first = store.blobs.writer()  # takes the shared lock on this thread
    results = []

    def other_thread() -> None:
        with store.blobs.writer() as out:  # must not wait for the first writer
            out.write(b"second")
        results.append(out.info)
        first.write(b"first")
        results.append(first.commit())  # committed (and released) on another thread

    finish(start(other_thread))
    assert len(results) == 2
    assert store.writing()._depth == 0  # every holder let go
