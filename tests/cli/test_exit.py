"""How the ``pybuild`` process ends (pybuild/entry.py leaves without the interpreter's
teardown): exit codes as the command gave them, buffered output delivered whole, a reader
that went away is exit 1 without a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

from click.testing import CliRunner
from support.archive import TAG, make_image, pybuild_argv

from pybuild.cli import cli

_BUFFERED = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}


def test_buffered_output_arrives_whole_through_a_pipe(tmp_path):
    """stdout is a block-buffered pipe here: what the command printed last is still there."""
    help_text = subprocess.run(pybuild_argv(tmp_path, "--help"), capture_output=True,
                               text=True, env=_BUFFERED, check=True).stdout
    in_process = CliRunner().invoke(cli, ["--help"], prog_name="pybuild").output
    assert help_text == in_process and len(help_text) > 2000
    version = subprocess.run(pybuild_argv(tmp_path, "--version"), capture_output=True,
                             text=True, env=_BUFFERED, check=True)
    assert version.stdout == "pybuild, version 0.1.0\n"
    assert version.stderr == ""


def test_a_binary_stream_to_stdout_arrives_whole(tmp_path, busybox_tar):
    """``save`` writes a tar through stdout's buffer: the pipe gets what ``-o`` writes."""
    root = tmp_path / "root"
    make_image(root, busybox_tar)
    saved = tmp_path / "saved.tar"
    subprocess.run(pybuild_argv(root, "save", "-o", saved, TAG), check=True,
                   env=_BUFFERED)
    piped = subprocess.run(pybuild_argv(root, "save", TAG),
                           capture_output=True, env=_BUFFERED, check=True).stdout
    assert len(piped) > 100_000 and piped == saved.read_bytes()


def test_exit_codes_are_the_commands(tmp_path):
    unknown = subprocess.run(pybuild_argv(tmp_path, "nosuchcommand"), capture_output=True,
                             text=True, env=_BUFFERED)
    assert unknown.returncode == 2
    assert "No such command 'nosuchcommand'" in unknown.stderr
    missing = subprocess.run(pybuild_argv(tmp_path, "inspect", "nosuchimage"),
                             capture_output=True, text=True, env=_BUFFERED)
    assert missing.returncode == 1
    assert missing.stderr.count("\n") == 1 and "nosuchimage" in missing.stderr


def test_a_reader_that_went_away_is_exit_1_without_a_traceback(tmp_path):
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will read: the flush at exit meets EPIPE
    proc = subprocess.run(pybuild_argv(tmp_path, "--help"), stdout=write_end,
                          stderr=subprocess.PIPE, text=True, env=_BUFFERED)
    os.close(write_end)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr


def test_the_entry_runs_atexit_handlers(tmp_path):
    """A handler a library registered (a temp dir's cleanup, say) still runs."""
    marker = tmp_path / "ran"
    code = ("import atexit, pathlib, sys\n"
            f"atexit.register(pathlib.Path({str(marker)!r}).touch)\n"
            "sys.argv = ['pybuild', '--version']\n"
            "from pybuild.entry import main\n"
            "main()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=_BUFFERED)
    assert proc.returncode == 0 and proc.stdout == "pybuild, version 0.1.0\n"
    assert marker.exists()
