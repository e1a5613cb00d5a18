"""push and pull speed against skopeo copy to and from a local registry, in the same run.

    python3 bench/registry.py [--size-mb 200] [--layers 5] [--rounds 3]

An image of ``--layers`` layers, ``--size-mb`` in all (half incompressible, half word-salad
text), is made once in a pybuild store under /var/tmp and written out as OCI layouts for
skopeo. Debian's docker-registry (distribution 2.8) runs on 127.0.0.1; before every timed
command its storage is wiped and it is restarted, so nothing is on the registry yet (and
neither tool can HEAD or mount its way out of the upload). Then, alternating pybuild and
skopeo each round, medians and ratios (skopeo time / pybuild time; > 1 means pybuild is
faster):

  push gzip   pybuild push (gzip memo warm)        skopeo copy oci:<gzip layout> docker://
              (both upload the same already-compressed blobs)
  push gzip*  pybuild push, memo cleared           skopeo copy oci:<plain layout> docker://
              (both gzip the layers while uploading)
  pull gzip   pybuild pull into an empty store     skopeo copy --dest-decompress docker:// dir:D
              (both download, verify, decompress and write plain layer blobs)

Times include process start-up; pybuild runs from compiled bytecode.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BASE = Path("/var/tmp/pybuild-bench-registry")
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from support.registry import Registry, config_for, free_port  # noqa: E402

IMAGE = "bench/registry:latest"


def pybuild(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "pybuild", "--root", str(root), *args]


def layer(index: int, size: int) -> bytes:
    """One layer's tar: same bytes for the same arguments."""
    rng = random.Random(index)
    words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
             for _ in range(3000)]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        written, i = 0, 0
        while written < size:
            chunk = min(rng.choice([64 << 10, 1 << 20, 4 << 20]), size - written)
            data = rng.randbytes(chunk) if written < size // 2 else \
                b" ".join(rng.choices(words, k=chunk // 5))[:chunk]
            info = tarfile.TarInfo(f"layer{index}/f{i}")
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
            written, i = written + chunk, i + 1
    return buf.getvalue()


def setup(size_mb: int, layers: int) -> None:
    from pybuild.image.canonical import canonical_json
    from pybuild.store import LayerRef, Store

    for path in ("root", "plain", "gzip", "tmp"):
        shutil.rmtree(BASE / path, ignore_errors=True)
    (BASE / "tmp").mkdir(parents=True)
    store = Store(BASE / "root")
    with store.writing():
        refs = [store.put_layer(io.BytesIO(layer(i, (size_mb << 20) // layers)))
                for i in range(layers)]
        config = canonical_json({"architecture": "amd64", "os": "linux",
                                 "rootfs": {"type": "layers",
                                            "diff_ids": [r.diff_id for r in refs]},
                                 "config": {"Cmd": ["sh"]}})
        record = store.commit_image(config, [LayerRef(r.diff_id, r.size) for r in refs])
    store.refs.update(lambda tags, _d: tags.__setitem__(f"docker.io/{IMAGE}", record.id))
    for compression, dest in (("none", "plain"), ("gzip", "gzip")):
        subprocess.run(pybuild(BASE / "root", "save", "--format", "oci-dir", "--compression",
                               compression, "-o", str(BASE / dest), IMAGE), check=True)
    print(f"image: {layers} layers, {record.size / 1e6:.0f} MB uncompressed")


class Server:
    """One registry, wiped and restarted before each timed command."""

    def __init__(self) -> None:
        port = free_port()
        directory = BASE / "registry"
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        self.registry = Registry(directory, port, config_for(directory, port))
        self.host = self.registry.host

    def fresh(self) -> None:
        self.registry.kill()
        shutil.rmtree(self.registry.storage, ignore_errors=True)
        self.registry.start()

    def stop(self) -> None:
        self.registry.kill()


def timed(cmd: list[str]) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["TMPDIR"] = str(BASE / "tmp")
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def forget_remote_and_memo(root: Path, memo: bool) -> None:
    """What a push may skip by: where layers live remotely, and (``memo``) their gzip forms."""
    shutil.rmtree(root / "distribution", ignore_errors=True)
    if memo:
        for path in (root / "compressed").glob("*.json"):
            path.unlink()


def run(rounds: int) -> None:
    server = Server()
    root, pulled, out = BASE / "root", BASE / "pulled", BASE / "out"
    skopeo = ["skopeo", "--tmpdir", str(BASE / "tmp"), "copy", "-q"]
    remote = f"{server.host}/{IMAGE}"
    seeded = False

    def seed() -> None:  # the image on the registry, for the pulls
        nonlocal seeded
        server.fresh()
        subprocess.run(pybuild(root, "tag", IMAGE, remote), check=True)
        forget_remote_and_memo(root, False)
        subprocess.run(pybuild(root, "push", "-q", remote), check=True,
                       stdout=subprocess.DEVNULL)
        seeded = True

    cases = {
        "push gzip": (lambda: pybuild(root, "push", "-q", remote),
                      lambda: skopeo + ["--dest-tls-verify=false", f"oci:{BASE / 'gzip'}:latest",
                                        f"docker://{remote}"], False),
        "push gzip*": (lambda: pybuild(root, "push", "-q", remote),
                       lambda: skopeo + ["--dest-tls-verify=false",
                                         f"oci:{BASE / 'plain'}:latest", f"docker://{remote}"],
                       True),
        "pull gzip": (lambda: pybuild(pulled, "pull", "-q", remote),
                      lambda: skopeo + ["--src-tls-verify=false", "--dest-decompress",
                                        f"docker://{remote}", f"dir:{out}"], None),
    }
    subprocess.run(pybuild(root, "tag", IMAGE, remote), check=True)
    try:
        for name, (ours, theirs, memo) in cases.items():
            times: dict[str, list[float]] = {"pybuild": [], "skopeo": []}
            for _ in range(rounds):
                for tool, cmd in (("pybuild", ours), ("skopeo", theirs)):
                    if memo is None:
                        if not seeded:
                            seed()
                        shutil.rmtree(pulled, ignore_errors=True)
                        shutil.rmtree(out, ignore_errors=True)
                    else:
                        server.fresh()
                        forget_remote_and_memo(root, memo)
                    times[tool].append(timed(cmd()))
            mine, other = (statistics.median(times[t]) for t in ("pybuild", "skopeo"))
            print(f"{name:<11} pybuild {mine:6.2f} s   skopeo {other:6.2f} s   "
                  f"ratio {other / mine:5.2f}x", flush=True)
    finally:
        server.stop()
        shutil.rmtree(pulled, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for tool in ("skopeo", "docker-registry"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed")
    BASE.mkdir(parents=True, exist_ok=True)
    os.chdir(REPO)
    subprocess.run([sys.executable, "-m", "compileall", "-q", "pybuild"], check=True,
                   stdout=subprocess.DEVNULL)
    setup(args.size_mb, args.layers)
    run(args.rounds)


if __name__ == "__main__":
    main()
