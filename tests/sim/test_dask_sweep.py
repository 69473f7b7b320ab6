"""A sweep on a real dask.distributed cluster (scheduler + worker processes on loopback) gives the
same results, in the same order, as the same sweep in local processes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from simulator import sweep

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "ip-not-enough.yaml"


def _points() -> tuple[dict[str, object], list[sweep.Point]]:
    doc = yaml.safe_load(SCENARIO.read_text())
    grid = sweep.parse_grid(["eni_conf.max_pool_size=3,5"])
    return doc, sweep.points([1, 2], grid)


@pytest.mark.slow
def test_dask_cluster_and_local_processes_agree() -> None:
    distributed = pytest.importorskip("dask.distributed")
    doc, pts = _points()
    local = sweep.execute(doc, pts, workers=2)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        remote = sweep.execute(doc, pts, dask_scheduler=cluster.scheduler_address)
    assert [r["seed"] for r in remote] == [s for s, _ in pts]
    assert remote == local


def test_without_dask_the_error_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_dask(name: str, *args: object, **kwargs: object) -> object:
        if name.startswith("dask"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_dask)
    doc, pts = _points()
    with pytest.raises(sweep.SpecError, match=r"pip install 'terway-py\[dask\]'"):
        sweep.execute(doc, pts[:1], dask_scheduler="tcp://127.0.0.1:1")
