"""Failed candidates (exceptions, NaN, constraints) are recorded with a reason; the search goes on."""
import math

from autobert.model import ConvLayer
from autobert.search import OpCountFitness, SearchConfig, SearchStore, evaluate_safely, run_search
from autobert.search.outcome import CandidateFailed


class Flaky:
    """Raises on any conv layer, NaN when a graph uses exp, else the toy fitness."""

    def __init__(self):
        self.toy = OpCountFitness()

    def __call__(self, arch):
        if any(isinstance(layer, ConvLayer) for layer in arch.layers):
            raise RuntimeError("conv layers explode here")
        if any("exp" in layer.graph.op_counts() for layer in arch.layers):
            return float("nan")
        return self.toy(arch)


def _config(**changes):
    return SearchConfig(fitness="toy", budget=40, model={"n_layers": 2},
                        evolution={"population_size": 8, "sample_size": 4, "conv_prob": 0.5}, **changes)


def test_exceptions_and_nan_fail_only_that_candidate(tmp_path):
    summary = run_search(tmp_path / "run", _config(), evaluator_factory=Flaky)
    assert summary.done == 40 and summary.stopped == "budget"
    with SearchStore(tmp_path / "run" / "search.sqlite") as store:
        rows = [dict(r) for r in store.rows()]
    failed = [r for r in rows if r["status"] == "failed"]
    assert failed, "the toy space should have produced conv layers"
    assert all(r["reason"].startswith(("exception: RuntimeError: conv layers explode", "non-finite fitness"))
               for r in failed)
    assert all(r["fitness"] is None for r in failed)
    assert all(r["fitness"] is not None and math.isfinite(r["fitness"]) for r in rows if r["status"] == "done")
    children = [r for r in failed if r["op"] is not None]
    assert all(r["reward"] == -0.5 for r in children)  # the default failure penalty
    assert sum(r["status"] == "done" for r in rows) == 40
    assert not [r for r in rows if r["status"] in ("pending", "running")]


def test_constraint_violations_are_recorded_not_evaluated(tmp_path):
    calls = []

    def factory():
        def fitness(arch):
            calls.append(arch.fingerprint())
            return 1.0
        return fitness

    # Standard BERT (Q, K, V and O projections in every layer) is the largest architecture: cap just below it.
    from autobert.search.runner import base_arch
    limit = base_arch(SearchConfig(fitness="toy", model={"n_layers": 2}), 128).num_parameters("mlm") - 1
    summary = run_search(tmp_path / "run", _config(constraints={"max_params": limit}), evaluator_factory=factory)
    with SearchStore(tmp_path / "run" / "search.sqlite") as store:
        rows = [dict(r) for r in store.rows()]
    over = [r for r in rows if r["params"] > limit]
    assert over and all(r["status"] == "failed" and r["reason"].startswith("constraint:") for r in over)
    assert not {r["fingerprint"] for r in over} & set(calls)
    assert summary.done == 40


def test_evaluate_safely_reasons():
    from autobert.model import tiny
    arch = tiny()
    assert evaluate_safely(lambda a: (2.0, {"x": 1}), arch).metrics == {"x": 1}
    assert evaluate_safely(lambda a: float("inf"), arch).reason == "non-finite fitness inf"
    assert evaluate_safely(lambda a: "abc", arch).status == "failed"

    def over(a):
        raise CandidateFailed("constraint: latency 9 ms > max_latency_ms 1")
    assert evaluate_safely(over, arch).reason.startswith("constraint: latency")


def test_degenerate_seed_is_recorded_failed_not_evaluated(tmp_path):
    """A degenerate architecture (here a user's seed) never reaches the evaluator and costs no budget."""
    from autobert.graph import parse
    from autobert.model import AttentionLayer
    from autobert.search import runner

    zero = parse("matmul(sub(cosine(Q, transpose(square(K))), cosine(Q, transpose(square(K)))), softsign(V))")
    evaluated = []

    def factory():
        toy = OpCountFitness()

        def fitness(arch):
            evaluated.append(arch)
            return toy(arch)
        return fitness

    original = runner.seed_architectures
    runner.seed_architectures = lambda config: [(AttentionLayer(zero),) * config.model.n_layers]
    try:
        summary = run_search(tmp_path / "run", _config().replace(budget=10), evaluator_factory=factory)
    finally:
        runner.seed_architectures = original
    with SearchStore(tmp_path / "run" / "search.sqlite") as store:
        first = dict(next(store.rows()))
    assert first["status"] == "failed" and first["reason"].startswith("degenerate: layers[0]")
    assert "constant output" in first["reason"] and summary.done == 10 == len(evaluated)
    assert all(zero not in [lay.graph for lay in a.layers if isinstance(lay, AttentionLayer)] for a in evaluated)


def test_toy_search_evaluates_each_function_once(tmp_path):
    run_search(tmp_path / "run", _config(), evaluator_factory=lambda: OpCountFitness())
    with SearchStore(tmp_path / "run" / "search.sqlite") as store:
        rows = [dict(r) for r in store.rows()]
        rejected = store.rejected_totals()
    from autobert.model import ArchConfig
    functions = [ArchConfig.from_json(r["arch_json"]).functional_fingerprint() for r in rows]
    assert functions == [r["function"] for r in rows] and len(set(functions)) == len(rows)
    assert set(rejected) <= {"degenerate", "trivial", "simplified", "duplicate", "functional duplicate"}
