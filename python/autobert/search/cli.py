"""``autobert search | rankcorr | compare | report``: argument parsing, progress bars and printing.

The library (``run_search``, ``run_rankcorr``, ``run_compare``, ``write_report``) only logs; this
module prints.
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path


def add_commands(sub) -> None:
    """Register the search subcommands on an argparse subparsers object."""
    s = sub.add_parser("search", help="OP-NAS architecture search (new run or --resume)")
    s.add_argument("--out", help="new run folder")
    s.add_argument("--resume", metavar="RUN_DIR", help="continue the search in RUN_DIR")
    s.add_argument("--preset", default="tiny", help="search preset: demo (about a minute on 2 CPU cores), tiny "
                                                    "(CPU minutes) or small")
    s.add_argument("--config", help="JSON file overriding SearchConfig fields (nested groups as objects)")
    s.add_argument("--budget", type=int, help="candidates to finish (status done), resumes included")
    s.add_argument("--corpus", help="MLM text file or folder (default: the embedded WikiText-2 validation text)")
    s.add_argument("--vocab", help="WordPiece vocab.txt (default: the embedded BERT uncased vocabulary)")
    s.add_argument("--seed", type=int)
    s.add_argument("--strategy", choices=("opnas", "evolution", "random"))
    s.add_argument("--executor", choices=("local", "ray"))
    s.add_argument("--address", help="Ray cluster address (default: a local Ray instance)")
    s.add_argument("--workers", type=int, help="Ray workers")
    s.add_argument("--device", help="where the supernet and candidates train: auto (default: CUDA when available), "
                                    "cpu, cuda or cuda:N")
    s.add_argument("--gpus-per-worker", type=float,
                   help="GPUs each Ray evaluator reserves (fractions pack several per GPU; default 1 on CUDA, else 0)")
    s.add_argument("--fitness", choices=("mlm", "toy"), help="toy: training-free fitness (testing)")
    s.add_argument("--glue-task", help="quick GLUE proxy: fine-tune each candidate briefly on this task "
                                       "(sst2, rte, mrpc, ...) after its MLM steps")
    s.add_argument("--glue-dir", help="GLUE data folder (glue_data root or the task's folder)")
    s.add_argument("--glue-weight", type=float,
                   help="fitness = MLM loss - GLUE_WEIGHT * dev score (default 1.0)")
    s.add_argument("--supernet-from", metavar="RUN_DIR",
                   help="use RUN_DIR's warmed-up supernet instead of warming one up (same sizes, data and seed: "
                        "strategies compared on one proxy)")
    s.add_argument("--reuse", action="store_true",
                   help="if --out already holds a search with these settings (the budget aside), continue it (a "
                        "finished one just prints its results again) instead of refusing; a search with other "
                        "settings is still refused")
    s.add_argument("--no-report", action="store_true", help="do not write report.html at the end")
    s.add_argument("--no-progress", action="store_true", help="no progress bars")
    s.set_defaults(func=_search)

    r = sub.add_parser("rankcorr", help="rank correlation of the BIWS proxy with stand-alone training")
    r.add_argument("--out", required=True, help="folder for rankcorr.json")
    r.add_argument("--run", help="reuse this search run's config and supernet")
    r.add_argument("--preset", default="tiny")
    r.add_argument("--config", help="JSON file overriding SearchConfig fields")
    r.add_argument("--corpus", help="default: the embedded WikiText-2 validation text")
    r.add_argument("--vocab", help="default: the embedded BERT uncased vocabulary")
    r.add_argument("--archs", type=int, default=20, help="M: architectures sampled")
    r.add_argument("--steps", type=int, default=1000, help="S: stand-alone training steps each")
    r.add_argument("--eval-every", type=int, default=100, help="held-out evaluation interval (stand-alone)")
    r.add_argument("--k", type=int, default=5, help="k of NDCG@k")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--no-progress", action="store_true")
    r.set_defaults(func=_rankcorr)

    c = sub.add_parser("compare", help="train the best architecture of search runs stand-alone against BERT, "
                                       "the AutoBERT-Zero hybrid and random search (equal parameters and steps)")
    c.add_argument("runs", nargs="+", metavar="RUN_DIR", help="finished search runs of one preset size")
    c.add_argument("--corpus", required=True, help="MLM training text (file or folder)")
    c.add_argument("--vocab", required=True, help="WordPiece vocab.txt")
    c.add_argument("--out", required=True, help="output folder (resumable: finished trainings are reused)")
    c.add_argument("--eval-corpus", help="held-out text (default: a held-out split of --corpus)")
    c.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds")
    c.add_argument("--steps", type=int, help="training steps of every model (default 2000)")
    c.add_argument("--batch-size", type=int, help="blocks per step (default 16)")
    c.add_argument("--lr", type=float, help="peak learning rate (default 1e-3)")
    c.add_argument("--eval-every", type=int, help="held-out evaluation interval (default 250)")
    c.add_argument("--eval-blocks", type=int, help="held-out blocks scored (default 512)")
    c.add_argument("--no-random", action="store_true", help="leave out the random-search baseline")
    c.add_argument("--finalists", type=int, metavar="K",
                   help="re-rank each run's best K by proxy with a short training from scratch (default 3; 1: off)")
    c.add_argument("--finalist-steps", type=int, metavar="S", help="steps of that training (default 500)")
    c.add_argument("--plain-finalists", action="store_true",
                   help="re-rank the plain top K (default: the best of each of the K best layer layouts, "
                        "plus the best of each number of attention layers)")
    c.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    c.add_argument("--no-progress", action="store_true")
    c.set_defaults(func=_compare)

    p = sub.add_parser("report", help="HTML report of one or more search runs")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--out", help="HTML file (default: RUN_DIR/report.html of the first run)")
    p.set_defaults(func=_report)


def _config_from_args(args):
    from autobert.search.config import PRESETS, SearchConfig
    changes = _read_config(args.config) if args.config else {}
    for name in ("budget", "corpus", "vocab", "seed", "executor", "address", "workers", "fitness", "device",
                 "gpus_per_worker"):
        value = getattr(args, name, None)
        if value is not None:
            changes[name] = value
    if getattr(args, "strategy", None):
        changes["evolution"] = {**changes.get("evolution", {}), "strategy": args.strategy}
    for flag in ("glue_task", "glue_dir", "glue_weight"):
        value = getattr(args, flag, None)
        if value is not None:
            changes["biws"] = {**changes.get("biws", {}), flag: value}
    if changes.get("fitness", PRESETS.get(args.preset, {}).get("fitness", "mlm")) == "mlm":
        _embedded_data(changes)
    return SearchConfig.preset(args.preset, **changes)


def _read_config(path) -> dict:
    """The --config JSON object; ValueError/FileNotFoundError naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--config: file not found: {path}")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"--config {path}: not valid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise ValueError(f"--config {path}: expected a JSON object of SearchConfig fields, got {type(doc).__name__}")
    return doc


