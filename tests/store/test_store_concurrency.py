"""Several pybuild processes on one store, and pybuild killed mid-import: the store stays sound."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest
from support.archive import pybuild_argv as pb_argv

from pybuild.client import Client


def check_clean(root):
    result = subprocess.run(pb_argv(root, "system", "check"), capture_output=True, text=True)
    assert (result.returncode, result.stdout) == (0, ""), result.stdout + result.stderr


@pytest.mark.slow
def test_four_processes_import_and_tag_at_once(tmp_path, busybox_tar):
    root = tmp_path / "root"
    script = (
        "set -e\n"
        'for i in 1 2; do\n'
        '  "$PY" -m pybuild --root "$ROOT" import "$TAR" "w$N:$i" -c "ENV W=$N-$i" >/dev/null\n'
        '  "$PY" -m pybuild --root "$ROOT" tag "w$N:$i" shared:latest\n'
        '  "$PY" -m pybuild --root "$ROOT" tag "w$N:$i" "shared:w$N"\n'
        "done\n"
    )
    procs = [subprocess.Popen(["bash", "-c", script], env={
        **os.environ, "PY": sys.executable, "ROOT": str(root), "TAR": str(busybox_tar),
        "N": str(n)}, stderr=subprocess.PIPE, text=True) for n in range(4)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    check_clean(root)
    client = Client(root)
    images = client.images.list()
    assert len(images) == 8  # one per (worker, iteration): the configs differ in ENV
    assert len({image.layers for image in images}) == 1  # one shared layer
    tags = {tag for image in images for tag in image.tags}
    assert {f"w{n}:{i}" for n in range(4) for i in (1, 2)} <= tags
    assert {f"shared:w{n}" for n in range(4)} | {"shared:latest"} <= tags
    for n in range(4):
        assert client.images.get(f"shared:w{n}").id == client.images.get(f"w{n}:2").id
    assert len(client.store.layers.chains()) == 1


@pytest.mark.slow
def test_sigkill_during_import_leaves_a_sound_store(tmp_path, busybox_tar):
    root = tmp_path / "root"
    start = time.monotonic()
    subprocess.run(pb_argv(root, "import", busybox_tar, "first"), check=True,
                   capture_output=True)
    duration = time.monotonic() - start
    rng = random.Random(1234)
    for attempt in range(6):
        proc = subprocess.Popen(pb_argv(root, "import", busybox_tar, f"crash:{attempt}",
                                        "-c", f"ENV ATTEMPT={attempt}"),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, duration * 1.1))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        check_clean(root)
    result = subprocess.run(pb_argv(root, "import", busybox_tar, "after"), capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    check_clean(root)
    client = Client(root)
    assert client.images.get("after").layers == client.images.get("first").layers
    subprocess.run(pb_argv(root, "system", "prune", "-f"), check=True, capture_output=True)
    assert os.listdir(root / "tmp") == []
    check_clean(root)
