"""Filesystem setup inside the sandbox's mount namespace (called from the sandbox init only).

Paths inside the container are resolved with symlinks followed *within* the new root
(``resolve_in_root``): the mounts happen before pivot_root, so a plain ``mount`` on
``root + "/etc/resolv.conf"`` could follow an image's absolute symlink out to the host.

Mount points the image lacks have to be created, and on an overlay that writes them into
the upper dir. Every created path is recorded in a :class:`MadePoints`: those made for the
spec's ``kept_mount_points`` as kept (the caller leaves them as runc and BuildKit do), the
others to be removed by the caller when they are still empty after the run, so they never
reach a layer.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field

from pybuild import pathwalk
from pybuild.runner import libc
from pybuild.runner.cgroups import Layout
from pybuild.runner.spec import Mount, Rootfs

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_NOSUID_NODEV_NOEXEC = libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC
_FLAG_OPTIONS = {
    "ro": libc.MS_RDONLY, "nosuid": libc.MS_NOSUID, "nodev": libc.MS_NODEV,
    "noexec": libc.MS_NOEXEC, "strictatime": libc.MS_STRICTATIME,
}
_IGNORED_OPTIONS = {"rw", "bind", "rbind", "suid", "dev", "exec"}
# (name, major, minor) of the device nodes every container gets, as in runc.
_DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8),
            ("urandom", 1, 9), ("tty", 5, 0))
_DEV_LINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
              ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2"),
              ("core", "/proc/kcore"), ("ptmx", "pts/ptmx"))


@dataclass
class MadePoints:
    """The mount points the setup created, as container paths: ``kept`` those made for a path
    in ``keep`` (its missing parents too), ``removed`` the others."""

    keep: frozenset[str] = frozenset()
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)

    def for_path(self, path: str) -> list[str]:
        """The list the mount points made for container path ``path`` go to."""
        return self.kept if path in self.keep else self.removed


def resolve_in_root(root: str, path: str) -> str:
    """``path`` inside ``root`` with every symlink resolved as if ``root`` were ``/``."""
    return pathwalk.resolve(path, pathwalk.host_readlink(root))


def ensure_mountpoint(root: str, path: str, is_dir: bool, created: list[str]) -> str:
    """Resolve ``path`` in ``root``, create what is missing, return the host path."""
    cpath = resolve_in_root(root, path)
    parts = [p for p in cpath.split("/") if p]
    for i in range(1, len(parts) + 1):
        sub = "/" + "/".join(parts[:i])
        host = root + sub
        if os.path.lexists(host):
            continue
        if i < len(parts) or is_dir:
            os.mkdir(host, 0o755)
        else:
            os.close(os.open(host, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        created.append(sub)
    return root + cpath


# Keep the upper dir self-describing for the layer differ: no redirect xattrs for renamed
# dirs, no metadata-only copy-ups, whatever the host's overlay module defaults are.
OVERLAY_FEATURES = (("redirect_dir", "off"), ("metacopy", "off"), ("index", "off"))


def _escape(path: str) -> str:
    return path.replace("\\", "\\\\").replace(":", "\\:")


def _overlay_data(rootfs: Rootfs, base: str | None) -> str:
    def rel(p: os.PathLike[str]) -> str:
        return _escape(os.path.relpath(p, base) if base else os.fspath(p))

    data = "lowerdir=" + ":".join(rel(d) for d in rootfs.lowerdirs)
    if rootfs.upperdir is not None and rootfs.workdir is not None:
        data += f",upperdir={rel(rootfs.upperdir)},workdir={rel(rootfs.workdir)}"
    return data + "".join(f",{key}={value}" for key, value in OVERLAY_FEATURES)


def mount_rootfs(rootfs: Rootfs, target: str) -> None:
    """Mount the image's filesystem on ``target`` (a private, empty directory)."""
    if rootfs.path is not None:
        libc.mount(os.fspath(rootfs.path), target, None, libc.MS_BIND | libc.MS_REC)
        return
    if rootfs.upperdir is None and len(rootfs.lowerdirs) == 1:
        # overlay needs two lowers without an upper: a read-only bind does the same.
        libc.mount(os.fspath(rootfs.lowerdirs[0]), target, None, libc.MS_BIND | libc.MS_REC)
        libc.mount(None, target, None, libc.MS_BIND | libc.MS_REMOUNT | libc.MS_RDONLY)
        return
    data = _overlay_data(rootfs, None)
    if len(data) < PAGE_SIZE:
        libc.mount("overlay", target, "overlay", 0, data)
        return
    # mount(2) copies at most one page of options. Overlay resolves relative dirs against
    # our cwd, so first try naming them from their common parent (docker's trick) ...
    dirs = [*rootfs.lowerdirs, *(d for d in (rootfs.upperdir, rootfs.workdir) if d)]
    base = os.path.commonpath([os.fspath(d) for d in dirs])
    data = _overlay_data(rootfs, base)
    if len(data) < PAGE_SIZE:
        os.chdir(base)
        libc.mount("overlay", target, "overlay", 0, data)
        os.chdir("/")
        return
    # ... else pass one layer per fsconfig call (lowerdir+, Linux >= 6.8): no total limit.
    # fsconfig takes values up to 256 bytes, so name each dir by an O_PATH fd.
    fds = [os.open(d, os.O_PATH | os.O_DIRECTORY) for d in dirs]
    try:
        names = [f"/proc/self/fd/{fd}" for fd in fds]
        options = [("lowerdir+", n) for n in names[:len(rootfs.lowerdirs)]]
        options += list(OVERLAY_FEATURES)
        if rootfs.upperdir is not None:
            options += [("upperdir", names[-2]), ("workdir", names[-1])]
        libc.mount_fsconfig("overlay", target, options)
    except OSError as e:
        raise OSError(e.errno, f"overlay options for {len(rootfs.lowerdirs)} layers exceed "
                      f"{PAGE_SIZE} bytes and lowerdir+ failed: {e.strerror}") from e
    finally:
        for fd in fds:
            os.close(fd)


