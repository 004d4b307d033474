"""The Ray executor on a local Ray instance with 2 workers (skipped when ray is not installed)."""
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from autobert.search import SearchConfig, SearchStore, run_search
from conftest import hang_guard  # at import: in a whole-suite run "conftest" later names another folder's

ray = pytest.importorskip("ray")


@pytest.mark.slow
def test_ray_search_with_two_workers(tmp_path):
    config = SearchConfig(fitness="toy", budget=12, executor="ray", workers=2, model={"n_layers": 2},
                          evolution={"population_size": 4, "sample_size": 2})
    summary = run_search(tmp_path / "run", config)
    assert summary.done == 12 and summary.stopped == "budget"
    assert not ray.is_initialized()  # the executor stops the Ray instance it started
    with SearchStore(tmp_path / "run" / "search.sqlite") as store:
        rows = [dict(r) for r in store.rows()]
    assert len({r["fingerprint"] for r in rows}) == len(rows)
    assert sum(r["status"] == "done" for r in rows) == 12
    assert [r["finish_seq"] for r in store_rows_by_seq(rows)] == list(range(len(rows)))


def store_rows_by_seq(rows):
    return sorted((r for r in rows if r["finish_seq"] is not None), key=lambda r: r["finish_seq"])


def _broken_factory():
    raise FileNotFoundError("supernet/warmup.pt: no such file on this node")


@pytest.mark.slow
def test_ray_set_up_errors_stop_the_search(tmp_path, monkeypatch):
    """Two broken set-ups stop the search with a clear error instead of spinning or hanging: an
    evaluator that cannot be built on a worker, and a cluster with no room for a single worker."""
    from autobert.model import tiny
    from autobert.search.executor import RayExecutor
    from autobert.search.toy import OpCountFitness
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))
    temp_dir = tempfile.mkdtemp(prefix="abray-", dir="/tmp")
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False, _temp_dir=temp_dir)
    try:
        with hang_guard(300, "the Ray set-up error checks"):
            ex = RayExecutor(_broken_factory, workers=1)
            ex.submit(0, tiny().to_json())
            with pytest.raises(RuntimeError, match="(?s)could not build its evaluator.*no such file on this node"):
                ex.wait()
            ex.close()
            ex = RayExecutor(OpCountFitness, workers=1, cpus_per_worker=2, start_timeout=2)  # 1 CPU in all
            ex.submit(0, tiny().to_json())
            start = time.monotonic()
            with pytest.raises(RuntimeError, match=r"no Ray worker started within 2 s.*\(2 CPU, 0 GPU each\)"):
                ex.wait()
            assert time.monotonic() - start < 30
            ex.close()
    finally:
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)
