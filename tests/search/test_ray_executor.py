"""The Ray executor on a local Ray instance with 2 workers (skipped when ray is not installed)."""
import pytest

from autobert.search import SearchConfig, SearchStore, run_search

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
