"""OP-NAS architecture search (AutoBERT-Zero, DESIGN.md §4).

Regularised evolution whose mutations choose ops by a UCB operation priority, candidates scored
through a BIWS weight-sharing supernet, every candidate recorded in a SQLite run database that a
killed search resumes from.

>>> from autobert.search import SearchConfig, run_search
>>> cfg = SearchConfig.preset("tiny", corpus="wiki.txt", vocab="vocab.txt", budget=40)
>>> summary = run_search("runs/opnas", cfg)          # or run_search("runs/opnas", resume=True)
"""
from autobert.search.config import BIWSConfig, EvolutionConfig, ModelSizes, SearchConfig
from autobert.search.constraints import Constraints, measure_latency_ms
from autobert.search.evolution import STRATEGIES, Evolution, Member, Proposal, SearchExhausted
from autobert.search.executor import LocalExecutor, RayExecutor, make_executor
from autobert.search.mutation import ARMS, ArchMutation, MutationError, feasible_arms, mutate_arch
from autobert.search.outcome import CandidateFailed, Outcome, evaluate_safely
from autobert.search.priority import OpPriority
from autobert.search.rankcorr import bootstrap_ci, kendall_tau, ndcg_at_k, rank_correlation, spearman_rho
from autobert.search.results import best_architectures, pareto_front, write_results
from autobert.search.runner import SearchSummary, run_search
from autobert.search.store import SearchStore
from autobert.search.toy import OpCountFitness

__all__ = ["SearchConfig", "ModelSizes", "EvolutionConfig", "BIWSConfig", "Constraints", "measure_latency_ms",
           "Evolution", "Member", "Proposal", "STRATEGIES", "SearchExhausted", "OpPriority",
           "ARMS", "ArchMutation", "MutationError", "feasible_arms", "mutate_arch",
           "Outcome", "CandidateFailed", "evaluate_safely", "LocalExecutor", "RayExecutor", "make_executor",
           "SearchStore", "run_search", "SearchSummary", "best_architectures", "pareto_front", "write_results",
           "OpCountFitness", "kendall_tau", "spearman_rho", "ndcg_at_k", "bootstrap_ci", "rank_correlation"]
