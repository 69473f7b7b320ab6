"""The Kubernetes test bed: a real cluster (upstream etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, kubelet, containerd) on emulated ECS instances, the
plugin deployed as the DaemonSet ``terway-eniip`` with ``kubectl apply -k``.

One cluster per session (``cluster``) for the tests that share it; the seeds' story brings up
clusters of its own (it exhausts a vSwitch). Run with ``nox -s kube`` (as root); every test here
carries the ``kube`` marker and is left out of ``nox -s tests``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from emulator.cluster import Cluster

T = TypeVar("T")
WORKDIR = Path(os.environ.get("TERWAY_KUBE_WORKDIR", "/var/lib/terway-testbed"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here is ``kube`` and ``privileged``; the RBAC audit check runs last (it reads
    what the whole session asked of the API server)."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.kube)
            item.add_marker(pytest.mark.privileged)
    items.sort(key=lambda i: Path(str(i.fspath)).name == "test_rbac.py")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 60.0,
             every: float = 1.0) -> T:
    """Poll ``probe`` until truthy; fail naming ``what`` (and the last value) on timeout."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    error = ""
    while time.monotonic() < deadline:
        try:
            last = probe()
            if last:
                return last
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r}"
                f"{', error: ' + error if error else ''})")


_LIVE: list[Cluster] = []     # clusters up in this session, watched by namespaces_kept
_BROKEN: dict[int, str] = {}  # id(cluster) -> what broke it, for the tests still to come


def bring_up(name: str, **kwargs: Any) -> Cluster:
    os.environ.setdefault("TERWAY_CLUSTER_VERBOSE", "1")
    cluster = Cluster(workdir=WORKDIR / name, **kwargs).up()
    _LIVE.append(cluster)
    return cluster


@pytest.fixture(autouse=True)
def namespaces_kept(request: pytest.FixtureRequest) -> Iterator[None]:
    """Errors the first test after which a live cluster's namespace is gone without its
    ``down()`` (everything after it would fail with connection errors that hide who deleted
    it), and fails the later tests on that cluster at once instead of after their timeouts."""
    if "cluster" in request.fixturenames:
        why = _BROKEN.get(id(request.getfixturevalue("cluster")))
        if why:
            pytest.fail(f"not run: {why}")
    yield
    for cluster in list(_LIVE):
        gone = [] if cluster.fabric is None else cluster.fabric.vanished()
        if cluster.fabric is None or gone:
            _LIVE.remove(cluster)          # down, or reported: once is enough
        if gone:
            _BROKEN[id(cluster)] = (f"netns {', '.join(gone)} of the cluster in {cluster.workdir} "
                                    f"vanished by the end of {request.node.nodeid} (not deleted "
                                    f"by its fabric)")
            pytest.fail(_BROKEN[id(cluster)])


def dump_on_failure(cluster: Cluster) -> None:
    """What a person would look at first: pods, events and the terway pods' logs."""
    for args in (("get", "pods", "-A", "-o", "wide"), ("get", "events", "-A")):
        print(cluster.kubectl(*args, check=False).stdout[-4000:])
    print(cluster.kubectl("-n", "kube-system", "logs", "-l", "app=terway-eniip", "-c", "terway",
                          "--tail", "40", check=False).stdout)


def save_diagnostics(cluster: Cluster, test: str) -> Path:
    """Keep, in the cluster's workdir, what explains a failed test once the pods are gone: pods,
    events and every terway pod's whole log (the next test may delete or restart them)."""
    path = cluster.workdir / "failures" / f"{test.replace('/', '_')}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    parts = []
    for args in (("get", "pods", "-A", "-o", "wide"), ("get", "events", "-A", "-o", "wide"),
                 ("-n", "kube-system", "logs", "-l", "app=terway-eniip", "-c", "terway",
                  "--tail", "-1", "--prefix", "--max-log-requests", "10")):
        proc = cluster.kubectl(*args, check=False)
        parts.append(f"$ kubectl {' '.join(args)}\n{proc.stdout}{proc.stderr}")
    path.write_text("\n\n".join(parts))
    return path


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    cluster = getattr(item, "funcargs", {}).get("cluster")
    if report.failed and call.when == "call" and isinstance(cluster, Cluster):
        try:
            saved = save_diagnostics(cluster, item.name)
            report.sections.append(("diagnostics", f"saved: {saved}"))
        except Exception as exc:    # the cluster may be what broke; the failure is the news
            report.sections.append(("diagnostics", f"not saved: {exc}"))
    return report


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    c = bring_up("shared", eni_conf={"min_pool_size": 2, "max_pool_size": 8})
    print(f"cluster up: {json.dumps({k: round(v, 1) for k, v in c.timings.items()})}")
    try:
        yield c
    finally:
        dump_on_failure(c)
        c.down()
