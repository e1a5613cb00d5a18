"""The sandbox every RUN step (and ``pybuild run``) executes in.

    spec = RunSpec(Rootfs(lowerdirs=(lower,), upperdir=up, workdir=work),
                   Process(args=("/bin/sh", "-c", "echo hi")))
    code = run(spec, stdout=chunks.append)
"""

from pybuild.runner.caps import DOCKER_DEFAULT_CAPS
from pybuild.runner.probe import HostCaps, probe
from pybuild.runner.sandbox import run
from pybuild.runner.spec import (
    DEFAULT_PATH,
    DOCKER_MASKED_PATHS,
    DOCKER_READONLY_PATHS,
    Mount,
    Process,
    Resources,
    Rlimit,
    Rootfs,
    RunSpec,
    validate,
)

__all__ = [
    "DEFAULT_PATH", "DOCKER_DEFAULT_CAPS", "DOCKER_MASKED_PATHS", "DOCKER_READONLY_PATHS",
    "HostCaps", "Mount", "Process", "Resources", "Rlimit", "Rootfs", "RunSpec", "probe", "run",
    "validate",
]
