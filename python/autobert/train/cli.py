"""``autobert pretrain | finetune | glue``: argument parsing, progress bars and printing.

``autobert.cli`` registers these with ``add_commands``; the work is done by the library
(``pretrain``, ``finetune``, ``finetune_glue``), which only logs. Errors a user can fix (missing
files, bad configs, bad corpora) print one ``error:`` line and exit with status 2.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

__all__ = ["add_commands"]

_USER_ERRORS = (FileNotFoundError, FileExistsError, ValueError, KeyError)


def _fail(e: BaseException) -> int:
    msg = e.args[0] if isinstance(e, KeyError) and e.args else e
    print(f"error: {msg}", file=sys.stderr)
    return 2


def _setup_logging(args) -> None:
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")


def _tokenizer(vocab, model_dir=None):
    from autobert.train import WordPieceTokenizer
    if vocab is None and model_dir is not None and Path(model_dir).is_dir():
        for name in ("tokenizer.json", "vocab.txt"):
            if (Path(model_dir) / name).is_file():
                return WordPieceTokenizer.from_file(Path(model_dir) / name)
    if vocab is None:
        raise FileNotFoundError("no --vocab given and the model folder holds no vocab.txt/tokenizer.json")
    return WordPieceTokenizer.from_file(vocab)


def _overrides(args, names) -> dict:
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


# ----------------------------------------------------------------------------- pretrain
_PRETRAIN_FLAGS = ("steps", "batch_size", "grad_accum", "seq_len", "lr", "warmup_ratio", "weight_decay",
                   "eval_interval", "eval_max_blocks", "log_interval", "checkpoint_interval", "max_tokens",
                   "holdout_fraction", "mask_prob", "precision", "seed")


def _pretrain_config(args):
    from autobert.train import PretrainConfig
    base = Path(args.config) if args.config else None
    saved = Path(args.out) / PretrainConfig.FILE_NAME
    if base is None and args.resume and saved.is_file():
        base = saved  # resuming: the run's own config, unless flags change it (then resume refuses)
    if base:
        cfg = PretrainConfig.load(base)
    else:
        cfg = PretrainConfig.preset(args.preset) if args.preset else PretrainConfig()
    return cfg.replace(**_overrides(args, _PRETRAIN_FLAGS))


def _pretrain_inputs(args) -> tuple[str, str, str]:
    """(arch, corpus, vocab): the flags; on --resume the run's own (arch.json, data.json); else the
    defaults, bert-tiny on the embedded WikiText-2 text and BERT vocabulary (said on stderr)."""
    import json

    from autobert.data import embedded_note, resolve_data
    from autobert.train.pretrain import DATA_FILE
    out = Path(args.out)
    arch, corpus, vocab = args.arch, args.corpus, args.vocab
    if args.resume:
        saved = {}
        if (out / DATA_FILE).is_file():
            try:
                saved = json.loads((out / DATA_FILE).read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError) as e:
                raise ValueError(f"{out / DATA_FILE}: not valid JSON ({e})") from None
            if not isinstance(saved, dict):
                raise ValueError(f"{out / DATA_FILE}: expected a JSON object with corpus and vocab")
        corpus, vocab = corpus or saved.get("corpus"), vocab or saved.get("vocab")
        if arch is None and (out / "arch.json").is_file():
            arch = str(out / "arch.json")
    if arch is None:
        arch = "bert-tiny"
        print("no --arch given: bert-tiny", file=sys.stderr)
    corpus, vocab, filled = resolve_data(corpus, vocab)
    for name in filled:
        print(embedded_note(name, corpus if name == "corpus" else vocab), file=sys.stderr)
    return arch, corpus, vocab


def _cmd_pretrain(args) -> int:
    _setup_logging(args)
    from tqdm.auto import tqdm

    from autobert.train import pretrain
    from autobert.train.archs import resolve_arch
    try:
        if args.resume and not (Path(args.out) / "pretrain_config.json").is_file():
            raise FileNotFoundError(f"nothing to resume: {args.out} is not a pretraining run folder "
                                    f"(no pretrain_config.json)")
        config = _pretrain_config(args)
        arch_name, corpus, vocab = _pretrain_inputs(args)
        tok = _tokenizer(vocab)
        arch = resolve_arch(arch_name, tok.vocab_size, max_positions=max(512, config.seq_len))
        print(f"architecture {arch_name}: {arch.num_parameters('mlm'):,} parameters (backbone "
              f"{arch.num_parameters():,}), {arch.n_layers} layers, hidden {arch.hidden}")
        bar = tqdm(total=config.steps, desc="pretrain", unit="step", disable=args.no_progress, file=sys.stderr)

        def progress(step, rec):
            bar.n = step
            bar.set_postfix({k: f"{rec[k]:.3f}" for k in ("loss", "eval_loss") if k in rec}, refresh=True)

        result = pretrain(arch, corpus, config, args.out, tokenizer=tok, resume=args.resume,
                          stop_after=args.stop_after, progress=progress)
        bar.close()
    except _USER_ERRORS as e:
        return _fail(e)
    ev = result.eval or {}
    state = "finished" if result.finished else f"stopped at step {result.step} (resume with --resume)"
    print(f"{state}: {result.step} steps, {result.tokens_per_s:,.0f} tokens/s"
          + (f", held-out MLM loss {ev['loss']:.4f} (perplexity {ev['perplexity']:.1f})" if ev else ""))
    print(f"run folder: {result.out_dir}")
    return 0


# ----------------------------------------------------------------------------- finetune / glue
_FINETUNE_FLAGS = ("lr", "epochs", "batch_size", "eval_batch_size", "max_length", "warmup_ratio",
                   "max_train_examples", "max_eval_examples", "data_seed", "precision")


def _finetune_config(args):
    from autobert.train.finetune import FinetuneConfig
    cfg = FinetuneConfig.load(args.config) if args.config else FinetuneConfig()
    changes = _overrides(args, _FINETUNE_FLAGS)
    if args.seeds is not None:
        changes["seeds"] = tuple(range(args.seeds))
    if args.lr_grid:
        changes["lr_grid"] = tuple(float(x) for x in args.lr_grid.split(","))
    if args.no_test:
        changes["predict_test"] = False
    return cfg.replace(**changes)


def _model_source(spec: str, vocab_size: int):
    """A model folder, or (for training from scratch) an architecture name / JSON file."""
    if Path(spec).is_dir():
        return spec
    from autobert.train.archs import resolve_arch
    return resolve_arch(spec, vocab_size)


class _RunBars:
    """One tqdm bar per fine-tuning run, closed with a one-line dev summary."""

    def __init__(self, disable: bool):
        from tqdm.auto import tqdm
        self.tqdm, self.disable, self.bar = tqdm, disable, None

    def __call__(self, ev: dict) -> None:
        if ev["event"] == "step":
            if self.bar is None:
                self.bar = self.tqdm(total=ev["total_steps"], desc=f"{ev['task']} lr={ev['lr']:g} seed={ev['seed']}",
                                     unit="step", disable=self.disable, file=sys.stderr, leave=False)
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{ev['loss']:.3f}", refresh=False)
        elif ev["event"] == "run_done":
            if self.bar is not None:
                self.bar.close()
                self.bar = None
            dev = "; ".join(f"{cfg} " + ", ".join(f"{m} {100 * v:.1f}" for m, v in ms.items())
                            for cfg, ms in ev["dev"].items())
            print(f"{ev['task']} lr={ev['lr']:g} seed={ev['seed']}: {dev} ({ev['seconds']:.0f} s)")


def _cmd_finetune(args) -> int:
    _setup_logging(args)
    from autobert.train.finetune import finetune, task_markdown
    try:
        config = _finetune_config(args)
        tok = _tokenizer(args.vocab, args.model)
        result = finetune(args.task, _model_source(args.model, tok.vocab_size), args.glue_dir, tok, config,
                          args.out, progress=_RunBars(args.no_progress))
    except _USER_ERRORS as e:
        return _fail(e)
    print(task_markdown(result))
    for cfg, path in result["submission"].items():
        print(f"test predictions ({cfg}): {path}")
    return 0


def _cmd_glue(args) -> int:
    _setup_logging(args)
    from autobert.train.glue_suite import finetune_glue, suite_markdown
    try:
        config = _finetune_config(args)
        tok = _tokenizer(args.vocab, args.model)
        tasks = args.tasks.split(",") if args.tasks else None
        doc = finetune_glue(_model_source(args.model, tok.vocab_size), args.glue_dir, tok, config, args.out,
                            tasks=tasks, progress=_RunBars(args.no_progress))
    except _USER_ERRORS as e:
        return _fail(e)
    print(suite_markdown(doc))
    print(f"results: {Path(args.out) / 'results.md'}")
    return 0


# ----------------------------------------------------------------------------- parsers
def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--verbose", "-v", action="store_true", help="log library messages (INFO)")


def _finetune_args(p: argparse.ArgumentParser, *, single: bool) -> None:
    if single:
        p.add_argument("--task", required=True, help="GLUE task, e.g. RTE, SST-2, sts-b, mnli")
    else:
        p.add_argument("--tasks", help="comma-separated subset (default: every task present)")
    p.add_argument("--model", required=True,
                   help="model folder (pretraining run or save_pretrained); "
                        "an architecture name/JSON trains from scratch")
    p.add_argument("--glue-dir", required=True, help="GLUE data root (glue_data/) or, for one task, its folder")
    p.add_argument("--vocab", help="vocab.txt / tokenizer.json (default: the one in the model folder)")
    p.add_argument("--out", required=True, help="output folder (results.md/json, submission files)")
    p.add_argument("--config", help="FinetuneConfig JSON; flags override its fields")
    p.add_argument("--seeds", type=int, help="number of seeds (0..N-1), default 3")
    p.add_argument("--lr", type=float)
    p.add_argument("--lr-grid", help="comma-separated learning rates; best mean dev score wins")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--eval-batch-size", type=int)
    p.add_argument("--max-length", type=int)
    p.add_argument("--warmup-ratio", type=float)
    p.add_argument("--max-train-examples", type=int, help="seeded subsample of each train split")
    p.add_argument("--max-eval-examples", type=int, help="score only the first N dev rows")
    p.add_argument("--data-seed", type=int)
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"))
    p.add_argument("--no-test", action="store_true", help="do not predict the test sets")
    _common(p)


def add_commands(sub) -> None:
    """Register pretrain, finetune and glue on an argparse subparsers object."""
    p = sub.add_parser("pretrain", help="MLM-pretrain an architecture on a text corpus")
    p.add_argument("--arch", help="bert-tiny (default), bert-mini, bert-small, abz-tiny, abz-mini, abz-small, "
                                  "bert-base, autobert-zero-base, or an architecture JSON file")
    p.add_argument("--corpus", help="a text file or a folder of .txt/.raw/.tokens files "
                                    "(default: the embedded WikiText-2 validation text)")
    p.add_argument("--vocab", help="BERT vocab.txt (or tokenizer.json / HF tokenizer folder; "
                                   "default: the embedded BERT uncased vocabulary)")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--preset", choices=("demo",), help="demo: a short run (about a minute on 2 CPU cores)")
    p.add_argument("--config", help="PretrainConfig JSON; flags override its fields")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--stop-after", type=int, help="stop with a checkpoint after this many steps")
    for flag, typ in (("steps", int), ("batch-size", int), ("grad-accum", int), ("seq-len", int), ("lr", float),
                      ("warmup-ratio", float), ("weight-decay", float), ("eval-interval", int),
                      ("eval-max-blocks", int), ("log-interval", int), ("checkpoint-interval", int),
                      ("max-tokens", int), ("holdout-fraction", float), ("mask-prob", float), ("seed", int)):
        p.add_argument(f"--{flag}", type=typ)
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"))
    _common(p)
    p.set_defaults(func=_cmd_pretrain)

    f = sub.add_parser("finetune", help="fine-tune a model on one GLUE task (several seeds)")
    _finetune_args(f, single=True)
    f.set_defaults(func=_cmd_finetune)

    g = sub.add_parser("glue", help="fine-tune on every GLUE task present; submission zip + results table")
    _finetune_args(g, single=False)
    g.set_defaults(func=_cmd_glue)