def _embedded_data(changes: dict) -> None:
    """Fill a missing corpus/vocab with the package's embedded ones, and say so."""
    from autobert.data import embedded_note, resolve_data
    changes["corpus"], changes["vocab"], filled = resolve_data(changes.get("corpus"), changes.get("vocab"))
    for name in filled:
        print(embedded_note(name, changes[name]), file=sys.stderr)


class _Progress:
    """tqdm bars for the warm-up and the candidates."""

    def __init__(self, disable: bool):
        from tqdm.auto import tqdm
        self.tqdm, self.disable, self.bars, self.failed = tqdm, disable, {}, 0

    def _bar(self, name: str, total: int, unit: str, initial: int = 0):
        if name not in self.bars:
            self.bars[name] = self.tqdm(total=total, initial=initial, desc=name, unit=unit, disable=self.disable,
                                        file=sys.stderr, dynamic_ncols=True)
        return self.bars[name]

    def __call__(self, event: str, **info) -> None:
        if event == "warmup":
            bar = self._bar("supernet warm-up", info["total"], "step")
            bar.update(1)
            bar.set_postfix(loss=f"{info['loss']:.3f}")
        elif event == "candidate":
            bar = self._bar(info.get("label", "candidates"), info["budget"], "cand",
                            initial=info["done"] - (info["status"] == "done"))
            if info["status"] == "done":
                bar.update(1)
            else:
                self.failed += 1
            bar.set_postfix(best=f"{info['best']:.4f}" if info["best"] is not None else "-", failed=self.failed)
        elif event == "train":
            bar = self._bar(f"{info['model']} seed {info['seed']}", info["steps"], "step")
            bar.update(info["step"] - bar.n)
            bar.set_postfix(loss=f"{info['loss']:.3f}")
        elif event == "arch":
            bar = self._bar("architectures", info["total"], "arch")
            bar.update(1)
            bar.set_postfix(proxy=f"{info['proxy']:.3f}", alone=f"{info['standalone']:.3f}")

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def _search(args) -> int:
    from autobert.search.runner import run_search
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if bool(args.out) == bool(args.resume):
        print("error: give exactly one of --out RUN_DIR (new search) or --resume RUN_DIR", file=sys.stderr)
        return 2
    fixed = [f"--{n.replace('_', '-')}" for n in ("config", "corpus", "vocab", "seed", "strategy", "executor",
                                                  "address", "workers", "device", "gpus_per_worker", "fitness",
                                                  "glue_task", "glue_dir", "glue_weight", "supernet_from")
             if getattr(args, n) is not None]
    if args.resume and args.reuse:
        print("error: --reuse applies to a new run (--out RUN_DIR); --resume always continues the run", file=sys.stderr)
        return 2
    if args.resume and fixed:
        print(f"error: a resumed run keeps its config.json; only --budget may change (got {', '.join(fixed)})",
              file=sys.stderr)
        return 2
    progress = _Progress(args.no_progress)
    try:
        if args.resume:
            summary = run_search(args.resume, resume=True, budget=args.budget, progress=progress)
        else:
            summary = run_search(args.out, _config_from_args(args), progress=progress, supernet_from=args.supernet_from,
                                 reuse=args.reuse)
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        progress.close()
        print(f"error: {e}", file=sys.stderr)
        return 2
    progress.close()
    print(f"search {summary.run_dir}: {summary.done} done, {summary.failed} failed (stopped: {summary.stopped})")
    if summary.best is not None:
        print(f"best fitness (lower is better) {summary.best['fitness']:.4f}, {summary.best['params']} parameters, "
              f"fingerprint {summary.best['fingerprint']}:")
        if "glue_score" in summary.best:
            print(f"  held-out MLM loss {summary.best['mlm_loss']:.4f}, {summary.best['glue_task']} dev score "
                  f"{summary.best['glue_score']:.4f}")
        for i, layer in enumerate(summary.best["layers"]):
            print(f"  layer {i}: {layer}")
    print(f"best architectures: {summary.run_dir / 'best.json'}; Pareto front: {summary.run_dir / 'pareto.json'}")
    if not args.no_report:
        from autobert.report import write_report
        print(f"report: {write_report([summary.run_dir])}")
    return 0


