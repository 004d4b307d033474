"""The Ray executor on a two-node Ray cluster on this machine (``ray.cluster_utils.Cluster`` starts a
head and a second node as separate raylet processes, as ``ray start --head`` / ``ray start --address``
do), each with its own custom resource. Candidates spread over both nodes; the second node is stopped
mid-run; its evaluations run again on the head; nothing is lost or duplicated."""
import json
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from autobert.search import OpCountFitness, SearchConfig, SearchStore, run_search

ray = pytest.importorskip("ray")
cluster_utils = pytest.importorskip("ray.cluster_utils")


class SlowToy:
    """The toy fitness, 0.3 s per candidate: long enough for a node to be stopped mid-evaluation."""

    def __init__(self):
        self.toy = OpCountFitness()

    def __call__(self, arch):
        time.sleep(0.3)
        return self.toy(arch)


def _node_of_done(db):
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT metrics_json FROM candidates WHERE status='done'").fetchall()
    return [json.loads(m)["node"] for (m,) in rows if m]


@pytest.mark.slow
def test_search_survives_losing_a_node(tmp_path, monkeypatch, caplog):
    # Workers unpickle SlowToy: they must find this module (raylets pass the environment on).
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))
    cluster = cluster_utils.Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "resources": {"head": 2}})
    second = cluster.add_node(num_cpus=2, resources={"second": 2})
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
    run = tmp_path / "run"
    stopped = {}

    def stop_second_node():
        """Once the second node has finished two candidates, stop it (its evaluations are in flight)."""
        db = run / "search.sqlite"
        while not stopped:
            if db.exists():
                try:
                    done = _node_of_done(db)
                except sqlite3.Error:
                    done = []
                if sum(n == second.node_id for n in done) >= 2:
                    cluster.remove_node(second)
                    stopped["after"] = len(done)
                    return
            time.sleep(0.2)

    killer = threading.Thread(target=stop_second_node, daemon=True)
    killer.start()
    try:
        with caplog.at_level(logging.WARNING, logger="autobert.search.executor"):
            config = SearchConfig(fitness="toy", budget=16, executor="ray", workers=4, model={"n_layers": 2},
                                  evolution={"population_size": 6, "sample_size": 3})
            summary = run_search(run, config, evaluator_factory=SlowToy)
    finally:
        stopped.setdefault("after", None)
        ray.shutdown()
        cluster.shutdown()
    assert stopped["after"] is not None, "the second node never finished two candidates"
    with SearchStore(run / "search.sqlite") as store:
        rows = sorted((dict(r) for r in store.rows()), key=lambda r: r["finish_seq"])
    nodes = [json.loads(r["metrics_json"])["node"] for r in rows if r["status"] == "done"]  # in finishing order
    head = {n for n in nodes if n != second.node_id}
    assert summary.done == 16 and len(nodes) == 16
    assert second.node_id in nodes and head, "candidates ran on both nodes"
    assert nodes[-1] != second.node_id  # after the stop, the head did the rest
    assert len({r["fingerprint"] for r in rows}) == len(rows)  # nothing duplicated
    assert not [r for r in rows if r["status"] in ("pending", "running")]  # nothing lost
    assert all(r["status"] == "done" for r in rows)  # a lost worker's candidate is retried, not failed
    lost = [m for m in caplog.messages if "evaluating it again" in m]
    assert lost, "stopping the node interrupted at least one evaluation"
