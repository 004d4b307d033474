"""The run audit: degenerate layers and repeated functions, found on inputs other than the probe's."""
from autobert.graph import library, parse
from autobert.search.audit import _draws, audit_run, layer_function, layer_problem, main
from autobert.search import OpCountFitness, SearchConfig, run_search


def test_layer_problems_on_other_inputs():
    draws, others = _draws(1), _draws(2)
    assert layer_problem(library["standard"], draws, others) is None
    assert layer_problem(parse("mul(V, div(K, K))"), draws, others) == "input K changes nothing"
    assert layer_problem(parse("relu(neg(abs(V)))"), draws, others) == "input V changes nothing"
    assert layer_function(parse("matmul(matmul(relu(Q), transpose(relu(K))), V)"), draws) == \
        layer_function(library["linear"], draws)


def test_audit_of_a_toy_search(tmp_path, capsys):
    run_search(tmp_path / "run", SearchConfig(fitness="toy", budget=30, model={"n_layers": 2},
                                              evolution={"population_size": 8, "sample_size": 4}),
               evaluator_factory=OpCountFitness)
    r = audit_run(tmp_path / "run")
    assert r["evaluated"] == 30 and r["with_degenerate_layer"] == 0 and r["distinct_functions"] == 30
    assert main([str(tmp_path / "run")]) == 0 and "0 with a degenerate layer" in capsys.readouterr().out
    assert main([str(tmp_path / "none")]) == 2
