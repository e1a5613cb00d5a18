"""``pybuild login``/``logout`` as docker's: options, prompts on a terminal, stored
credentials tried first, docker's warnings and one-line errors. Against the open registry
(any credentials are good there) and a real pty for the prompts."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from support.pushpull import cli
from support.registry_auth import isolate
from support.terminal import expect

from pybuild.cli.login import NON_TTY, P_WARNING


@pytest.fixture
def home(monkeypatch, tmp_path):
    return isolate(monkeypatch, tmp_path)


def stored(home) -> dict:
    return json.loads((home / "pybuild-config.json").read_text())["auths"]


def test_password_option_warns_and_logs_in(home, registry, tmp_path):
    res = cli(tmp_path, "login", "-u", "u1", "-p", "pw1", registry.host)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "Login Succeeded\n"
    assert res.stderr.splitlines()[0] == P_WARNING
    assert registry.host in stored(home)


def test_option_errors_are_one_line(home, registry, tmp_path):
    cases = [  # contradicting options are usage errors (2), the rest exit 1
        (["-u", "a", "-p", "b", "--password-stdin"], 2,
         "error: --password and --password-stdin are mutually exclusive\n"),
        (["--password-stdin"], 2, "error: Must provide --username with --password-stdin\n"),
        ([], 1, f"error: {NON_TTY}\n"),
        (["-u", "a"], 1, f"error: {NON_TTY}\n"),
    ]
    for args, code, line in cases:
        res = cli(tmp_path, "login", *args, registry.host, input="")
        assert (res.returncode, res.stderr) == (code, line), args
    assert not (home / "pybuild-config.json").exists()


def test_an_unknown_host_is_one_line(home, tmp_path):
    res = cli(tmp_path, "login", "-u", "a", "--password-stdin", "nosuch.invalid", input="b")
    assert res.returncode == 1
    assert res.stderr.startswith("error: nosuch.invalid: ") and res.stderr.count("\n") == 1


def test_stored_credentials_are_tried_first(home, registry, tmp_path):
    assert cli(tmp_path, "login", "-u", "u2", "--password-stdin", registry.host,
               input="pw2\n").returncode == 0
    res = cli(tmp_path, "login", registry.host, input="")
    assert res.returncode == 0, res.stderr
    assert res.stderr == "Authenticating with existing credentials...\n"
    assert res.stdout == "Login Succeeded\n"


def test_logout_twice(home, registry, tmp_path):
    cli(tmp_path, "login", "-u", "u3", "--password-stdin", registry.host, input="pw3")
    res = cli(tmp_path, "logout", registry.host)
    assert res.stdout == f"Removing login credentials for {registry.host}\n"
    res = cli(tmp_path, "logout", registry.host)
    assert (res.returncode, res.stdout) == (0, f"Not logged in to {registry.host}\n")


def test_prompts_on_a_terminal(home, registry, tmp_path):
    master, slave = os.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "pybuild", "--root", str(tmp_path),
                             "login", registry.host], stdin=slave, stderr=slave,
                            stdout=subprocess.PIPE, text=True)
    os.close(slave)
    try:
        expect(master, b"Username: ", timeout=30)
        os.write(master, b"tty-user\n")
        expect(master, b"Password: ", timeout=30)
        os.write(master, b"tty-pass\n")
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert proc.returncode == 0
    assert out == "Login Succeeded\n"
    assert stored(home)[registry.host]["auth"]
