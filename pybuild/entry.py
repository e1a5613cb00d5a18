"""The ``pybuild`` console script: a rebuild with nothing changed is answered before the CLI
(click and the builder) is imported; everything else goes to :mod:`pybuild.cli`.

The answer comes from the memo ``pybuild build`` left for this very command line
(:mod:`pybuild.cache.replay`): nothing here reads a build option, so click is the one parser.
"""

from __future__ import annotations

import os
import sys

_argv: list[str] | None = None


def command_line() -> list[str] | None:
    """The arguments :func:`main` handed to the CLI: what the shortcut sees when the same
    command runs again. None when the CLI was started some other way (in-process, with
    arguments of its own), where a memo could record a command line nobody ran."""
    return _argv


def main() -> None:
    try:
        _main()
    except SystemExit as done:
        _leave(done.code)
    _leave(0)


def _leave(code: object) -> None:
    """Exit with ``code`` without the interpreter's teardown, which spends about 10 ms
    freeing the modules a command loaded, when nothing is left for it to do: no other thread
    (it would be joined), atexit's handlers run here, and the streams are flushed (a reader
    that went away is exit 1, as a BrokenPipeError in the CLI is)."""
    if not isinstance(code, int) or isinstance(code, bool):
        sys.exit(code)  # None or a message: the ordinary way
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        sys.exit(code)
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            code = code or 1
    os._exit(code)


def _main() -> None:
    global _argv
    argv = sys.argv[1:]
    if "build" in argv:
        from pybuild.cache.replay import replay

        try:
            code = replay(argv)
        except (OSError, ValueError):
            code = None  # whatever went wrong, the ordinary path will say it properly
        if code is not None:
            sys.exit(code)
    _argv = list(argv)
    from pybuild.cli import main as cli_main

    cli_main()
