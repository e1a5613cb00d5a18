"""Where the store lives unless told otherwise: a constant the command line, the client and
the no-change rebuild share, in a module that imports nothing."""

DEFAULT_ROOT = "/var/lib/pybuild"
ROOT_ENV = "PYBUILD_ROOT"  # names another root, as ``--root`` does
