"""``run -i`` and ``run -it``: stdin reaches the container, a real pty when asked, the exit
code comes back, and the terminal is given back as it was."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import termios
import time

from support.terminal import expect, read_until


def test_run_i_feeds_stdin_and_returns_the_code(cli, image):
    res = cli("run", "--rm", "-i", image, "sh", "-c", "read line; echo got $line; exit 5",
              input="hello\n")
    assert res.returncode == 5 and res.stdout == "got hello\n"
    assert cli("ps", "-a", "-q").stdout == ""


def test_run_t_gives_a_pty(cli, image):
    res = cli("run", "--rm", "-t", image, "sh", "-c", "tty; test -t 0 && echo stdin-is-a-tty")
    assert res.returncode == 0
    assert res.stdout.replace("\r", "").splitlines() == ["/dev/pts/0", "stdin-is-a-tty"]


def test_run_it_is_an_interactive_terminal(store, image):
    pid, fd = pty.fork()
    if pid == 0:  # the child: pybuild on a terminal, as a user types it
        os.execv(sys.executable, [sys.executable, "-m", "pybuild", "--root", str(store.root),
                                  "run", "--rm", "-it", image, "sh"])
    try:
        before = termios.tcgetattr(fd)
        expect(fd, b"# ")
        os.write(fd, b"echo $((6*7)); stty size >/dev/null && echo sized\r")
        expect(fd, b"42")
        os.write(fd, b"exit 3\r")
        read_until(fd, b"\x00", timeout=5)  # to its end
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 3
        with __import__("contextlib").suppress(termios.error):
            assert termios.tcgetattr(fd)[3] & termios.ECHO == before[3] & termios.ECHO
    finally:
        os.close(fd)


def test_run_dit_keeps_a_shell_waiting_in_the_background(cli, image):
    cli("run", "-dit", "--name", "waiting-sh", image, "sh", check=True)
    try:
        time.sleep(0.5)
        assert cli("inspect", "-f", "{{.State.Status}}", "waiting-sh").stdout == "running\n"
        assert cli("exec", "waiting-sh", "echo", "still here", check=True).stdout == \
            "still here\n"
        assert "BusyBox" in cli("logs", "waiting-sh").stdout  # the shell's banner, on its pty
    finally:
        cli("rm", "-f", "waiting-sh")


def test_a_foreground_run_streams_live_and_its_container_outlives_a_killed_cli(cli, store,
                                                                              image):
    proc = subprocess.Popen([sys.executable, "-m", "pybuild", "--root", str(store.root), "run",
                             "--name", "outlives", image, "sh", "-c",
                             "echo first; sleep 30; echo never"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        assert ready and proc.stdout.readline() == b"first\n"  # before the container ends
        proc.kill()
        proc.wait(10)
        shown = cli("ps", "--filter", "name=outlives", "--format", "{{.Status}}", check=True)
        assert shown.stdout.startswith("Up")
        assert cli("logs", "outlives", check=True).stdout == "first\n"
    finally:
        proc.kill()
        proc.wait(10)
        cli("rm", "-f", "outlives")
