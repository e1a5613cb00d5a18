"""USER and --chown resolution through the image's own /etc/passwd and /etc/group.

Numeric ids need neither file, as in docker. A name missing from the files is an error that
names it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pybuild.build.rootfs import RootfsView
from pybuild.errors import BuildError


@dataclass(frozen=True)
class Ids:
    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()
    home: str = "/"  # from /etc/passwd; "/" for a user it does not list, as runc has it


def _table(view: RootfsView, path: str) -> list[list[str]]:
    data = view.read_file(path)
    if data is None:
        return []
    rows = []
    for line in data.decode("utf-8", "replace").splitlines():
        if line and not line.startswith("#"):
            rows.append(line.split(":"))
    return rows


def _user_row(view: RootfsView, user: str) -> list[str] | None:
    for row in _table(view, "/etc/passwd"):
        if len(row) >= 4 and (row[0] == user or (user.isdigit() and row[2] == user)):
            return row
    return None


def _group_id(view: RootfsView, group: str, what: str) -> int:
    if group.isdigit():
        return int(group)
    for row in _table(view, "/etc/group"):
        if len(row) >= 3 and row[0] == group and row[2].isdigit():
            return int(row[2])
    raise BuildError(f"unable to find group {group}: no matching entries in group file ({what})")


def _supplementary(view: RootfsView, name: str, gid: int) -> tuple[int, ...]:
    out = []
    for row in _table(view, "/etc/group"):
        if len(row) >= 4 and row[2].isdigit() and name in row[3].split(","):
            if int(row[2]) != gid:
                out.append(int(row[2]))
    return tuple(sorted(set(out)))


def resolve_user(view: RootfsView, spec: str, what: str = "USER") -> Ids:
    """``user[:group]`` as a container process would run with it."""
    user, _, group = (spec or "root").partition(":")
    row = _user_row(view, user)
    if row is None and not user.isdigit():
        raise BuildError(
            f"unable to find user {user}: no matching entries in passwd file ({what})")
    uid = int(user) if user.isdigit() else int(row[2])  # type: ignore[index]
    home = row[5] if row is not None and len(row) > 5 and row[5] else "/"
    # As docker, the primary group is also in the supplementary list (``id`` shows it).
    if group:
        gid = _group_id(view, group, what)
        return Ids(uid, gid, (gid,), home)
    gid = int(row[3]) if row is not None and row[3].isdigit() else 0
    extra = _supplementary(view, row[0], gid) if row is not None else ()
    return Ids(uid, gid, tuple(sorted({gid, *extra})), home)


def resolve_chown(view: RootfsView, spec: str) -> tuple[int, int]:
    """``--chown=user[:group]``: a lone user means its primary group; a lone number N means
    uid N and gid N, as docker and BuildKit do."""
    user, sep, group = spec.partition(":")
    if user.isdigit() and not sep:
        return int(user), int(user)
    row = None if user.isdigit() else _user_row(view, user)
    if row is None and not user.isdigit():
        raise BuildError(f"unable to find user {user}: no matching entries in passwd file")
    uid = int(user) if user.isdigit() else int(row[2])  # type: ignore[index]
    if group:
        return uid, _group_id(view, group, "--chown")
    return uid, int(row[3]) if row is not None and row[3].isdigit() else uid
