"""An OCI bundle for a RunSpec, and running it with runc.

    bundle = write_bundle(state_dir / "bundle", spec, cgroups_path="/pybuild/c0ffee")
    try:
        code = run_runc(bundle, "c0ffee", stdout=out_fd, stderr=err_fd)
    finally:
        remove_bundle(bundle)

The bundle is ``config.json`` (``ocispec.to_oci``) plus ``rootfs``: the spec's overlay
mounted there in the host's mount namespace (runc takes a directory, not overlay options),
or a bind of a plain rootfs dir. ``remove_bundle`` unmounts it before removing anything,
so the image's layers are never reached through the mount.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import IO

from pybuild.errors import RunnerError
from pybuild.runner import libc, mounts
from pybuild.runner.ocispec import to_oci
from pybuild.runner.runc import DEFAULT_ROOT, Runc, binary, check_id, log_errors
from pybuild.runner.spec import RunSpec, validate

__all__ = ["exec_failure", "mounts_under", "remove_bundle", "run_runc", "unmount_rootfs",
           "write_bundle"]

Stream = int | IO[bytes] | IO[str] | None


def write_config(dir: Path, spec: RunSpec, *, cgroups_path: str | None = None) -> Path:
    """Only the bundle's config.json (and its empty ``rootfs``): what pybuild's own sandbox
    runs is this spec, its rootfs mounted in the sandbox's private mount namespace."""
    dir = Path(dir)
    rootfs = dir / "rootfs"
    rootfs.mkdir(parents=True, exist_ok=True)
    config = to_oci(spec, os.fspath(rootfs), cgroups_path=cgroups_path)
    tmp = dir / "config.json.tmp"
    tmp.write_text(json.dumps(config, indent=2) + "\n")
    tmp.replace(dir / "config.json")
    return dir


def write_bundle(dir: Path, spec: RunSpec, *, cgroups_path: str | None = None) -> Path:
    """Write config.json and mount the rootfs under ``dir`` (created); returns ``dir``."""
    validate(spec)
    dir = Path(dir)
    rootfs = dir / "rootfs"
    if mounts_under(rootfs):  # not ours to unmount on failure
        raise RunnerError(f"bundle {dir}: rootfs is mounted already")
    try:
        rootfs.mkdir(parents=True, exist_ok=True)
        _mount_rootfs(spec, os.fspath(rootfs))
        write_config(dir, spec, cgroups_path=cgroups_path)
    except OSError as e:
        unmount_rootfs(dir)
        raise RunnerError(f"bundle {dir}: {e}") from e
    except BaseException:
        unmount_rootfs(dir)
        raise
    return dir


def _mount_rootfs(spec: RunSpec, target: str) -> None:
    # mounts.mount_rootfs may chdir to shorten long overlay options and then goes to "/";
    # the caller's cwd must survive that.
    cwd = os.open(".", os.O_PATH | os.O_DIRECTORY)
    try:
        mounts.mount_rootfs(spec.rootfs, target)
    finally:
        os.fchdir(cwd)
        os.close(cwd)


def _unescape(field: str) -> str:
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n") \
        .replace("\\134", "\\")


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below ``path`` in this process's mount namespace."""
    prefix = os.path.realpath(path)
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = _unescape(line.split()[4])
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return found


def unmount_rootfs(dir: Path) -> None:
    """Unmount ``dir/rootfs`` (everything stacked on it too); idempotent."""
    for point in sorted(mounts_under(Path(dir) / "rootfs"), key=len, reverse=True):
        try:
            libc.umount2(point)
        except OSError:
            try:  # busy (a process still has a cwd there): detach, the kernel finishes later
                libc.umount2(point, libc.MNT_DETACH)
            except FileNotFoundError:
                pass
    left = mounts_under(Path(dir) / "rootfs")
    if left:
        raise RunnerError(f"bundle {dir}: cannot unmount {left[0]}")


def remove_bundle(dir: Path) -> None:
    """Unmount the rootfs, then remove the bundle dir; idempotent."""
    dir = Path(dir)
    if not dir.exists():
        return
    unmount_rootfs(dir)
    shutil.rmtree(dir)


def run_runc(bundle: Path, container_id: str, *, stdout: Stream, stderr: Stream,
             stdin: Stream = None, root: Path | None = None,
             cancel: threading.Event | None = None, keep_mount: bool = False) -> int:
    """``runc run`` the bundle in the foreground; returns the exit code (128+n for signal n,
    137 after ``cancel``).

    ``stdout``/``stderr``/``stdin``: an fd or a file object, passed straight through (no
    pty); None shares the caller's stdout/stderr and gives /dev/null as stdin. A workload
    that cannot be executed is 127 (missing) or 126, runc's message on stderr; RunnerError
    when runc could not set the container up. Afterwards the container is
    deleted from runc's state (``runc delete -f``) and, unless ``keep_mount``, the rootfs
    is unmounted, whatever happened.
    """
    check_id(container_id)
    path = binary()
    if path is None:
        raise RunnerError("runc is not installed (not found on PATH)")
    bundle = Path(bundle)
    config = json.loads((bundle / "config.json").read_text())
    if config.get("process", {}).get("terminal"):
        raise RunnerError("run_runc: terminal is not supported (no console socket)")
    runc = Runc(root or DEFAULT_ROOT, path)
    runc.prepare()
    fd, log_name = tempfile.mkstemp(prefix=f"{container_id}.", suffix=".log", dir=runc.root)
    os.close(fd)
    log = Path(log_name)
    try:
        command = runc.command("run", "--bundle", os.fspath(bundle), container_id, log=log)
        code = _wait(runc, container_id, command, (stdin, stdout, stderr), cancel)
        errors = log_errors(log)
        if errors and not (cancel is not None and cancel.is_set()):
            return exec_failure(errors[-1])
        return code
    finally:
        runc.delete(container_id)
        log.unlink(missing_ok=True)
        if not keep_mount:
            unmount_rootfs(bundle)


# runc's message when the workload cannot be executed (its stderr, our stderr, has it too).
_EXEC_FAILED = re.compile(r'exec: "[^"]*": (?:(executable file not found in \$PATH|'
                          r'no such file or directory)|permission denied)')


def exec_failure(message: str) -> int:
    """Docker's exit codes for a workload that cannot be executed (127 missing, 126 not
    executable), as the sandbox gives them; any other runc error is a setup failure."""
    match = _EXEC_FAILED.search(message)
    if match is None:
        raise RunnerError(f"runc: {message}")
    return 127 if match.group(1) else 126


def _wait(runc: Runc, container_id: str, command: list[str],
          streams: tuple[Stream, Stream, Stream], cancel: threading.Event | None) -> int:
    stdin, stdout, stderr = streams
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL if stdin is None else stdin,
                            stdout=stdout, stderr=stderr, close_fds=True)
    try:
        while True:
            try:
                code = proc.wait(timeout=None if cancel is None else 0.05)
                break
            except subprocess.TimeoutExpired:
                if cancel is not None and cancel.is_set():
                    runc.kill(container_id)
    except BaseException:
        runc.kill(container_id)
        proc.kill()
        proc.wait()
        raise
    if cancel is not None and cancel.is_set():
        return 137
    # runc already reports a signalled container as 128+n; a signalled runc reads the same.
    return 128 - code if code < 0 else code