def _make_device(path: str, major: int, minor: int) -> None:
    """mknod (one syscall) where allowed; else, as runc in a user namespace, bind-mount the
    host's node over an empty file."""
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        os.chmod(path, 0o666)  # mknod honours the umask
    except PermissionError:
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o666))
        libc.mount(f"/dev/{os.path.basename(path)}", path, None, libc.MS_BIND)


def mount_standard(root: str, made: MadePoints, with_sys: bool = True) -> None:
    """/proc, a tmpfs /dev with the usual nodes and links, /dev/pts, /dev/shm, /sys."""
    proc = ensure_mountpoint(root, "/proc", True, made.for_path("/proc"))
    libc.mount("proc", proc, "proc", _NOSUID_NODEV_NOEXEC)
    dev = ensure_mountpoint(root, "/dev", True, made.for_path("/dev"))
    libc.mount("tmpfs", dev, "tmpfs", libc.MS_NOSUID | libc.MS_STRICTATIME,
               "mode=755,size=65536k")
    for name, major, minor in _DEVICES:
        _make_device(f"{dev}/{name}", major, minor)
    for name, target in _DEV_LINKS:
        os.symlink(target, f"{dev}/{name}")
    for name, fstype, flags, data in (
        ("pts", "devpts", libc.MS_NOSUID | libc.MS_NOEXEC,
         "newinstance,ptmxmode=0666,mode=0620,gid=5"),
        ("shm", "tmpfs", _NOSUID_NODEV_NOEXEC, "mode=1777,size=65536k"),
        ("mqueue", "mqueue", _NOSUID_NODEV_NOEXEC, None),
    ):
        os.mkdir(f"{dev}/{name}", 0o755)
        libc.mount(fstype, f"{dev}/{name}", fstype, flags, data)
    if with_sys:
        sys_dir = ensure_mountpoint(root, "/sys", True, made.for_path("/sys"))
        libc.mount("sysfs", sys_dir, "sysfs", _NOSUID_NODEV_NOEXEC | libc.MS_RDONLY)


