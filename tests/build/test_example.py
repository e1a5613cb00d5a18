"""The README's main job: import the busybox base, build examples/jdk-tomcat, inspect it."""

from __future__ import annotations

import json
import subprocess

import pytest
from support.build import pybuild_cmd
from support.paths import REPO

from pybuild.runner.probe import probe as host_probe

pytestmark = pytest.mark.root


def test_jdk_tomcat_example(tmp_path, busybox_tar):
    why = host_probe().reason_if_missing
    if why:
        pytest.skip(why)
    cmd = pybuild_cmd(tmp_path / "root")
    subprocess.run([*cmd, "import", str(busybox_tar), "localhost/bench/busybox:latest"],
                   check=True, capture_output=True)
    built = subprocess.run([*cmd, "build", "--progress", "plain", "-t", "user/jdk-tomcat",
                            str(REPO / "examples" / "jdk-tomcat")], capture_output=True,
                           text=True)
    assert built.returncode == 0, built.stderr
    assert 'openjdk version "1.8.0-pybuild"' in built.stderr  # the RUN's live output
    out = subprocess.run([*cmd, "inspect", "user/jdk-tomcat"], check=True,
                         capture_output=True, text=True).stdout
    (image,) = json.loads(out)
    config = image["Config"]
    assert image["RepoTags"] == ["user/jdk-tomcat:latest"]
    assert image["Author"] == 'wangyang "wangyang@example.com"'
    assert "JAVA_HOME=/usr/local/jdk" in config["Env"]
    assert any(e.startswith("PATH=/usr/local/jdk/bin:") for e in config["Env"])
    assert config["WorkingDir"] == "/usr/local/tomcat"
    assert config["ExposedPorts"] == {"8080/tcp": {}}
    assert config["Cmd"] == ["/usr/local/tomcat/bin/catalina.sh", "run"]
    assert len(image["RootFS"]["Layers"]) == 4  # base, two ADDs, RUN (the WORKDIR exists)
    root = tmp_path / "rootfs"
    subprocess.run([*cmd, "image", "unpack", "user/jdk-tomcat", str(root)], check=True)
    assert (root / "usr/local/tomcat/bin/catalina.sh").stat().st_mode & 0o111
    assert (root / "usr/local/jdk/bin/java").is_file()
    assert not (root / "usr/local/apache-tomcat").exists()

    # ... and then run it, as the README's first command goes on
    run = subprocess.run([*cmd, "run", "-d", "--init", "--name", "tomcat", "-m", "256m", "-v",
                          "tomcat-logs:/usr/local/tomcat/logs", "user/jdk-tomcat"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    try:
        ps = subprocess.run([*cmd, "ps"], check=True, capture_output=True, text=True).stdout
        assert "tomcat" in ps and " Up " in ps
        subprocess.run([*cmd, "logs", "tomcat"], check=True, capture_output=True)
        page = subprocess.run([*cmd, "exec", "tomcat", "sh", "-c",
                               "for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- "
                               "http://127.0.0.1:8080/ && exit; sleep 0.2; done; exit 1"],
                              capture_output=True, text=True, timeout=60)
        assert page.returncode == 0 and "Hello from jdk-tomcat" in page.stdout
        subprocess.run([*cmd, "stop", "tomcat"], check=True, capture_output=True, timeout=30)
        state = subprocess.run([*cmd, "inspect", "-f", "{{.State.Status}}", "tomcat"],
                               check=True, capture_output=True, text=True).stdout.strip()
        assert state == "exited"
    finally:
        subprocess.run([*cmd, "rm", "-f", "tomcat"], capture_output=True)
    assert subprocess.run([*cmd, "ps", "-a", "-q"], capture_output=True,
                          text=True).stdout == ""
