"""Ranking architectures without training them, measured on NAS-Bench-BERT.

>>> from autobert.rank import load_nas_bench_bert, construct, text_batch, score_architecture
>>> bench = load_nas_bench_bert("nas-bench-bert/")
>>> arch = construct(bench.entries[0].encoding, "as-trained")
>>> scores = score_architecture(arch, text_batch("wiki.valid.txt", tokenizer, 8, 128))
"""
from autobert.rank.benchmark import (Benchmark, BenchmarkEntry, BenchmarkError, FlexiEncoding, LayerLabels,
                                     load_nas_bench_bert)
from autobert.rank.construction import CONSTRUCTIONS, as_labelled, as_trained, construct
from autobert.rank.probe import Probe, build_model
from autobert.rank.registry import PROXIES, Proxy, proxy_score, register, score_architecture, score_probe
from autobert.rank.text_batch import TextBatch, text_batch

__all__ = ["Benchmark", "BenchmarkEntry", "BenchmarkError", "FlexiEncoding", "LayerLabels", "load_nas_bench_bert",
           "CONSTRUCTIONS", "as_trained", "as_labelled", "construct", "Probe", "build_model",
           "PROXIES", "Proxy", "register", "proxy_score", "score_architecture", "score_probe",
           "TextBatch", "text_batch"]