def mount_cgroups(root: str, layout: Layout) -> None:
    """/sys/fs/cgroup read-only, as docker: the sandbox's cgroup namespace makes its own
    cgroup the root of what it sees, so tools can read their limits (JVM, Go runtime)."""
    target = f"{root}/sys/fs/cgroup"
    if layout.kind == "v2" and layout.v2 is not None:
        libc.mount("cgroup2", target, "cgroup2", _NOSUID_NODEV_NOEXEC | libc.MS_RDONLY)
        return
    if layout.kind not in ("v1", "hybrid") or not os.path.isdir(target):
        return
    libc.mount("tmpfs", target, "tmpfs", _NOSUID_NODEV_NOEXEC, "mode=755")
    mounted = [(point.name, "cgroup", data) for point, data in layout.hierarchies]
    if layout.v2 is not None:
        mounted.append((layout.v2.name, "cgroup2", None))
    for name, fstype, data in mounted:
        os.mkdir(f"{target}/{name}", 0o755)
        try:
            libc.mount(fstype, f"{target}/{name}", fstype,
                       _NOSUID_NODEV_NOEXEC | libc.MS_RDONLY, data)
        except OSError:  # a hierarchy this host will not mount twice: leave it out
            os.rmdir(f"{target}/{name}")
    libc.mount(None, target, None,
               libc.MS_REMOUNT | libc.MS_RDONLY | _NOSUID_NODEV_NOEXEC, "mode=755")


def _split_options(options: Iterable[str]) -> tuple[int, str]:
    flags, data = 0, []
    for opt in options:
        if opt in _FLAG_OPTIONS:
            flags |= _FLAG_OPTIONS[opt]
        elif opt not in _IGNORED_OPTIONS:
            data.append(opt)
    return flags, ",".join(data)


def bind(source: str, target: str, readonly: bool, flags: int = 0) -> None:
    """Recursive bind mount; read-only needs a second, remounting call."""
    libc.mount(source, target, None, libc.MS_BIND | libc.MS_REC)
    if readonly or flags:
        ro = libc.MS_RDONLY if readonly else 0
        libc.mount(None, target, None, libc.MS_BIND | libc.MS_REMOUNT | ro | flags)


def mount_spec(root: str, mounts: Iterable[Mount], made: MadePoints) -> None:
    """The spec's bind and tmpfs mounts, parents before children (as docker sorts them)."""
    for m in sorted(mounts, key=lambda m: len([p for p in m.target.split("/") if p])):
        flags, data = _split_options(m.options)
        if m.type == "tmpfs":
            target = ensure_mountpoint(root, m.target, True, made.for_path(m.target))
            ro = libc.MS_RDONLY if m.readonly else 0
            libc.mount("tmpfs", target, "tmpfs", flags | ro | libc.MS_NOSUID | libc.MS_NODEV,
                       data or None)
        else:
            is_dir = os.path.isdir(m.source)
            target = ensure_mountpoint(root, m.target, is_dir, made.for_path(m.target))
            bind(m.source, target, m.readonly or bool(flags & libc.MS_RDONLY),
                 flags & ~libc.MS_RDONLY)


def mount_etc_files(root: str, files: Iterable[tuple[str, os.PathLike[str]]],
                    made: MadePoints) -> None:
    for cpath, host in files:
        target = ensure_mountpoint(root, cpath, False, made.for_path(cpath))
        bind(os.fspath(host), target, readonly=False)


def pivot(root: str) -> None:
    """Make ``root`` the new ``/`` and drop the host's tree.

    pivot_root(".", ".") stacks the old root on top of the new one, so no put_old
    directory has to exist in (and pollute) the image; the old root is then detached.
    """
    os.chdir(root)
    libc.pivot_root(".", ".")
    # No propagation to fix first (runc makes the old root rslave here): init made the
    # whole tree private before mounting anything, so the umount cannot reach the host.
    libc.umount2(".", libc.MNT_DETACH)
    os.chdir("/")


def mask_paths(paths: Iterable[str]) -> None:
    """Hide files behind /dev/null and directories behind an empty read-only tmpfs."""
    for path in paths:
        try:
            if os.path.isdir(path):
                libc.mount("tmpfs", path, "tmpfs", libc.MS_RDONLY, "size=0,mode=755")
            else:
                libc.mount("/dev/null", path, None, libc.MS_BIND)
        except FileNotFoundError:
            continue


def readonly_paths(paths: Iterable[str]) -> None:
    for path in paths:
        try:
            bind(path, path, readonly=True, flags=_NOSUID_NODEV_NOEXEC)
        except FileNotFoundError:
            continue
