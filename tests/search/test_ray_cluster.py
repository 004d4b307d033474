"""The Ray executor on a two-node Ray cluster on this machine: a head and a second node started with
``ray start`` as separate process groups, each with its own custom resource, in a private temp dir
and on free ports (nothing shared with another Ray instance on the machine). Candidates spread over
both nodes; the second node is stopped (its whole process group, as ``ray stop`` does on that node)
while it evaluates; its evaluations run again on the head; nothing is lost or duplicated."""
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import hang_guard
from autobert.search import OpCountFitness, SearchConfig, SearchStore, run_search

ray = pytest.importorskip("ray")


class SlowToy:
    """The toy fitness, 0.5 s per candidate: long enough for a node to be stopped mid-evaluation. While
    it evaluates, a file ``<node id>-<pid>`` in ``busy_dir`` says so (the test stops the node then)."""

    def __init__(self, busy_dir: str):
        self.toy, self.busy_dir = OpCountFitness(), Path(busy_dir)

    def __call__(self, arch):
        busy = self.busy_dir / f"{ray.get_runtime_context().get_node_id()}-{os.getpid()}"
        busy.touch()
        try:
            time.sleep(0.5)
            return self.toy(arch)
        finally:
            busy.unlink()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _node_ports() -> list[str]:
    """Every port a node listens on, free ones: two nodes on one machine must not collide."""
    names = ["--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
             "--dashboard-agent-grpc-port", "--metrics-export-port", "--runtime-env-agent-port"]
    return [arg for name in names for arg in (name, str(_free_port()))]


class RayNode:
    """One ``ray start --block`` in its own process group, up once ``up()`` says so; ``stop`` ends the
    node and all its workers. Ray gives a raylet a fixed 30 s to register: on a starved machine a
    start can miss that, so a node that fails that way is started once more."""

    def __init__(self, args: list[str], log: Path, env: dict, up):
        self.args, self.log, self.env = args, log, env
        for attempt in (1, 2):
            self._spawn()
            try:
                while not up():
                    self.check()
                    time.sleep(0.5)
                return
            except RuntimeError as e:
                self.stop()
                if attempt == 2 or "timed out during startup" not in str(e):
                    raise

    def _spawn(self) -> None:
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(["ray", "start", "--block", "--disable-usage-stats", *self.args,
                                          *_node_ports()],
                                         stdout=out, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)

    def check(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"ray start exited ({self.proc.returncode}): {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        """SIGTERM to the group, SIGKILL to what is left after 10 s (what ``ray stop`` does)."""
        for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline:
                try:
                    os.killpg(self.proc.pid, 0)
                except ProcessLookupError:
                    self.proc.wait()
                    return
                self.proc.poll()  # reap the leader, so an empty group is gone
                time.sleep(0.2)


def _warm_up() -> str:
    """A task: the worker imports this module (torch, autobert), the slow part of an actor's start on a
    loaded machine; the evaluators then start in the warm workers and both nodes work from the start."""
    time.sleep(1.0)  # two at once per node: two worker processes warmed
    return ray.get_runtime_context().get_node_id()


def _second_node() -> list[str]:
    return [n["NodeID"] for n in ray.nodes() if n["Alive"] and "second" in n["Resources"]]


@pytest.fixture
def two_nodes(tmp_path, monkeypatch):
    """(head node, second node, the second's node id) of a cluster this driver is connected to."""
    # Short: Ray's unix sockets live under it (108-byte limit); private: no stale ray_current_cluster.
    root = Path(tempfile.mkdtemp(prefix="abray-", dir="/tmp"))
    # Workers unpickle SlowToy (this module); token authentication would need a token file per cluster.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    env = dict(os.environ)
    port = _free_port()
    address = f"{ray.util.get_node_ip_address()}:{port}"
    nodes = []
    try:
        with hang_guard(300, "starting a two-node Ray cluster"):
            nodes.append(RayNode(["--head", "--port", str(port), "--num-cpus", "2", "--resources", '{"head": 2}',
                                  "--include-dashboard", "false", "--temp-dir", str(root)], root / "head.log", env,
                                 up=(root / "ray_current_cluster").exists))
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
            nodes.append(RayNode(["--address", address, "--num-cpus", "2", "--resources", '{"second": 2}'],
                                 root / "second.log", env, up=_second_node))
            warm = ray.remote(num_cpus=1)(_warm_up)
            ray.get([warm.options(resources={node: 1}).remote() for node in ("head", "second") for _ in range(2)])
        yield nodes[0], nodes[1], _second_node()[0]
    finally:
        ray.shutdown()
        for node in reversed(nodes):
            node.stop()
        shutil.rmtree(root, ignore_errors=True)


def _done_on(run: Path) -> list[str]:
    """Node ids of the finished candidates so far, read while the search writes: plain read-only
    SQLite, as ``SearchStore`` would bring the schema up to date and race the search creating it."""
    db = run / "search.sqlite"
    if not db.exists():
        return []
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)) as con:
            rows = con.execute("SELECT metrics_json FROM candidates WHERE status='done'").fetchall()
    except sqlite3.Error:  # not created yet, or mid-write
        return []
    return [json.loads(m)["node"] for (m,) in rows if m]


