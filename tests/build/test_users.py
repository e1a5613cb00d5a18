"""Who a RUN runs as and who owns what --chown and WORKDIR make, as BuildKit 20.10 has it
(the perms-user, config-user and flags-chown oracle cases check the same against BuildKit)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pybuild.build.rootfs import RootfsView
from pybuild.build.users import Ids, resolve_owner, resolve_user
from pybuild.errors import BuildError

PASSWD = """root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
app:x:1001:1002::/home/app:/bin/sh
"""
GROUP = """root:x:0:
nobody:x:65534:
app:x:1002:
extra:x:1005:app,other
more:x:1006:other,app
"""


def _view(tmp_path: Path, passwd: str | None = PASSWD, group: str | None = GROUP) -> RootfsView:
    layer = tmp_path / "layer"
    (layer / "etc").mkdir(parents=True)
    if passwd is not None:
        (layer / "etc/passwd").write_text(passwd)
    if group is not None:
        (layer / "etc/group").write_text(group)
    return RootfsView([layer])


def test_named_user_gets_the_groups_that_list_it_without_its_primary(tmp_path: Path) -> None:
    assert resolve_user(_view(tmp_path), "app") == Ids(1001, 1002, (1005, 1006), "/home/app")


def test_uid_of_a_listed_user_gets_its_groups_too(tmp_path: Path) -> None:
    assert resolve_user(_view(tmp_path), "1001") == Ids(1001, 1002, (1005, 1006), "/home/app")


def test_root_and_default_user_have_no_supplementary_groups(tmp_path: Path) -> None:
    view = _view(tmp_path)
    assert resolve_user(view, "root") == Ids(0, 0, (), "/root")
    assert resolve_user(view, "") == Ids(0, 0, (), "/root")


def test_uid_not_in_passwd_runs_with_gid_0_and_no_groups(tmp_path: Path) -> None:
    assert resolve_user(_view(tmp_path), "65") == Ids(65, 0, (), "/")


def test_explicit_group_replaces_primary_and_supplementary_groups(tmp_path: Path) -> None:
    view = _view(tmp_path)
    assert resolve_user(view, "app:nobody") == Ids(1001, 65534, (), "/home/app")
    assert resolve_user(view, "65:66") == Ids(65, 66, (), "/")
    assert resolve_user(view, "1001:1005") == Ids(1001, 1005, (), "/home/app")
    assert resolve_user(view, "app:77") == Ids(1001, 77, (), "/home/app")


def test_no_passwd_fast_path_only(tmp_path: Path) -> None:
    view = _view(tmp_path, passwd=None)
    assert resolve_user(view, "") == Ids(0, 0, (), "/")
    assert resolve_user(view, "0:0") == Ids(0, 0, (), "/")
    assert resolve_user(view, "root:root") == Ids(0, 0, (), "/")
    assert resolve_user(view, "65:66") == Ids(65, 66, (), "/")
    for spec in ("0", "root", "65", "root:nobody", "app"):
        with pytest.raises(BuildError, match="unable to find user"):
            resolve_user(view, spec)


def test_no_group_file_fails_where_groups_are_looked_up(tmp_path: Path) -> None:
    view = _view(tmp_path, group=None)
    assert resolve_user(view, "65") == Ids(65, 0, (), "/")  # matched no name: no lookup
    assert resolve_user(view, "1001:1002") == Ids(1001, 1002, (), "/home/app")
    for spec in ("app", "65:nobody"):
        with pytest.raises(BuildError, match="unable to find group"):
            resolve_user(view, spec)


def test_unknown_names_fail(tmp_path: Path) -> None:
    view = _view(tmp_path)
    with pytest.raises(BuildError, match="unable to find user ghost"):
        resolve_user(view, "ghost")
    with pytest.raises(BuildError, match="unable to find group nogroup"):
        resolve_user(view, "nobody:nogroup")


def test_owner_parts(tmp_path: Path) -> None:
    view = _view(tmp_path)
    assert resolve_owner(view, "65") == (65, 65)
    assert resolve_owner(view, "65:66") == (65, 66)
    assert resolve_owner(view, "app") == (1001, 1002)
    assert resolve_owner(view, "app:extra") == (1001, 1005)
    assert resolve_owner(view, ":66") == (0, 66)
    assert resolve_owner(view, "65:") == (65, 0)
    assert resolve_owner(view, "app:") == (1001, 0)
    assert resolve_owner(view, ":") == (0, 0)
    assert resolve_owner(view, "root:root") == (0, 0)


def test_owner_root_needs_no_passwd(tmp_path: Path) -> None:
    view = _view(tmp_path, passwd=None, group=None)
    assert resolve_owner(view, "root") == (0, 0)
    assert resolve_owner(view, "root:root") == (0, 0)
    assert resolve_owner(view, "7:8") == (7, 8)
    with pytest.raises(BuildError, match="unable to find user app"):
        resolve_owner(view, "app")
    with pytest.raises(BuildError, match="unable to find group staff"):
        resolve_owner(view, "7:staff")


def test_owner_unknown_names_are_refused(tmp_path: Path) -> None:
    view = _view(tmp_path)
    with pytest.raises(BuildError, match="unable to find user nosuch"):
        resolve_owner(view, "nosuch")
    with pytest.raises(BuildError, match="unable to find group nosuch"):
        resolve_owner(view, "65:nosuch")
