"""Layer creation and extraction speed against the GNU tar | gzip/zstd | sha256sum pipeline.

Run as root: python3 bench/layers.py [--runs N]. The 1 GiB tree (10,000 small files plus a few
large incompressible ones) is generated once under /var/tmp and reused.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pybuild.layers.create import write_layer_from_tree  # noqa: E402
from pybuild.layers.extract import apply_layer  # noqa: E402

BASE = Path("/var/tmp/pybuild-bench-layers")
TREE = BASE / "tree"
TOTAL = 1 << 30
SMALL_FILES = 10_000
LARGE_FILES = 4
PIPELINES = {
    "gzip": "tar -C {tree} -c . | gzip | sha256sum",
    "zstd": "tar -C {tree} -c . | zstd -T0 -q | sha256sum",
}
UNPACKERS = {
    "gzip": "gzip -dc {layer} | tar -x -C {dest}",
    "zstd": "zstd -dc -q {layer} | tar -x -C {dest}",
}


def generate() -> int:
    done = BASE / "tree.done"
    if done.exists():
        return int(done.read_text())
    shutil.rmtree(TREE, ignore_errors=True)
    rng = random.Random(42)
    words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
             for _ in range(2000)]
    small_total = 0
    for i in range(SMALL_FILES):
        path = TREE / f"d{i % 100:02d}" / f"s{i // 100:02d}" / f"file{i}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        size = rng.randint(200, 8000)
        text = b" ".join(rng.choice(words) for _ in range(size // 5))[:size]
        path.write_bytes(text)
        small_total += len(text)
    large = (TOTAL - small_total) // LARGE_FILES
    (TREE / "big").mkdir()
    for i in range(LARGE_FILES):
        with open(TREE / "big" / f"blob{i}.bin", "wb") as f:
            for _ in range(large // (1 << 20)):
                f.write(os.urandom(1 << 20))
    size = sum(p.stat().st_size for p in TREE.rglob("*") if p.is_file())
    done.write_text(str(size))
    return size


class _Null:
    def write(self, data) -> int:
        return len(data)


def best(fn, runs: int, setup=None) -> float:
    times = []
    for _ in range(runs):
        if setup is not None:
            setup()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def shell(cmd: str) -> None:
    subprocess.run(["bash", "-o", "pipefail", "-c", cmd], check=True, stdout=subprocess.DEVNULL)


def bench_create(size: int, runs: int) -> None:
    print(f"{'create':8} {'pybuild MB/s':>13} {'pipeline MB/s':>14} {'ratio':>6}")
    for compression, pipeline in PIPELINES.items():
        ours = best(lambda c=compression: write_layer_from_tree(TREE, _Null(), upper=False,
                                                                compression=c), runs)
        theirs = best(lambda p=pipeline: shell(p.format(tree=TREE)), runs)
        print(f"{compression:8} {size / ours / 1e6:13.1f} {size / theirs / 1e6:14.1f}"
              f" {theirs / ours:6.2f}")


def bench_extract(size: int, runs: int) -> None:
    print(f"{'extract':8} {'pybuild MB/s':>13} {'tar -x MB/s':>14} {'ratio':>6}")
    for compression, unpack in UNPACKERS.items():
        layer = BASE / f"layer.{compression}"
        with open(layer, "wb") as out:
            write_layer_from_tree(TREE, out, upper=False, compression=compression)
        dest = BASE / "out"

        def clean(dest=dest):
            # Start each run with no dirty pages left by the previous one, or whichever runs
            # second is throttled by the kernel's writeback.
            shutil.rmtree(dest, ignore_errors=True)
            dest.mkdir()
            os.sync()

        def ours(layer=layer, dest=dest):
            with open(layer, "rb") as f:
                apply_layer(f, dest)

        def theirs(layer=layer, dest=dest, unpack=unpack):
            shell(unpack.format(layer=layer, dest=dest))

        t_ours, t_theirs = best(ours, runs, clean), best(theirs, runs, clean)
        shutil.rmtree(dest, ignore_errors=True)
        layer.unlink()
        print(f"{compression:8} {size / t_ours / 1e6:13.1f} {size / t_theirs / 1e6:14.1f}"
              f" {t_theirs / t_ours:6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=2, help="best of N runs (default 2)")
    parser.add_argument("--only", choices=("create", "extract"), help="run one half")
    args = parser.parse_args()
    size = generate()
    shell(f"tar -C {TREE} -c . > /dev/null")  # warm the page cache for both sides
    print(f"tree: {size / (1 << 20):.0f} MiB, {SMALL_FILES} small + {LARGE_FILES} large files,"
          f" {os.cpu_count()} cpus")
    if args.only != "extract":
        bench_create(size, args.runs)
    if args.only != "create":
        bench_extract(size, args.runs)


if __name__ == "__main__":
    main()
