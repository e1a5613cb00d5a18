"""Where things are: the repository, its test data, the external corpora, the busybox base."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTDATA = REPO / "testdata"
BUSYBOX_SCRIPT = REPO / "scripts" / "busybox-rootfs.sh"


def conformance_root() -> Path | None:
    """The external corpora: $PYBUILD_CONFORMANCE, else ../shared/conformance."""
    env = os.environ.get("PYBUILD_CONFORMANCE")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "conformance")
    for path in candidates:
        if path.is_dir():
            return path
    return None


def busybox_missing() -> str | None:
    """Why the busybox base cannot be made here, or None."""
    if not Path("/bin/busybox").exists():
        return "needs busybox-static (/bin/busybox) for the base image"
    return None


def write_busybox_tar(out: Path) -> Path:
    """The in-repo bootstrap (scripts/busybox-rootfs.sh): the same bytes every run."""
    subprocess.run(["bash", str(BUSYBOX_SCRIPT), str(out)], check=True, capture_output=True)
    return out
