"""``Cgroup.join``: a just-forked process moves itself into every hierarchy of a cgroup (v1
by 0 written to ``tasks``, v2 by ``cgroup.procs``), and only itself."""

from __future__ import annotations

import os

import pytest
from support.runner import skip_unless

from pybuild.runner import Resources, cgroups


@pytest.mark.root
def test_a_forked_child_joins_every_hierarchy_and_only_it_moves() -> None:
    skip_unless("cgroups")
    cg = cgroups.create(f"{os.getpid()}-join{os.urandom(3).hex()}", Resources(pids_limit=50))
    try:
        ready_r, ready_w = os.pipe()
        go_r, go_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                cg.join()
                os.write(ready_w, b"1")
                os.read(go_r, 1)
            finally:
                os._exit(0)
        try:
            assert os.read(ready_r, 1) == b"1"
            for path in cg.paths():
                members = (path / "cgroup.procs").read_text().split()
                assert members == [str(pid)], path
            assert cg.stats().pids_current == 1
        finally:
            os.write(go_w, b"1")
            os.waitpid(pid, 0)
            for fd in (ready_r, ready_w, go_r, go_w):
                os.close(fd)
        own = open("/proc/self/cgroup").read()
        assert f"/pybuild/{cg.name}" not in own
    finally:
        cg.remove()
    assert not any(p.exists() for p in cg.paths())
