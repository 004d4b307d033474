"""The planner: classification, region splitting, derivative programs, speed."""
import random
import time

import pytest

from autobert.fusion.planner import plan
from autobert.graph import library, parse, random_graph
from autobert_ext.plan import Plan

STREAMING = ["standard", "abz_softplus_key", "abz_softsign_key_qv", "abz_sqrt_key_qkv", "abz_sqrt_softplus_key",
             "abz_sqrt_score", "abz_log_key_qkv", "sigmoid", "cosine", "relu2"]


@pytest.mark.parametrize("name", STREAMING)
def test_library_attention_graphs_stream(name):
    p = plan(library[name], 64)
    assert p.kind == "streaming"
    assert "NN" not in p.shapes, "a streaming plan never materialises an (N,N) value"
    kinds = [s.kind for s in p.steps]
    assert kinds.count("streaming") == 1


def test_norms_and_score_programs():
    assert plan(library["standard"], 64).steps[-1].norm == "softmax"
    assert plan(library["sigmoid"], 64).steps[-1].norm == "none"
    score = plan(library["standard"], 16).steps[-1].score
    assert [i[0] for i in score.instrs] == [5] and score.instrs[0][4] == pytest.approx(0.25)  # mulc 1/sqrt(16)


def test_linear_attention_is_general_without_nn():
    p = plan(library["linear"], 64)
    assert p.kind == "general" and "NN" not in p.shapes and "dd" in p.shapes


def test_post_and_pre_programs():
    g = parse("add(matmul(softmax(scale(matmul(tanh(Q), transpose(add(Q, K))))), sigmoid(V)), Q)")
    p = plan(g, 8)
    assert p.kind == "streaming"
    assert [s.kind for s in p.steps] == ["elementwise", "streaming", "elementwise"]


@pytest.mark.parametrize("expr", [
    # the score matrix is read twice (not streamable): general plan
    "matmul(add(softmax(matmul(Q, transpose(K))), matmul(Q, transpose(K))), V)",
    # softmax over keys of a transposed score
    "matmul(softmax(transpose(matmul(Q, transpose(K)))), V)",
])
def test_non_streaming_attention_is_general(expr):
    assert plan(parse(expr), 8).kind == "general"


def test_elementwise_chains_fuse_into_one_step():
    g = parse("tanh(sigmoid(add(mul(Q, K), softsign(V))))")
    p = plan(g, 8)
    assert [s.kind for s in p.steps] == ["elementwise"] and len(p.steps[0].program.instrs) == 5


def test_softmax_absorbs_its_input_chain():
    g = parse("matmul(softmax(tanh(add(matmul(Q, transpose(K)), matmul(K, transpose(Q))))), V)")
    p = plan(g, 8)
    sm = [s for s in p.steps if s.kind == "softmax"]
    assert len(sm) == 1 and len(sm[0].inputs) == 2 and len(sm[0].program.instrs) == 2
    assert not any(s.kind == "elementwise" for s in p.steps)


def test_plan_json_round_trip():
    for g in library.values():
        p = plan(g, 40)
        assert Plan.from_json(p.to_json()) == p


def test_planning_is_fast_and_compiles_nothing():
    rng = random.Random(0)
    graphs = [random_graph(rng, 12) for _ in range(200)] + list(library.values())
    t = time.perf_counter()
    for g in graphs:
        plan(g, 64)
    per_graph = (time.perf_counter() - t) / len(graphs)
    assert per_graph < 5e-3, f"planning took {per_graph * 1e3:.2f} ms per graph"


def test_bad_arguments():
    with pytest.raises(TypeError):
        plan("standard", 64)
    with pytest.raises(ValueError, match="d must be >= 1"):
        plan(library["standard"], 0)
