"""Run benchmark: ``pybuild run --rm IMG true`` against runc, crun and podman, and the leak
figure of many ``run --rm`` cycles, in one run.

    python3 bench/run.py [--rounds 20] [--cycles 1000] [--work /var/tmp/pybuild-bench-run]

Latency (pybuild with --network none, as the others run): the tools take turns within
each round on the same busybox rootfs (pybuild's image; runc and crun run a bundle of the
same tree, its config.json from ``runc spec``); medians and pybuild's ratio to each are
printed. crun 1.8 refuses this host's hybrid cgroups: it is tried and, when it fails, said
so and left out. podman is used when installed. With ``pybuild exec`` there, exec latency
is measured against ``runc exec``.

Leaks: ``--cycles`` ``run --rm`` cycles must leave no new mount (/proc/self/mountinfo),
cgroup (``ctr-*`` under /sys/fs/cgroup), process (with the bench root on its command line),
runc container or state dir. The monitor's VmRSS is read while a container runs, before
and after the cycles (it must stay flat).

pybuild runs as a user's install has it: ``pip install`` of this tree into a fresh venv (no
editable finder, none of the base interpreter's ``.pth`` hooks), its bytecode compiled
(compileall) and PYTHONDONTWRITEBYTECODE unset. Where pip cannot install (no package index), it
runs from the tree, compiled, and says so: that adds the interpreter's site hooks to each run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

from build import _ENTRY, BASE, REPO, compile_tree, sh, timed

PODMAN_HINT = ("podman: not installed, skipped. To compare, install it and run it as the issue "
               "says: podman run --rm --runtime runc --cgroup-manager cgroupfs "
               "--ulimit nofile=20000:20000 --ulimit nproc=32768:32768, with "
               'network_backend="netavark" in containers.conf')


class Pybuild:
    name = "pybuild"

    def __init__(self, work: Path, base_tar: Path, command: list[str]):
        self.root = work / "pybuild-root"
        shutil.rmtree(self.root, ignore_errors=True)
        self.command = command
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        self.env = env if len(command) == 1 else {**env, "PYTHONPATH": str(REPO)}
        self.cli("import", str(base_tar), BASE)

    def cli(self, *args: str) -> str:
        return subprocess.run([*self.command, "--root", str(self.root), *args], check=True,
                              capture_output=True, text=True, env=self.env).stdout

    def run(self) -> None:
        # runc's bundle has a net namespace with only lo, podman runs --network none: the same
        self.cli("run", "--rm", "--network", "none", BASE, "true")

    def has_exec(self) -> bool:
        return "exec" in self.cli("--help")


class Oci:
    """runc or crun on one bundle of the busybox tree, with a state root of its own."""

    def __init__(self, name: str, work: Path, bundle: Path):
        self.name, self.bundle = name, bundle
        self.prefix = [name, "--root", str(work / f"{name}-state")]
        self.count = 0

    def run(self) -> None:
        self.count += 1
        sh([*self.prefix, "run", "--bundle", str(self.bundle), f"bench-{self.count}"])


class Podman:
    name = "podman"

    def __init__(self, work: Path, base_tar: Path):
        self.prefix = ["podman", "--root", str(work / "podman-root"), "--runroot",
                       str(work / "podman-runroot"), "--runtime", "runc",
                       "--cgroup-manager", "cgroupfs"]
        sh([*self.prefix, "import", str(base_tar), BASE])

    def run(self) -> None:
        sh([*self.prefix, "run", "--rm", "--network", "none", "--ulimit",
            "nofile=20000:20000", "--ulimit", "nproc=32768:32768", BASE, "true"])


def user_install(work: Path) -> list[str]:
    """The ``pybuild`` command of a fresh venv with this tree pip-installed and compiled; the
    tree itself (compiled) when pip cannot install it."""
    venv = work / "venv"
    shutil.rmtree(venv, ignore_errors=True)
    sh([sys.executable, "-m", "venv", str(venv)])
    res = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                          "--disable-pip-version-check", str(REPO)],
                         capture_output=True, text=True)
    if res.returncode == 0:
        sh([str(venv / "bin" / "python"), "-m", "compileall", "-q", str(venv / "lib")])
        print(f"pybuild: pip-installed into {venv}, bytecode compiled (compileall), "
              "PYTHONDONTWRITEBYTECODE unset")
        return [str(venv / "bin" / "pybuild")]
    compile_tree(REPO)
    print(f"pybuild: pip could not install into a venv ({res.stderr.strip().splitlines()[-1:]}); "
          f"running from {REPO}, bytecode compiled (compileall), PYTHONDONTWRITEBYTECODE unset")
    return [sys.executable, "-P", "-c", _ENTRY]


def make_bundle(work: Path, base_tar: Path, args: list[str]) -> Path:
    bundle = work / "bundle"
    shutil.rmtree(bundle, ignore_errors=True)
    (bundle / "rootfs").mkdir(parents=True)
    with tarfile.open(base_tar) as tar:
        tar.extractall(bundle / "rootfs", filter="tar")
    sh(["runc", "spec", "--bundle", str(bundle)])
    config = json.loads((bundle / "config.json").read_text())
    config["process"].update(terminal=False, args=args)
    config["root"] = {"path": str(bundle / "rootfs"), "readonly": True}
    (bundle / "config.json").write_text(json.dumps(config, indent=2))
    return bundle


def medians(tools: list, rounds: int, action: Callable[[object], None]) -> dict[str, float]:
    times: dict[str, list[float]] = {t.name: [] for t in tools}
    for _ in range(rounds):
        for tool in tools:
            times[tool.name].append(timed(lambda t=tool: action(t)))
    return {n: statistics.median(v) for n, v in times.items()}


def print_table(title: str, med: dict[str, float]) -> None:
    print(f"{title}: median of each (ms), and pybuild's ratio to it")
    for name, value in med.items():
        ratio = "" if name.startswith("pybuild") else \
            f"   pybuild/{name} {med[next(iter(med))] / value:.2f}x"
        print(f"  {name:<14}{value * 1000:8.1f}{ratio}")


def try_crun(work: Path, bundle: Path) -> Oci | None:
    if shutil.which("crun") is None:
        print("crun: not installed, skipped")
        return None
    crun = Oci("crun", work, bundle)
    try:
        crun.run()
    except subprocess.CalledProcessError as e:
        why = (e.stderr or b"").decode(errors="replace").strip().splitlines()
        print(f"crun: fails on this host ({why[-1] if why else e.returncode}); "
              "compared with runc alone")
        return None
    return crun


def exec_latency(pybuild: Pybuild, runc: Oci, bundle: Path, rounds: int) -> None:
    cid = pybuild.cli("run", "-d", "--network", "none", BASE, "sleep", "3600").strip()
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["args"] = ["sleep", "3600"]
    (bundle / "config.json").write_text(json.dumps(config))
    subprocess.run([*runc.prefix, "delete", "-f", "bench-exec"], capture_output=True)
    # detached, the container keeps runc's stdio: nothing may wait for a pipe's EOF
    subprocess.run([*runc.prefix, "run", "--detach", "--bundle", str(bundle), "bench-exec"],
                   check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    try:
        times: dict[str, list[float]] = {"pybuild": [], "runc": []}
        for _ in range(rounds):
            times["pybuild"].append(timed(lambda: pybuild.cli("exec", cid, "true")))
            times["runc"].append(timed(lambda: sh([*runc.prefix, "exec", "bench-exec",
                                                   "true"])))
        print_table("exec IMG true", {n: statistics.median(v) for n, v in times.items()})
    finally:
        pybuild.cli("rm", "-f", cid)
        subprocess.run([*runc.prefix, "delete", "-f", "bench-exec"], capture_output=True)
        config["process"]["args"] = ["true"]
        (bundle / "config.json").write_text(json.dumps(config))


def snapshot(pybuild: Pybuild) -> dict[str, int]:
    cgroups = sum(1 for _, dirs, _ in os.walk("/sys/fs/cgroup") for d in dirs
                  if d.startswith("ctr-"))
    procs = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        procs += int(os.fsencode(pybuild.root) in cmdline and int(pid) != os.getpid())
    state = pybuild.root / "containers"
    runc = subprocess.run(["runc", "--root", "/run/pybuild/runc", "list", "-q"],
                          capture_output=True, text=True).stdout.split()
    return {"mounts": len(Path("/proc/self/mountinfo").read_text().splitlines()),
            "cgroups": cgroups, "processes": procs, "runc containers": len(runc),
            "state dirs": len(os.listdir(state)) if state.is_dir() else 0}


def monitor_rss(pybuild: Pybuild) -> int:
    """The VmRSS (KiB) of a forked monitor while its container runs."""
    cid = pybuild.cli("run", "-d", "--network", "none", BASE, "sleep", "60").strip()
    try:
        state = json.loads((pybuild.root / "containers" / cid / "state.json").read_text())
        for line in Path(f"/proc/{state['monitor_pid']}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")
    finally:
        pybuild.cli("rm", "-f", cid)


def leaks(pybuild: Pybuild, cycles: int) -> None:
    rss_before = monitor_rss(pybuild)
    before = snapshot(pybuild)
    started = time.perf_counter()
    for _ in range(cycles):
        pybuild.run()
    took = time.perf_counter() - started
    after = snapshot(pybuild)
    rss_after = monitor_rss(pybuild)
    print(f"leaks after {cycles} run --rm cycles ({took / cycles * 1000:.1f} ms each): "
          + ", ".join(f"{k} {after[k] - before[k]:+d}" for k in before))
    print(f"monitor VmRSS while a container runs: {rss_before} KiB before, "
          f"{rss_after} KiB after")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--cycles", type=int, default=1000)
    ap.add_argument("--work", type=Path, default=Path("/var/tmp/pybuild-bench-run"))
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    base_tar = args.work / "busybox.tar"
    sh([str(REPO / "scripts" / "busybox-rootfs.sh"), str(base_tar)])
    pybuild = Pybuild(args.work, base_tar, user_install(args.work))
    bundle = make_bundle(args.work, base_tar, ["true"])
    runc = Oci("runc", args.work, bundle)
    tools: list = [pybuild, runc]
    crun = try_crun(args.work, bundle)
    if crun is not None:
        tools.append(crun)
    if shutil.which("podman"):
        tools.append(Podman(args.work, base_tar))
    else:
        print(PODMAN_HINT)
    for tool in tools:  # warm every page cache once
        tool.run()
    print_table("run --rm IMG true", medians(tools, args.rounds, lambda t: t.run()))
    if pybuild.has_exec():
        exec_latency(pybuild, runc, bundle, args.rounds)
    else:
        print("exec: no pybuild exec yet, skipped")
    leaks(pybuild, args.cycles)


if __name__ == "__main__":
    main()
