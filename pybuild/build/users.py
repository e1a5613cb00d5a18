"""USER and --chown resolution through the image's own /etc/passwd and /etc/group, as
BuildKit 20.10 does it.

Two rules, because BuildKit has two:

* Who a RUN runs as (:func:`resolve_user`) is runc's ``GetExecUser`` behind BuildKit's fast
  path: no USER, or ``uid:gid`` with both parts numeric (or ``root``), needs no file and
  gets no supplementary groups. Anything else reads /etc/passwd, even a bare uid, and fails
  when the file is missing; a uid it does not list runs with gid 0. The supplementary groups
  are those /etc/group lists the matched user in, and none with an explicit group.
* Who owns what ``--chown`` and WORKDIR make (:func:`resolve_owner`) is LLB's ``WithUser``:
  each part on its own, an empty part or ``root`` is 0, a number N is N (a lone uid N is
  N:N), a name is looked up. A name the files do not have is an error here (BuildKit 20.10
  silently takes 0; newer BuildKit refuses too).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeVar

from pybuild.build.rootfs import RootfsView
from pybuild.errors import BuildError

MAX_ID = 2**31 - 1  # runc's range for uids and gids
_ATOI = re.compile(r"[+-]?[0-9]+")  # Go's strconv.Atoi
_UINT = re.compile(r"[0-9]+")  # BuildKit's parseUID (besides "root")


@dataclass(frozen=True)
class Ids:
    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()
    home: str = "/"  # from /etc/passwd; "/" for a user it does not list, as runc has it


@dataclass(frozen=True)
class _Passwd:
    name: str
    uid: int
    gid: int
    home: str


@dataclass(frozen=True)
class _Group:
    name: str
    gid: int
    members: tuple[str, ...]


_Row = TypeVar("_Row", _Passwd, _Group)


def _atoi(text: str) -> int | None:
    return int(text) if _ATOI.fullmatch(text) else None


def _fields(line: str, n: int) -> list[str]:
    parts = line.split(":")
    return parts[:n] + [""] * (n - len(parts))


def _rows(view: RootfsView, path: str, n: int) -> list[list[str]] | None:
    """The file's non-blank lines (stripped, as runc reads them) as ``n`` fields each; None
    when it is missing."""
    data = view.read_file(path)
    if data is None:
        return None
    lines = data.decode("utf-8", "surrogateescape").splitlines()
    return [_fields(line.strip(), n) for line in lines if line.strip()]


def _passwd(view: RootfsView) -> list[_Passwd] | None:
    rows = _rows(view, "/etc/passwd", 7)
    if rows is None:
        return None
    return [_Passwd(r[0], _atoi(r[2]) or 0, _atoi(r[3]) or 0, r[5]) for r in rows]


def _groups(view: RootfsView) -> list[_Group] | None:
    rows = _rows(view, "/etc/group", 4)
    if rows is None:
        return None
    return [_Group(r[0], _atoi(r[2]) or 0, tuple(r[3].split(",")) if r[3] else ()) for r in rows]


def _in_range(n: int) -> int:
    if not 0 <= n <= MAX_ID:
        raise BuildError(f"uids and gids must be in range 0-{MAX_ID}")
    return n


def _parse_id(text: str) -> int | None:
    """BuildKit's parseUID: ``root`` is 0, a decimal number is itself, anything else a name."""
    if text == "root":
        return 0
    if _UINT.fullmatch(text) and int(text) <= 2**32 - 1:
        return int(text)
    return None


def _home(view: RootfsView, uid: int) -> str:
    """HOME as runc sets it: the home of the first /etc/passwd entry with the uid, else /."""
    for row in _passwd(view) or ():
        if row.uid == uid:
            return row.home or "/"
    return "/"


def resolve_user(view: RootfsView, spec: str, what: str = "USER") -> Ids:
    """``user[:group]`` as BuildKit runs a RUN with it (see the module docstring)."""
    if not spec:
        return Ids(0, 0, (), _home(view, 0))
    user, sep, rest = spec.partition(":")
    group = rest.partition(":")[0]
    if sep:
        uid, gid = _parse_id(user), _parse_id(rest)
        if uid is not None and gid is not None:  # BuildKit's fast path: no lookup at all
            return Ids(uid, gid, (), _home(view, uid))
    rows = _passwd(view)
    if rows is None:
        raise BuildError(f"unable to find user {user or 0}: the image has no /etc/passwd "
                         f"({what})")
    number = _atoi(user)

    def matches(row: _Passwd) -> bool:
        if not user:
            return row.uid == 0
        return row.uid == number if number is not None else row.name == user

    row = next((r for r in rows if matches(r)), None)
    if row is not None:
        uid, gid, home, name = row.uid, row.gid, row.home or "/", row.name
    elif number is None and user:
        raise BuildError(
            f"unable to find user {user}: no matching entries in passwd file ({what})")
    else:
        uid, gid, home, name = _in_range(number or 0), 0, "/", ""
    if not group and not name:
        return Ids(uid, gid, (), home)
    groups = _groups(view)
    if groups is None:
        raise BuildError(f"unable to find groups for spec {name or group}: the image has no "
                         f"/etc/group ({what})")
    if not group:  # only then: the groups that list the user, the primary one not added
        return Ids(uid, gid, tuple(g.gid for g in groups if name in g.members), home)
    gnumber = _atoi(group)
    found = next((g for g in groups if (g.gid == gnumber if gnumber is not None
                                         else g.name == group)), None)
    if found is not None:
        return Ids(uid, found.gid, (), home)
    if gnumber is None:
        raise BuildError(
            f"unable to find group {group}: no matching entries in group file ({what})")
    return Ids(uid, _in_range(gnumber), (), home)


def resolve_owner(view: RootfsView, spec: str, what: str = "--chown") -> tuple[int, int]:
    """``user[:group]`` as the owner of files a step makes (``--chown``, WORKDIR's
    directories), as BuildKit's LLB ``WithUser``: a lone number N is N:N, a name its
    /etc/passwd uid and gid, an empty part or ``root`` 0; a group after the colon replaces
    the gid (an empty one with 0)."""
    user, sep, group = spec.partition(":")
    uid = gid = _parse_id(user) if user else 0
    if uid is None:
        row = _named(_passwd(view), user, "user", what)
        uid, gid = row.uid, row.gid
    if sep:
        gid = _parse_id(group) if group else 0
        if gid is None:
            gid = _named(_groups(view), group, "group", what).gid
    return uid, gid


def _named(rows: list[_Row] | None, name: str, kind: str, what: str) -> _Row:
    """The first entry called ``name`` in the passwd (``kind`` user) or group file rows."""
    found = next((r for r in rows or () if r.name == name), None)
    if found is None:
        file = "passwd" if kind == "user" else "group"
        none = "" if rows is not None else " (the image has none)"
        raise BuildError(f"unable to find {kind} {name}: no matching entries in {file} file"
                         f"{none} ({what})")
    return found
