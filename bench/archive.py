"""save/load speed against skopeo copy between equivalent formats, in the same run.

    python3 bench/archive.py [--size-mb 500] [--rounds 3]

A ~500 MB rootfs (half incompressible, half word-salad text, a few thousand files) is generated
once under /var/tmp and imported with ``pybuild import``. Then, alternating pybuild and skopeo
each round, medians and ratios (skopeo time / pybuild time; > 1 means pybuild is faster):

  save none   pybuild save --compression none       skopeo copy oci:<plain layout> docker-archive:F
              (both stream uncompressed layers into one tar)
  save gzip   pybuild save (gzip memo warm)         skopeo copy oci:<gzip layout> oci-archive:F
              (both put already-compressed layers into one tar)
  save gzip*  pybuild save, memo cleared            skopeo copy oci:<plain layout> oci-archive:F
              (both gzip the layers while writing; skopeo uses parallel pgzip)
  save zstd*  as above with zstd                    ... --dest-compress-format zstd
  load gzip   pybuild load -i F                     skopeo copy --dest-decompress
                                                    oci-archive:F dir:D
              (both read the archive, verify, decompress, write plain layer blobs)
  load none   same with an uncompressed archive     same

The layouts skopeo reads are written by ``pybuild save --format oci-dir``; every tool gets
--tmpdir / TMPDIR on the same filesystem. Times include process start-up.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BASE = Path("/var/tmp/pybuild-bench-archive")
IMAGE = "localhost/bench/archive:latest"


def pybuild(*args: str) -> list[str]:
    return [sys.executable, "-m", "pybuild", "--root", str(BASE / "root"), *args]


def generate(size_mb: int) -> Path:
    """The rootfs tarball: same bytes for the same size."""
    tarball = BASE / f"rootfs-{size_mb}.tar"
    if tarball.exists():
        return tarball
    tree = BASE / "tree"
    shutil.rmtree(tree, ignore_errors=True)
    rng = random.Random(42)
    words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
             for _ in range(3000)]
    half = size_mb << 19
    written, i = 0, 0
    while written < 2 * half:
        path = tree / f"d{i % 40:02d}" / f"f{i}"
        path.parent.mkdir(parents=True, exist_ok=True)
        size = rng.choice([4 << 10, 64 << 10, 1 << 20, 8 << 20])
        if written < half:  # incompressible: media, compressed archives, binaries' data
            data = rng.randbytes(size)
        else:               # text: sources, docs, configs
            data = b" ".join(rng.choices(words, k=size // 5))[:size]
        path.write_bytes(data)
        written, i = written + size, i + 1
    subprocess.run(["tar", "-C", str(tree), "--sort=name", "--mtime=@0", "--numeric-owner",
                    "-cf", str(tarball), "."], check=True)
    shutil.rmtree(tree)
    return tarball


def timed(cmd: list[str], **kwargs) -> float:
    env = dict(os.environ, TMPDIR=str(BASE / "tmp"))
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, **kwargs)
    return time.perf_counter() - start


def fresh(*paths: Path) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def setup(size_mb: int) -> None:
    tarball = generate(size_mb)
    fresh(BASE / "root", BASE / "plain", BASE / "gzip", BASE / "tmp")
    (BASE / "tmp").mkdir()
    seconds = timed(pybuild("import", str(tarball), IMAGE))
    print(f"import of {tarball.stat().st_size / 1e6:.0f} MB: {seconds:.1f} s")
    for compression, dest in (("none", "plain"), ("gzip", "gzip")):
        subprocess.run(pybuild("save", "--format", "oci-dir", "--compression", compression,
                               "-o", str(BASE / dest), IMAGE), check=True)
    for compression in ("none", "gzip"):
        subprocess.run(pybuild("save", "--compression", compression, "-o",
                               str(BASE / f"archive-{compression}.tar"), IMAGE), check=True)


def clear_memo() -> None:
    """Forget which compressed forms exist, so the next save compresses again."""
    for memo in (BASE / "root" / "compressed").glob("*.json"):
        memo.unlink()


def cases() -> dict[str, tuple]:
    out, skopeo = BASE / "out", ["skopeo", "--tmpdir", str(BASE / "tmp"), "copy", "-q"]
    plain, gz = f"oci:{BASE / 'plain'}:latest", f"oci:{BASE / 'gzip'}:latest"
    return {
        "save none": (lambda: pybuild("save", "--compression", "none", "-o", str(out), IMAGE),
                      lambda: skopeo + [plain, f"docker-archive:{out}:{IMAGE}"], None, out),
        "save gzip": (lambda: pybuild("save", "-o", str(out), IMAGE),
                      lambda: skopeo + [gz, f"oci-archive:{out}:latest"], None, out),
        "save gzip*": (lambda: pybuild("save", "-o", str(out), IMAGE),
                       lambda: skopeo + [plain, f"oci-archive:{out}:latest"], clear_memo, out),
        "save zstd*": (lambda: pybuild("save", "--compression", "zstd", "-o", str(out), IMAGE),
                       lambda: skopeo + ["--dest-compress-format", "zstd", plain,
                                         f"oci-archive:{out}:latest"], clear_memo, out),
        "load gzip": (lambda: _load("gzip"), lambda: skopeo + [
            "--dest-decompress", f"oci-archive:{BASE / 'archive-gzip.tar'}", f"dir:{out}"],
            None, out),
        "load none": (lambda: _load("none"), lambda: skopeo + [
            "--dest-decompress", f"oci-archive:{BASE / 'archive-none.tar'}", f"dir:{out}"],
            None, out),
    }


def _load(compression: str) -> list[str]:
    return [sys.executable, "-m", "pybuild", "--root", str(BASE / "out"), "load", "-q", "-i",
            str(BASE / f"archive-{compression}.tar")]


def run(rounds: int) -> None:
    results: dict[str, dict[str, list[float]]] = {}
    for name, (ours, theirs, before, out) in cases().items():
        times = results.setdefault(name, {"pybuild": [], "skopeo": []})
        for _ in range(rounds):
            for tool, cmd in (("pybuild", ours), ("skopeo", theirs)):
                fresh(out)
                if before is not None:
                    before()
                times[tool].append(timed(cmd()))
        fresh(out)
        mine, other = (statistics.median(times[t]) for t in ("pybuild", "skopeo"))
        print(f"{name:<11} pybuild {mine:6.2f} s   skopeo {other:6.2f} s   "
              f"ratio {other / mine:5.2f}x", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("skopeo") is None:
        sys.exit("skopeo is not installed")
    BASE.mkdir(parents=True, exist_ok=True)
    os.chdir(REPO)
    setup(args.size_mb)
    run(args.rounds)


if __name__ == "__main__":
    main()
