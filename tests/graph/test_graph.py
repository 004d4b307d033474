"""Graph values: canonical form, fingerprint, expression and JSON round-trips, bad input."""
import json
import random

import pytest

from autobert.graph import Graph, GraphError, library, parse, random_graph
from autobert.graph.graph import MAX_NODES

STANDARD = "matmul(softmax(scale(matmul(Q, transpose(K)))), V)"


@pytest.mark.parametrize("name", sorted(library))
def test_library_round_trips(name):
    g = library[name]
    assert parse(g.to_expr()) == g
    assert Graph.from_json(g.to_json()) == g
    assert Graph.from_json(json.loads(g.to_json())) == g
    assert g.shapes[g.output] == ("N", "d")


def test_random_round_trips():
    rng = random.Random(0)
    for _ in range(300):
        g = random_graph(rng, 14)
        assert parse(g.to_expr()) == g
        assert Graph.from_json(g.to_json()).fingerprint() == g.fingerprint()


def test_whitespace_and_layout_do_not_matter():
    assert parse(" matmul( softmax(scale(matmul(Q,transpose( K )))) ,\n V ) ") == library["standard"]


def test_fingerprint_invariant_under_commutative_reordering():
    a = parse("matmul(softmax(add(matmul(Q, transpose(K)), matmul(K, transpose(Q)))), mul(V, Q))")
    b = parse("matmul(softmax(add(matmul(K, transpose(Q)), matmul(Q, transpose(K)))), mul(Q, V))")
    assert a == b and a.fingerprint() == b.fingerprint() and a.to_json() == b.to_json()


def test_non_commutative_order_matters():
    assert parse("sub(Q, K)") != parse("sub(K, Q)")
    assert parse("div(Q, K)").fingerprint() != parse("div(K, Q)").fingerprint()


def test_duplicated_subtrees_are_merged():
    g = parse("matmul(add(tanh(matmul(Q, transpose(K))), sigmoid(matmul(Q, transpose(K)))), V)")
    assert g.op_counts()["matmul"] == 2 and g.op_counts()["transpose"] == 1  # the score matmul once, plus @ V
    # the same tree written through JSON with duplicate nodes
    doc = {"schema_version": 1, "output": 11, "nodes": [
        {"op": "Q"}, {"op": "K"}, {"op": "transpose", "args": [1]}, {"op": "matmul", "args": [0, 2]},
        {"op": "tanh", "args": [3]}, {"op": "K"}, {"op": "transpose", "args": [5]},
        {"op": "matmul", "args": [0, 6]}, {"op": "sigmoid", "args": [7]}, {"op": "add", "args": [4, 8]},
        {"op": "V"}, {"op": "matmul", "args": [9, 10]}]}
    g2 = Graph.from_json(doc)
    assert g2 == g and g2.fingerprint() == g.fingerprint()


def test_dead_nodes_are_removed():
    doc = {"schema_version": 1, "output": 5, "nodes": [
        {"op": "Q"}, {"op": "K"}, {"op": "V"}, {"op": "exp", "args": [1]}, {"op": "relu", "args": [3]},
        {"op": "tanh", "args": [0]}]}
    g = Graph.from_json(doc)
    assert g == parse("tanh(Q)") and g.num_ops == 1 and g.inputs_used == {"Q"}


def test_fingerprints_differ_for_different_graphs():
    rng = random.Random(1)
    graphs = {random_graph(rng, 12) for _ in range(2000)}
    assert len({g.fingerprint() for g in graphs}) == len(graphs)
    assert len({g.fingerprint() for g in library.values()}) == len(library)


def test_graph_is_immutable_and_hashable():
    g = library["standard"]
    with pytest.raises(AttributeError):
        g._nodes = ()
    assert {g: 1}[parse(STANDARD)] == 1


def test_json_is_versioned_and_stable():
    doc = json.loads(library["standard"].to_json())
    assert doc["schema_version"] == 1 and doc["output"] == len(doc["nodes"]) - 1
    assert library["standard"].fingerprint() == "d9bd799dc135c6aa"  # stable across releases: a cache key