def _rankcorr(args) -> int:
    from autobert.search.config import SearchConfig
    from autobert.search.rankstudy import run_rankcorr
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = (SearchConfig.load(Path(args.run) / "config.json") if args.run else _config_from_args(args))
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    progress = _Progress(args.no_progress)
    result = run_rankcorr(args.out, config, n_archs=args.archs, steps=args.steps, eval_every=args.eval_every,
                          run_dir=args.run, k=args.k, seed=args.seed, progress=progress)
    progress.close()
    st, cost = result["stats"], result["cost"]
    for name in ("kendall_tau", "spearman_rho", f"ndcg@{st['k']}"):
        lo, hi = st[name + "_ci"]
        base = st["params_baseline"][name]
        print(f"{name:>13}: {st[name]:+.3f}  95% CI [{lo:+.3f}, {hi:+.3f}]   (#params ranker: {base:+.3f})")
    print(f"BIWS evaluation vs training from scratch to the same held-out loss: median {cost['median_speedup']:.1f}x "
          f"cheaper ({cost['never_reached']} of {st['n']} never reached it in {args.steps} steps)")
    print(f"details: {Path(args.out) / 'rankcorr.json'}")
    return 0


def _compare(args) -> int:
    import torch

    from autobert.search.compare import run_compare
    from autobert.search.finalists import FinalistConfig
    from autobert.search.standalone import StandaloneConfig
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    fields = {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "eval_every": args.eval_every,
              "eval_blocks": args.eval_blocks}
    progress = _Progress(args.no_progress)
    try:
        config = StandaloneConfig(**{k: v for k, v in fields.items() if v is not None})
        picks = {"k": args.finalists, "steps": args.finalist_steps, "per_layout": not args.plain_finalists,
                 "per_attention_count": not args.plain_finalists}
        finalists = FinalistConfig(**{k: v for k, v in picks.items() if v is not None})
        summary = run_compare(args.runs, args.corpus, args.vocab, args.out, seeds=args.seeds, config=config,
                              eval_corpus=args.eval_corpus, random_search=not args.no_random, finalists=finalists,
                              progress=progress)
    except (ValueError, FileNotFoundError) as e:
        progress.close()
        print(f"error: {e}", file=sys.stderr)
        return 2
    progress.close()
    from autobert.search.compare_report import markdown
    print(markdown(summary))
    out = Path(args.out)
    print(f"details: {out / 'comparison.json'}; learning curves: {out / 'learning_curves.png'}")
    return 0


def _report(args) -> int:
    from autobert.report import write_report
    try:
        path = write_report(args.runs, out=args.out)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"report: {path}")
    return 0
