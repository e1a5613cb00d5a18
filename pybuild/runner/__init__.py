"""The sandbox every RUN step (and later ``pybuild run``) executes in.

    spec = RunSpec(
        rootfs=Rootfs(lowerdirs=(top, base), upperdir=upper, workdir=work),
        process=Process(args=("/bin/sh", "-c", "make"), env=("PATH=/usr/bin:/bin",), cwd="/src"),
        etc_files=(("/etc/hosts", hosts), ("/etc/resolv.conf", resolv)),
    )
    code = run(spec, stdout=on_chunk, stderr=on_chunk, cancel=event)

Contract:

* ``run`` returns the workload's exit code; 128+n when signal n killed it (137 after
  ``cancel`` or an OOM kill); 127/126 when the executable is missing/not executable, with
  docker's message (``exec: "foo": executable file not found in $PATH``) on stderr.
* ``RunnerError`` when the sandbox could not be set up (bad spec, mount failure, missing
  cwd). It never raises for what the workload did.
* Afterwards: no process, mount or namespace is left (even if the caller is SIGKILLed: the
  sandbox gets a parent-death signal); the cgroup is removed; mount points the setup had to
  create in the upper dir are removed when still empty, so the upper dir holds exactly
  what the workload changed (overlay whiteouts included) for the layer differ.
* Defaults are docker's: 14 capabilities, no_new_privs, masked and read-only /proc paths,
  read-only /sys and /sys/fs/cgroup, no network but loopback, umask 0022, hostname
  "pybuild", and docker's default seccomp profile (``RunSpec.seccomp``: "default", a
  profile path, or None), compiled by libseccomp for the spec's capabilities (seccomp.py).
* Resources (memory, cpus, pids) go into a cgroup ``pybuild/<caller pid>-<random>`` on
  v1, v2 or hybrid hosts alike; rlimits are clamped to the caller's hard limits.

Host support: ``probe()`` says what is missing (root, namespaces, overlayfs, cgroups).
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