@pytest.mark.parametrize("text, match", [
    ("", "empty expression"),
    ("   ", "empty expression"),
    ("foo(Q)", "unknown op 'foo'"),
    ("X", "unknown op 'X'"),
    ("relu(Q, K)", "relu takes 1 argument"),
    ("add(Q)", "add takes 2 argument"),
    ("matmul(Q, K)", "contraction mismatch: left operand is \\(N,d\\), right operand is \\(N,d\\)"),
    ("add(Q, transpose(K))", "operand shapes differ"),
    ("transpose(Q)", "output .* has shape \\(d,N\\); the output must be \\(N,d\\)"),
    ("matmul(Q, transpose(K))", "must be \\(N,d\\)"),
    ("relu(Q", "expected ',' or '\\)' at position 6"),
    ("relu(Q))", "unexpected '\\)' at position 7"),
    ("relu()", "has no arguments"),
    ("relu(,Q)", "expected an op name or Q, K, V at position 5"),
    ("Q(K)", "input Q takes no arguments"),
    ("relu(Q) V", "unexpected 'V' at position 8"),
    ("relu(Q$)", "unexpected character '\\$' at position 6"),
    ("\x00\xff garbage ))((", "unexpected character"),
])
def test_bad_expressions(text, match):
    with pytest.raises(GraphError, match=match):
        parse(text)


def test_parse_rejects_non_strings():
    with pytest.raises(GraphError, match="must be a string"):
        parse(None)


def test_deep_nesting_is_a_graph_error():
    deep = "relu(" * 10_000 + "Q" + ")" * 10_000
    with pytest.raises(GraphError, match="at most"):
        parse(deep)
    ok = "tanh(" * MAX_NODES + "Q" + ")" * MAX_NODES  # tanh(tanh(x)) does not simplify (relu(relu(x)) would)
    assert parse(ok).num_ops == MAX_NODES
    with pytest.raises(GraphError, match=f"at most {MAX_NODES}"):
        parse("tanh(" + ok + ")")


@pytest.mark.parametrize("doc, match", [
    ("{not json", "does not parse"),
    ("[]", "must be an object"),
    ('{"nodes": [], "output": 0}', "schema_version"),
    ('{"schema_version": 99, "nodes": [{"op": "Q"}], "output": 0}', "schema_version is 99"),
    ('{"schema_version": 1, "nodes": [], "output": 0}', "no nodes"),
    ('{"schema_version": 1, "nodes": {"op": "Q"}, "output": 0}', "'nodes' must be a list"),
    ('{"schema_version": 1, "nodes": [{"op": "Q"}]}', "no 'output'"),
    ('{"schema_version": 1, "nodes": [{"op": "Q"}], "output": 3}', "output 3 is not a node index"),
    ('{"schema_version": 1, "nodes": [{"op": "Q"}], "output": true}', "not a node index"),
    ('{"schema_version": 1, "nodes": [{"op": "Q"}, {"op": "relu", "args": [2]}, {"op": "tanh", "args": [1]}], '
     '"output": 2}', "node 1 \\(relu\\): argument 0 refers to node 2, which is not defined before it"),
    ('{"schema_version": 1, "nodes": [{"op": "relu", "args": [0]}], "output": 0}', "refers to node 0"),
    ('{"schema_version": 1, "nodes": [{"op": "Q"}, {"op": "relu", "args": ["0"]}], "output": 1}',
     "argument 0 must be a node index"),
    ('{"schema_version": 1, "nodes": [{"op": "Q"}, {"op": "relu", "args": 0}], "output": 1}', "'args' must be a list"),
    ('{"schema_version": 1, "nodes": [{"op": "Q"}, {"op": 3}], "output": 1}', "node 1: expected an object"),
    ('{"schema_version": 1, "nodes": [{"op": "Q", "x": 1}], "output": 0}', "unknown keys"),
    ('{"schema_version": 1, "nodes": [{"op": "Q"}], "output": 0, "extra": 1}', "unknown keys"),
    ('{"schema_version": 1, "nodes": [{"op": "Q"}, {"op": "K"}, {"op": "matmul", "args": [0, 1]}], "output": 2}',
     "node 2 \\(matmul\\): contraction mismatch"),
])
def test_bad_json(doc, match):
    with pytest.raises(GraphError, match=match):
        Graph.from_json(doc)


def test_huge_json_is_a_graph_error():
    nodes = [{"op": "Q"}] + [{"op": "relu", "args": [i]} for i in range(200_000)]
    with pytest.raises(GraphError, match="at most"):
        Graph.from_json(json.dumps({"schema_version": 1, "nodes": nodes, "output": 200_000}))
    with pytest.raises(GraphError, match="at most"):
        Graph.from_json({"schema_version": 1, "nodes": nodes, "output": 200_000})
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(GraphError):
        Graph.from_json(deep)
    with pytest.raises(GraphError, match="str or dict"):
        Graph.from_json(42)


def test_pickle_round_trip():
    import pickle
    g = library["abz_sqrt_score"]
    assert pickle.loads(pickle.dumps(g)) == g
