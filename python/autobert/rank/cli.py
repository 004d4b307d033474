"""``autobert rank nas-bench-bert`` and ``autobert bench-search``: argument parsing, progress bars, printing.

The library (``run_rank``, ``run_bench_search``) only logs; this module prints.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path


def add_commands(sub) -> None:
    """Register the ranking subcommands on an argparse subparsers object."""
    r = sub.add_parser("rank", help="rank architectures without training them").add_subparsers(
        dest="rank_command", required=True)
    n = r.add_parser("nas-bench-bert", help="every training-free proxy on NAS-Bench-BERT, judged against GLUE")
    n.add_argument("--benchmark", required=True, help="NAS-Bench-BERT folder (or its BERT_benchmark.json)")
    n.add_argument("--corpus", required=True, help="text file or folder the probe batch is drawn from")
    n.add_argument("--vocab", required=True, help="WordPiece vocab.txt")
    n.add_argument("--out", required=True, help="run folder (an existing one resumes)")
    n.add_argument("--construction", default="as-trained", choices=("as-trained", "as-labelled"),
                   help="the models the benchmark's encodings stand for (default: as trained)")
    n.add_argument("--limit", type=int, help="only the first N benchmark entries")
    n.add_argument("--proxies", help="comma-separated proxy names (default: all)")
    n.add_argument("--batch-size", type=int, default=16, help="sequences in the probe batch")
    n.add_argument("--seq-len", type=int, default=64, help="tokens per probe sequence")
    n.add_argument("--seed", type=int, default=0)
    n.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the CIs (0: none)")
    n.add_argument("--no-plots", action="store_true")
    n.add_argument("--no-progress", action="store_true")
    n.set_defaults(func=_rank)

    s = sub.add_parser("bench-search", help="search strategies on the tabular NAS-Bench-BERT: regret vs queries")
    s.add_argument("--benchmark", required=True, help="NAS-Bench-BERT folder (or its BERT_benchmark.json)")
    s.add_argument("--out", required=True, help="folder for regret.json and regret.png")
    s.add_argument("--strategies", default="random,evolution,opnas,boshnas",
                   help="comma-separated: random, evolution, opnas, boshnas")
    s.add_argument("--repeats", type=int, default=30)
    s.add_argument("--budget", type=int, default=50, help="label queries per search")
    s.add_argument("--construction", default="as-trained", choices=("as-trained", "as-labelled"))
    s.add_argument("--proxies", help="proxies.csv of a rank run: its columns join the surrogate's features")
    s.add_argument("--labelled", type=int, default=25, help="surrogate study: labels each surrogate is trained on")
    s.add_argument("--surrogate-splits", type=int, default=30, help="surrogate study: random splits (0: none)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=_bench_search)


class _Bar:
    """A tqdm bar the library's progress callback ``(event, done=, total=)`` moves."""

    def __init__(self, disable: bool, desc: str, unit: str):
        from tqdm.auto import tqdm
        self.bar = tqdm(desc=desc, unit=unit, disable=disable, file=sys.stderr, dynamic_ncols=True)

    def __call__(self, event: str, done: int, total: int) -> None:
        self.bar.total, self.bar.n = total, done
        self.bar.refresh()

    def run(self, fn):
        """fn(progress) -> result, or None after printing the error (bad input: exit code 2)."""
        try:
            return fn(self)
        except (ValueError, KeyError, FileNotFoundError) as e:
            print(f"error: {e}", file=sys.stderr)
            return None
        finally:
            self.bar.close()


def _rank(args) -> int:
    from autobert.rank.config import RankConfig
    from autobert.rank.run import run_rank
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = RankConfig(construction=args.construction, limit=args.limit, batch_size=args.batch_size,
                            seq_len=args.seq_len, seed=args.seed, n_boot=args.n_boot,
                            proxies=tuple(args.proxies.split(",")) if args.proxies else None)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    metrics = _Bar(args.no_progress, "architectures", "arch").run(
        lambda progress: run_rank(args.benchmark, args.corpus, args.vocab, args.out, config, progress=progress,
                                  plots=not args.no_plots))
    if metrics is None:
        return 2
    _print_metrics(metrics, args.n_boot > 0)
    print(f"proxies: {Path(args.out) / 'proxies.csv'}; metrics: {Path(args.out) / 'metrics.json'}")
    return 0


def _print_metrics(metrics: dict, with_ci: bool) -> None:
    c = metrics["compute"]
    print(f"{c['architectures']} architectures ({c['distinct_models']} distinct models, {metrics['construction']}): "
          f"proxies computed in {c['seconds_total']:.0f} s")
    print(f"{'proxy':<20} {'tau':>7} {'95% CI':>17} {'rho':>7} {'95% CI':>17} {'ndcg@k':>7} {'prec':>6}")
    for name, m in sorted(metrics["proxies"].items(), key=lambda kv: -kv[1]["kendall_tau"]):
        ndcg = next(v for k, v in m.items() if k.startswith("ndcg@") and not k.endswith("_ci"))
        prec = next(v for k, v in m.items() if k.startswith("precision@") and not k.endswith("_ci"))
        ci = (lambda key: f"[{m[key][0]:+.3f}, {m[key][1]:+.3f}]" if with_ci else "")
        print(f"{name:<20} {m['kendall_tau']:+7.3f} {ci('kendall_tau_ci'):>17} {m['spearman_rho']:+7.3f} "
              f"{ci('spearman_rho_ci'):>17} {ndcg:7.3f} {prec:6.2f}")


def _bench_search(args) -> int:
    from autobert.rank.bench_search import SearchStudyConfig, run_bench_search
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = SearchStudyConfig(strategies=tuple(args.strategies.split(",")), repeats=args.repeats,
                                   budget=args.budget, construction=args.construction, seed=args.seed,
                                   labelled=args.labelled, surrogate_splits=args.surrogate_splits)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    result = _Bar(args.no_progress, "searches", "search").run(
        lambda progress: run_bench_search(args.benchmark, args.out, config, proxies_csv=args.proxies,
                                          progress=progress))
    if result is None:
        return 2
    print(f"mean regret (GLUE points below the benchmark's best) after {config.budget} queries, "
          f"{config.repeats} repeats:")
    for name, s in result["strategies"].items():
        lo, hi = s["final_regret_ci"]
        print(f"  {name:<10} {s['final_regret']:6.3f}  95% CI [{lo:.3f}, {hi:.3f}]")
    for name, c in result["comparisons"].items():
        print(f"  {name:<22} {c['difference']:+.3f}  95% CI [{c['ci'][0]:+.3f}, {c['ci'][1]:+.3f}]")
    if "surrogate" in result:
        study = result["surrogate"]
        print(f"surrogates trained on {study['labelled']} labels, ranking the other {study['held_out']} "
              f"(mean over {study['splits']} splits):")
        for name, m in study["surrogates"].items():
            lo, hi = m["kendall_tau_ci"]
            print(f"  {name:<10} tau {m['kendall_tau']:.3f}  95% CI [{lo:.3f}, {hi:.3f}]  rho {m['spearman_rho']:.3f}")
    print(f"curves: {Path(args.out) / 'regret.json'}, {Path(args.out) / 'regret.png'}")
    return 0
