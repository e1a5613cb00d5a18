"""The tree stays ruff-clean."""

import shutil
import subprocess
import sys

import pytest
from support.paths import REPO


def test_ruff_clean():
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    result = subprocess.run(
        [ruff, "check", "--no-cache", "pybuild", "tests", "bench"],
        cwd=REPO, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_cli_version_and_help():
    out = subprocess.run([sys.executable, "-m", "pybuild", "--version"],
                         capture_output=True, text=True, check=True).stdout
    assert "pybuild" in out and "0." in out
    out = subprocess.run([sys.executable, "-m", "pybuild", "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "Commands:" in out


def test_every_command_has_help():
    from pybuild.cli import COMMANDS, cli

    names = list(COMMANDS)
    groups = {"image": cli.get_command(None, "image"), "system": cli.get_command(None, "system")}
    names += [f"{g} {sub}" for g, cmd in groups.items() for sub in cmd.list_commands(None)]
    for name in names:
        res = subprocess.run([sys.executable, "-m", "pybuild", *name.split(), "--help"],
                             capture_output=True, text=True)
        assert res.returncode == 0 and "Usage: pybuild" in res.stdout, (name, res.stderr)
