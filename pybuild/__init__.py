"""pybuild: a daemonless image builder and container runtime.

The public API is what ``__all__`` names; attributes are loaded on first use so that
``import pybuild`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "PybuildError": "pybuild.errors",
    "parse": "pybuild.dockerfile.parser",
    "parse_file": "pybuild.dockerfile.parser",
    "Instruction": "pybuild.instructions",
    "From": "pybuild.instructions",
    "parse_instructions": "pybuild.instructions",
    "BuildStages": "pybuild.plan.stages",
    "Stage": "pybuild.plan.stages",
    "resolve_stages": "pybuild.plan.stages",
    "CheckWarning": "pybuild.dockerfile.checks",
    "run_checks": "pybuild.dockerfile.checks",
    "Client": "pybuild.client",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pybuild' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
