"""The ``pybuild`` console script: a rebuild with nothing changed is answered before the CLI
(click and the builder) is imported; everything else goes to :mod:`pybuild.cli`."""

from __future__ import annotations

import sys


def main() -> None:
    argv = sys.argv[1:]
    if "build" in argv:
        from pybuild.cache.replay import replay

        try:
            code = replay(argv)
        except (OSError, ValueError):
            code = None  # whatever went wrong, the ordinary path will say it properly
        if code is not None:
            sys.exit(code)
    from pybuild.cli import main as cli_main

    cli_main()
