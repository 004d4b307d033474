"""The evolution engine on a training-free toy fitness: finds the optimum, is deterministic, replays."""
import random

import pytest

from autobert.graph import library, parse
from autobert.model import AttentionLayer, ConvLayer, tiny
from autobert.model.space import SearchSpace
from autobert.search import ARMS, Evolution, OpCountFitness, OpPriority, feasible_arms, mutate_arch
from autobert.search.mutation import MutationError

TARGET = "matmul(softmax(scale(matmul(Q, transpose(tanh(K))))), add(Q, V))"  # not a library graph


def _engine(strategy, seed, layers=2, c=0.5, temperature=0.5):
    space = SearchSpace(layers, kernel_sizes=(3, 5, 7), max_nodes=10, random_graph_prob=0.3, mutation_prob=0.5)
    return Evolution(tiny(["standard"] * layers), space, strategy, population_size=20, sample_size=10, seed=seed,
                     priority=OpPriority(ARMS, c=c, temperature=temperature),
                     seeds=[(AttentionLayer(library["standard"]),) * layers])


def _run(engine, fitness, budget):
    """Propose/evaluate/tell until ``budget`` or the optimum; the results in the order they were told."""
    seen, results = set(), []
    for i in range(budget):
        p = engine.propose(i, seen.__contains__)
        assert p.fingerprint not in seen and p.function not in seen  # never the same architecture or function
        seen.update((p.fingerprint, p.function))
        results.append({"fingerprint": p.fingerprint, "layers": p.layers, "fitness": fitness(engine.arch(p.layers)),
                        "parent": p.parent, "arm": p.arm, "generation": p.generation})
        engine.tell(**results[-1])
        if results[-1]["fitness"] == 0:
            break
    return results


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_opnas_finds_the_toy_optimum(seed):
    fitness = OpCountFitness(TARGET)
    engine = _engine("opnas", seed)
    _run(engine, fitness, budget=800)
    assert engine.best.fitness == 0
    assert fitness.counts == engine.best.layers[0].graph.op_counts()


def test_same_seed_same_search_and_replay_rebuilds_the_state():
    fitness = OpCountFitness(TARGET)
    a, b = _engine("opnas", 7), _engine("opnas", 7)
    results = _run(a, fitness, 120)
    assert results == _run(b, fitness, 120)
    assert _run(_engine("opnas", 8), fitness, 120) != results
    # Rebuild from the stored results alone (what a resume does): same state, same next proposal.
    c = _engine("opnas", 7)
    c.replay(results)
    assert c.priority.snapshot() == a.priority.snapshot()
    assert [m.fingerprint for m in c.population] == [m.fingerprint for m in a.population]
    seen = {r["fingerprint"] for r in results} | {engine_fn(a, r["layers"]) for r in results}
    assert c.propose(len(results), seen.__contains__) == a.propose(len(results), seen.__contains__)


def engine_fn(engine, layers):
    return engine.arch(layers).functional_fingerprint()


def test_functional_duplicates_are_redrawn_and_counted():
    rewritten = parse("matmul(matmul(relu(Q), transpose(relu(K))), V)")  # library "linear", reassociated
    assert rewritten != library["linear"]
    space = SearchSpace(2, kernel_sizes=(3, 5), max_nodes=10, random_graph_prob=0.3, mutation_prob=0.5)
    seeds = [(AttentionLayer(library["linear"]),) * 2, (AttentionLayer(rewritten),) * 2]
    engine = Evolution(tiny(["standard"] * 2), space, "opnas", population_size=4, sample_size=2, seed=0, seeds=seeds)
    seen = set()
    first = engine.propose(0, seen.__contains__)
    seen.update((first.fingerprint, first.function))
    second = engine.propose(1, seen.__contains__)
    assert first.layers == seeds[0] and second.layers != seeds[1]  # same function: drawn at random instead
    assert second.rejected["functional duplicate"] == 1 and second.kind == "random"


def test_random_strategy_draws_without_parents():
    engine = _engine("random", 0)
    seen = set()
    for i in range(30):
        p = engine.propose(i, seen.__contains__)
        seen.add(p.fingerprint)
        assert p.parent is None and p.kind == "random"
        engine.tell(p.fingerprint, p.layers, 1.0)


def test_initial_population_starts_with_the_seeds_and_evolution_is_uniform():
    engine = _engine("evolution", 0)
    assert engine.priority.uniform
    p = engine.propose(0, lambda fp: False)
    assert p.kind == "seed" and p.layers == (AttentionLayer(library["standard"]),) * 2


def test_architecture_mutations():
    space = SearchSpace(3, kernel_sizes=(3, 5, 7), max_nodes=10, mutation_prob=0.5)
    layers = (AttentionLayer(library["standard"]), ConvLayer(3), AttentionLayer(library["linear"]))
    rng = random.Random(0)
    assert set(feasible_arms(layers, space)) == set(ARMS)
    child, info = mutate_arch(layers, "kernel", rng, space)
    assert info.layer == 1 and child[1] != layers[1] and isinstance(child[1], ConvLayer)
    child, info = mutate_arch(layers, "to_conv", rng, space)
    assert isinstance(layers[info.layer], AttentionLayer) and isinstance(child[info.layer], ConvLayer)
    child, info = mutate_arch(layers, "to_attention", rng, space)
    assert info.layer == 1 and isinstance(child[1], AttentionLayer)
    child, info = mutate_arch(layers, "sqrt", rng, space)
    assert info.kind in ("insert", "replace") and child[info.layer].graph.op_counts().get("sqrt", 0) >= 1
    only_attention = (AttentionLayer(library["standard"]),) * 3
    assert not {"kernel", "to_attention"} & set(feasible_arms(only_attention, space))
    assert not set(feasible_arms((ConvLayer(3),) * 3, space)) & {"to_conv", "sqrt", "delete"}
    with pytest.raises(MutationError):
        mutate_arch(only_attention, "kernel", rng, space)


def test_std_reward_normalisation_replays_and_is_scale_free():
    """reward_norm "std": the engine state rebuilt from stored results equals the live one, and a
    fitness scaled by 1/1000 gives the same search (c and T no longer depend on the loss scale)."""
    def engine(seed):
        space = SearchSpace(2, kernel_sizes=(3, 5, 7), max_nodes=10, random_graph_prob=0.3, mutation_prob=0.5)
        return Evolution(tiny(["standard"] * 2), space, "opnas", population_size=20, sample_size=10, seed=seed,
                         priority=OpPriority(ARMS, c=0.25, temperature=0.25, reward_norm="std"),
                         seeds=[(AttentionLayer(library["standard"]),) * 2])
    fitness = OpCountFitness(TARGET)
    a = engine(3)
    results = _run(a, fitness, 120)
    scaled = _run(engine(3), lambda arch: fitness(arch) / 1000, 120)
    assert [r["fingerprint"] for r in scaled] == [r["fingerprint"] for r in results]
    c = engine(3)
    c.replay(results)
    assert c.priority.snapshot() == a.priority.snapshot()