BUDGET = 24


@pytest.mark.slow
def test_search_survives_losing_a_node(tmp_path, two_nodes, caplog):
    head, second, second_id = two_nodes
    run, busy = tmp_path / "run", tmp_path / "busy"
    busy.mkdir()
    stopped = {}

    def stop_second_node():
        """Once the second node has finished 3 candidates (or 1 by half the budget: a slow start), stop it
        while it evaluates another."""
        while not stopped:
            done = _done_on(run)
            there = sum(n == second_id for n in done)
            if (there >= 3 or there and len(done) >= BUDGET // 2) and any(busy.glob(f"{second_id}-*")):
                stopped["busy"] = len(list(busy.glob(f"{second_id}-*")))
                stopped["at"] = time.perf_counter()
                stopped["done"] = len(_done_on(run))
                second.stop()
                return
            time.sleep(0.05)

    killer = threading.Thread(target=stop_second_node, daemon=True)
    start = time.perf_counter()
    killer.start()
    config = SearchConfig(fitness="toy", budget=BUDGET, executor="ray", workers=4, model={"n_layers": 2},
                          evolution={"population_size": 6, "sample_size": 3})
    try:
        with hang_guard(300, "the search on two nodes"), \
                caplog.at_level(logging.WARNING, logger="autobert.search.executor"):
            summary = run_search(run, config, evaluator_factory=lambda: SlowToy(str(busy)))
    finally:
        stopped.setdefault("done", None)
        killer.join(15)
    end = time.perf_counter()
    assert stopped["done"] is not None, "the second node never finished a candidate"
    with SearchStore(run / "search.sqlite") as store:
        rows = sorted((dict(r) for r in store.rows()), key=lambda r: r["finish_seq"])
    nodes = [json.loads(r["metrics_json"])["node"] for r in rows if r["status"] == "done"]  # in finishing order
    assert summary.done == BUDGET and len(nodes) == BUDGET
    assert second_id in nodes and {n for n in nodes if n != second_id}, "candidates ran on both nodes"
    assert nodes[-1] != second_id  # after the stop, the head did the rest
    assert len({r["fingerprint"] for r in rows}) == len(rows)  # nothing duplicated
    assert not [r for r in rows if r["status"] in ("pending", "running")]  # nothing lost
    assert all(r["status"] == "done" for r in rows)  # a lost worker's candidate is retried, not failed
    again = [m for m in caplog.messages if "evaluating it again" in m]
    assert len(again) >= 1, "stopping the node interrupted at least one evaluation"
    retried = {int(m.split("candidate ")[1].split()[0]) for m in again}
    by_id = {r["id"]: json.loads(r["metrics_json"])["node"] for r in rows}
    assert all(by_id[k] != second_id for k in retried)  # re-run elsewhere, once: one row each
    print(f"search {end - start:.1f} s; second node stopped {stopped['at'] - start:.1f} s in, after "
          f"{stopped['done']} done, {stopped['busy']} evaluating there; on the second node "
          f"{sum(n == second_id for n in nodes)}, on the head {sum(n != second_id for n in nodes)}; "
          f"re-run on the head: {sorted(retried)}")
