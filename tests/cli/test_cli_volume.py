"""``pybuild volume`` end to end: real processes on a store under tmp_path."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from support.archive import pybuild_argv

from pybuild.client import Client


def pb(root, *args, check=True, stdin=None):
    result = subprocess.run(pybuild_argv(root, *args), capture_output=True, text=True,
                            input=stdin)
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def root(tmp_path):
    return tmp_path / "root"


def one_line_error(result, pattern):
    assert result.returncode == 1, result
    assert result.stderr.count("\n") == 1 and re.search(pattern, result.stderr), result.stderr


def test_create_ls_inspect(root):
    assert pb(root, "volume", "create", "--label", "app=web", "--label", "tier",
              "web").stdout == "web\n"
    assert pb(root, "volume", "create", "--name", "db", "-o", "type=tmpfs", "-o",
              "device=tmpfs").stdout == "db\n"
    anon = pb(root, "volume", "create").stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", anon)
    lines = pb(root, "volume", "ls").stdout.splitlines()
    assert lines[0].split() == ["DRIVER", "VOLUME", "NAME"]
    assert [line.split() for line in lines[1:]] == [["local", n] for n in sorted([anon, "db",
                                                                                  "web"])]
    assert pb(root, "volume", "ls", "-q", "--filter", "label=app=web").stdout == "web\n"
    assert pb(root, "volume", "ls", "-q", "-f", "name=we").stdout == "web\n"
    assert pb(root, "volume", "ls", "--format", "{{.Name}}:{{.Labels}}:{{.Scope}}",
              "--filter", "name=web").stdout == "web:app=web,tier=:local\n"
    table = pb(root, "volume", "ls", "--format", "table {{.Name}}\t{{.Mountpoint}}",
               "-f", "name=^db$").stdout.splitlines()
    assert table[0].split() == ["VOLUME", "NAME", "MOUNTPOINT"]
    assert table[1].split() == ["db", str(root.absolute() / "volumes" / "db" / "_data")]
    rows = [json.loads(line) for line in
            pb(root, "volume", "ls", "--format", "json", "-f", "name=web").stdout.splitlines()]
    assert rows == [{"Availability": "N/A", "Driver": "local", "Group": "N/A",
                     "Labels": "app=web,tier=", "Links": "N/A",
                     "Mountpoint": str(root.absolute() / "volumes" / "web" / "_data"),
                     "Name": "web", "Scope": "local", "Size": "N/A", "Status": "N/A"}]
    [data] = json.loads(pb(root, "volume", "inspect", "db").stdout)
    assert data == Client(root).volumes.get("db").attrs
    assert data["Options"] == {"type": "tmpfs", "device": "tmpfs"}
    assert pb(root, "volume", "inspect", "-f", "{{.Driver}} {{index .Labels \"app\"}}",
              "web").stdout == "local web\n"


def test_inspect_missing_shows_the_others_then_fails(root):
    pb(root, "volume", "create", "v1")
    result = pb(root, "volume", "inspect", "v1", "nope", check=False)
    one_line_error(result, r"^error: No such volume: nope$")
    assert [d["Name"] for d in json.loads(result.stdout)] == ["v1"]


def test_rm(root):
    pb(root, "volume", "create", "a1")
    pb(root, "volume", "create", "a2")
    result = pb(root, "volume", "rm", "a1", "missing", "a2", check=False)
    assert result.stdout == "a1\na2\n"  # docker goes on past the failure
    one_line_error(result, r"^error: No such volume: missing$")
    assert pb(root, "volume", "rm", "-f", "missing").stdout == "missing\n"
    assert pb(root, "volume", "ls", "-q").stdout == ""


@pytest.mark.parametrize("args, pattern", [
    (["create", "bad/name"], r"^error: create bad/name: 'bad/name' includes invalid characters"),
    (["create", "x"], r"^error: create x: a volume name has at least 2 characters$"),
    (["create", "--driver", "convoy", "vv"], r"volume driver 'convoy' not found"),
    (["create", "-o", "nope=1", "vv"], r"invalid option 'nope'"),
    (["create", "--name", "a1", "b1"], r"conflicting names"),
])
def test_create_errors_are_one_line(root, args, pattern):
    result = pb(root, "volume", *args, check=False)
    assert result.returncode in (1, 2) and result.stdout == ""
    assert result.stderr.count("\n") == 1 and re.search(pattern, result.stderr), result.stderr
    assert pb(root, "volume", "ls", "-q").stdout == ""  # nothing half-made


def test_bad_filter_is_a_usage_error(root):
    result = pb(root, "volume", "ls", "--filter", "colour=red", check=False)
    assert result.returncode == 2 and "invalid filter 'colour'" in result.stderr
    result = pb(root, "volume", "ls", "--filter", "dangling", check=False)
    assert result.returncode == 2 and "bad format of filter 'dangling'" in result.stderr


def test_prune(root):
    pb(root, "volume", "create", "named")
    anon = pb(root, "volume", "create").stdout.strip()
    (root / "volumes" / anon / "_data" / "f").write_bytes(b"z" * 2000)
    refused = pb(root, "volume", "prune", stdin="n\n", check=False)
    assert refused.returncode != 0 and "anonymous local volumes" in refused.stderr
    assert len(pb(root, "volume", "ls", "-q").stdout.split()) == 2
    out = pb(root, "volume", "prune", "-f").stdout
    assert out == f"Deleted Volumes:\n{anon}\n\nTotal reclaimed space: 2kB\n"
    assert pb(root, "volume", "prune", "-f").stdout == "Total reclaimed space: 0B\n"
    pb(root, "volume", "create", "--label", "keep=1", "kept")
    out = pb(root, "volume", "prune", "-f", "--all", "--filter", "label!=keep").stdout
    assert out.startswith("Deleted Volumes:\nnamed\n")
    assert pb(root, "volume", "ls", "-q").stdout == "kept\n"
    yes = pb(root, "volume", "prune", "--all", stdin="y\n")
    assert "kept" in yes.stdout and "all local volumes" in yes.stderr


def test_help_lists_the_subcommands(root):
    out = pb(root, "volume", "--help").stdout
    for name in ("create", "inspect", "ls", "prune", "rm"):
        assert name in out
    assert "volume" in pb(root, "--help").stdout
