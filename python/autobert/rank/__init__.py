"""Ranking architectures without training them, measured on NAS-Bench-BERT.

>>> from autobert.rank import load_nas_bench_bert, construct, text_batch, score_architecture
>>> bench = load_nas_bench_bert("nas-bench-bert/")
>>> arch = construct(bench.entries[0].encoding, "as-trained")
>>> scores = score_architecture(arch, text_batch("wiki.valid.txt", tokenizer, 16, 64))

Proxies (``PROXIES``) are label-free functions of a model at initialisation and a text batch;
``run_rank`` judges them against the benchmark's GLUE scores; surrogates (``EnsembleSurrogate``,
``SklearnSurrogate``) learn from a few labels; ``STRATEGIES`` search the benchmark as a table.
"""
from autobert.rank.bench_search import SearchStudyConfig, run_bench_search, surrogate_study
from autobert.rank.benchmark import (Benchmark, BenchmarkEntry, BenchmarkError, FlexiEncoding, LayerLabels,
                                     load_nas_bench_bert)
from autobert.rank.config import RankConfig
from autobert.rank.construction import CONSTRUCTIONS, as_labelled, as_trained, construct
from autobert.rank.encoding import arch_features, feature_matrix
from autobert.rank.evaluate import evaluate_proxies
from autobert.rank.mutation_arms import ARMS, Choices, mutate
from autobert.rank.probe import Probe, build_model
from autobert.rank.registry import PROXIES, Proxy, register
from autobert.rank.scoring import proxy_score, score_architecture, score_probe
from autobert.rank.run import compute_proxies, run_rank
from autobert.rank.stats import paired_difference, precision_at_top, rank_metrics
from autobert.rank.strategies import STRATEGIES, boshnas, opnas, random_search, regularized_evolution
from autobert.rank.surrogate import EnsembleConfig, EnsembleSurrogate, make_surrogate, ucb
from autobert.rank.tabular import Session, TabularBenchmark
from autobert.rank.text_batch import TextBatch, text_batch

__all__ = ["Benchmark", "BenchmarkEntry", "BenchmarkError", "FlexiEncoding", "LayerLabels", "load_nas_bench_bert",
           "CONSTRUCTIONS", "as_trained", "as_labelled", "construct", "Probe", "build_model",
           "PROXIES", "Proxy", "register", "proxy_score", "score_architecture", "score_probe",
           "TextBatch", "text_batch", "RankConfig", "run_rank", "compute_proxies", "evaluate_proxies",
           "rank_metrics", "paired_difference", "precision_at_top", "arch_features", "feature_matrix",
           "EnsembleSurrogate", "EnsembleConfig", "make_surrogate", "ucb", "TabularBenchmark", "Session",
           "ARMS", "Choices", "mutate", "STRATEGIES", "random_search", "regularized_evolution", "opnas", "boshnas",
           "SearchStudyConfig", "run_bench_search", "surrogate_study"]
