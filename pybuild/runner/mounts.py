"""Filesystem setup inside the sandbox's mount namespace (called from the sandbox init only).

Every mount into the new root goes through ``targets``: the container path is resolved with
symlinks followed *within* the root, walked without following symlinks, and mounted onto
the walked fd. The mounts happen before pivot_root, so a plain ``mount`` on
``root + "/etc/resolv.conf"`` could follow an image's absolute symlink, or one swapped in
by another container sharing a volume, out to the host (CVE-2021-30465).

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

from pybuild.runner import libc, targets
from pybuild.runner.cgroups import Layout
from pybuild.runner.spec import Device, Mount, Rootfs

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


def mount_in(root: str, path: str, is_dir: bool, made: MadePoints | None,
             source: str | None, fstype: str | None, flags: int = 0,
             data: str | None = None) -> None:
    """mount(2) onto container path ``path`` of ``root``, never outside it (see targets);
    a missing mount point is made when ``made`` is given."""
    created = None if made is None else made.for_path(path)
    with targets.target(root, path, is_dir, created) as fd_path:
        try:
            libc.mount(source, fd_path, fstype, flags, data)
        except OSError as e:
            raise OSError(e.errno, f"mount {fstype or 'bind'} on {path}: "
                          f"{os.strerror(e.errno)}") from e


def bind_in(root: str, path: str, source: str, is_dir: bool, made: MadePoints,
            readonly: bool = False, flags: int = 0) -> None:
    """``bind`` onto container path ``path``; the remount goes onto the new mount, found by
    walking the path again."""
    mount_in(root, path, is_dir, made, source, None, libc.MS_BIND | libc.MS_REC)
    if readonly or flags:
        ro = libc.MS_RDONLY if readonly else 0
        mount_in(root, path, is_dir, None, None, None,
                 libc.MS_BIND | libc.MS_REMOUNT | ro | flags)


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


def make_node(dir_fd: int, name: str, kind: str, major: int, minor: int, host: str,
              mode: int = 0o666, uid: int = 0, gid: int = 0) -> None:
    """mknod ``name`` below ``dir_fd`` (a dir of the sandbox's own /dev tmpfs); where mknod
    is refused (as runc in a user namespace) the host's node ``host`` is bind-mounted over
    a file."""
    kind_bits = stat.S_IFCHR if kind == "c" else stat.S_IFBLK
    try:
        # through the fd's magic link: the same as dir_fd=, and the call tests can stub
        os.mknod(f"/proc/self/fd/{dir_fd}/{name}", mode | kind_bits, os.makedev(major, minor))
    except PermissionError:
        os.close(os.open(name, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, mode, dir_fd=dir_fd))
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            libc.mount(host, f"/proc/self/fd/{fd}", None, libc.MS_BIND)
        finally:
            os.close(fd)
        return
    os.chmod(name, mode, dir_fd=dir_fd)  # mknod honours the umask
    if uid or gid:
        os.chown(name, uid, gid, dir_fd=dir_fd, follow_symlinks=False)


def mount_standard(root: str, made: MadePoints, with_sys: bool = True) -> None:
    """/proc, a tmpfs /dev with the usual nodes and links, /dev/pts, /dev/shm, /sys."""
    mount_in(root, "/proc", True, made, "proc", "proc", _NOSUID_NODEV_NOEXEC)
    mount_in(root, "/dev", True, made, "tmpfs", "tmpfs", libc.MS_NOSUID | libc.MS_STRICTATIME,
             "mode=755,size=65536k")
    subdirs = (
        ("pts", "devpts", libc.MS_NOSUID | libc.MS_NOEXEC,
         "newinstance,ptmxmode=0666,mode=0620,gid=5"),
        ("shm", "tmpfs", _NOSUID_NODEV_NOEXEC, "mode=1777,size=65536k"),
        ("mqueue", "mqueue", _NOSUID_NODEV_NOEXEC, None),
    )
    with targets.opened(root, "/dev", True) as dev:
        for name, major, minor in _DEVICES:
            make_node(dev, name, "c", major, minor, f"/dev/{name}")
        for name, link in _DEV_LINKS:
            os.symlink(link, name, dir_fd=dev)
        for name, *_ in subdirs:
            os.mkdir(name, 0o755, dir_fd=dev)
    for name, fstype, flags, data in subdirs:
        mount_in(root, f"/dev/{name}", True, None, fstype, fstype, flags, data)
    if with_sys:
        mount_in(root, "/sys", True, made, "sysfs", "sysfs",
                 _NOSUID_NODEV_NOEXEC | libc.MS_RDONLY)


def make_devices(root: str, devices: Iterable[Device]) -> None:
    """The spec's ``--device`` nodes in the sandbox's /dev tmpfs (validate keeps them there),
    replacing a standard node of the same name."""
    for d in devices:
        parent, _, name = d.target.removeprefix("/dev/").rpartition("/")
        with targets.opened(root, "/dev", True) as dev:
            fd = targets.open_walked(dev, parent, True, created=[])
        try:
            try:
                os.unlink(name, dir_fd=fd)
            except FileNotFoundError:
                pass
            make_node(fd, name, d.type, d.major, d.minor, d.path, d.mode, d.uid, d.gid)
        finally:
            os.close(fd)


def mount_cgroups(root: str, layout: Layout) -> None:
    """/sys/fs/cgroup read-only, as docker: the sandbox's cgroup namespace makes its own
    cgroup the root of what it sees, so tools can read their limits (JVM, Go runtime)."""
    where, ro = "/sys/fs/cgroup", _NOSUID_NODEV_NOEXEC | libc.MS_RDONLY
    if layout.kind == "v2" and layout.v2 is not None:
        mount_in(root, where, True, None, "cgroup2", "cgroup2", ro)
        return
    if layout.kind not in ("v1", "hybrid"):
        return
    try:
        mount_in(root, where, True, None, "tmpfs", "tmpfs", _NOSUID_NODEV_NOEXEC, "mode=755")
    except FileNotFoundError:  # a sysfs without the cgroup dir
        return
    mounted = [(point.name, "cgroup", data) for point, data in layout.hierarchies]
    if layout.v2 is not None:
        mounted.append((layout.v2.name, "cgroup2", None))
    for name, fstype, data in mounted:
        with targets.opened(root, where, True) as fd:
            os.mkdir(name, 0o755, dir_fd=fd)
        try:
            mount_in(root, f"{where}/{name}", True, None, fstype, fstype, ro, data)
        except OSError:  # a hierarchy this host will not mount twice: leave it out
            with targets.opened(root, where, True) as fd:
                os.rmdir(name, dir_fd=fd)
    mount_in(root, where, True, None, None, None, libc.MS_REMOUNT | ro, "mode=755")


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
            ro = libc.MS_RDONLY if m.readonly else 0
            mount_in(root, m.target, True, made, "tmpfs", "tmpfs",
                     flags | ro | libc.MS_NOSUID | libc.MS_NODEV, data or None)
        else:
            bind_in(root, m.target, m.source, os.path.isdir(m.source), made,
                    m.readonly or bool(flags & libc.MS_RDONLY), flags & ~libc.MS_RDONLY)


def mount_etc_files(root: str, files: Iterable[tuple[str, os.PathLike[str]]],
                    made: MadePoints) -> None:
    """hosts, hostname, resolv.conf: an image's symlink there resolves inside the root."""
    for cpath, host in files:
        bind_in(root, cpath, os.fspath(host), False, made)


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
