"""The ``pybuild`` console script: a rebuild with nothing changed is answered before the CLI
(click and the builder) is imported; everything else goes to :mod:`pybuild.cli`.

The answer comes from the memo ``pybuild build`` left for this very command line
(:mod:`pybuild.cache.replay`): nothing here reads a build option, so click is the one parser.
"""

from __future__ import annotations

import sys

_argv: list[str] | None = None


def command_line() -> list[str] | None:
    """The arguments :func:`main` handed to the CLI: what the shortcut sees when the same
    command runs again. None when the CLI was started some other way (in-process, with
    arguments of its own), where a memo could record a command line nobody ran."""
    return _argv


def main() -> None:
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
