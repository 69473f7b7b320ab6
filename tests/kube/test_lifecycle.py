"""Bring-up fails loudly and cleanly; teardown — normal or after a ``kill -9`` of the process
that owned the cluster — leaves no process, mount namespace, netns or cgroup behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emulator.cluster import Cluster, ClusterError
from emulator.cluster.artifacts import Artifacts, build_artifacts
from emulator.cluster.procs import tagged
from tests.kube.conftest import WORKDIR, wait_for


def leftovers(workdir: Path, instance_ids: list[str]) -> list[str]:
    """What of a cluster is still on the host: tagged processes, netns, cgroups."""
    found = [f"process {p}" for p in tagged(workdir)]
    netns = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
    found += [f"netns {i}" for i in instance_ids if i in netns]
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        found += [f"cgroup {hierarchy.name}/{i}" for i in instance_ids
                  if (hierarchy / f"terway-testbed-{i}").exists()]
    return found


def test_a_component_that_fails_is_named_with_its_log(tmp_path: Path) -> None:
    real = build_artifacts()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for entry in real.bin_dir.iterdir():
        (bin_dir / entry.name).symlink_to(entry.resolve())
    (bin_dir / "kube-apiserver").unlink()
    (bin_dir / "kube-apiserver").write_text("#!/bin/sh\necho 'error: bad flag --nope' >&2\n"
                                            "exit 3\n")
    (bin_dir / "kube-apiserver").chmod(0o755)
    cluster = Cluster(workdir=WORKDIR / "broken", nodes=1,
                      artifacts=Artifacts(bin_dir, real.images_dir))
    with pytest.raises(ClusterError) as err:
        cluster.up()
    msg = str(err.value)
    assert "kube-apiserver" in msg and "code 3" in msg and "bad flag --nope" in msg, msg
    ids = [i.instance_id for i in cluster.cloud.describe_instances()]
    assert leftovers(cluster.workdir, ids) == []          # up() tore down what it started


def test_a_killed_owner_is_cleaned_up_by_down() -> None:
    workdir = WORKDIR / "killed"
    shutil.rmtree(workdir, ignore_errors=True)      # no marker of an earlier run to mistake
    env = {**os.environ, "TERWAY_CLUSTER_VERBOSE": "1"}
    owner = subprocess.Popen([sys.executable, "-m", "emulator.cluster", "up", "--nodes", "1",
                              "--workdir", str(workdir)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for("the cluster up", lambda: (workdir / "ready").exists()
                 or owner.poll() is not None, 300)
        assert owner.poll() is None, "python -m emulator.cluster up failed"
        env_file = (workdir / "env").read_text()
        assert "KUBECONFIG=" in env_file
        ids = sorted(p.name for p in (workdir / "nodes").iterdir())
        ids.append(json.loads((workdir / "cluster.json").read_text())["master"])
        assert len(ids) == 2 and tagged(workdir)
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
    time.sleep(1)
    assert tagged(workdir), "kill -9 of the owner should leave its components running"
    down = subprocess.run([sys.executable, "-m", "emulator.cluster", "down", "--workdir",
                           str(workdir)], capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stderr
    assert "killed" in down.stdout
    assert leftovers(workdir, ids) == []
    assert not (workdir / "ready").exists()
