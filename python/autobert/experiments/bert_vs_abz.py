"""Searched-vs-BERT experiment: a BERT baseline against the AutoBERT-Zero library architecture at
equal parameter count and equal pretraining budget, then GLUE fine-tuning of both.

    python -m autobert.experiments.bert_vs_abz --corpus WIKITEXT_DIR --glue-dir GLUE_DIR \\
        --vocab VOCAB_TXT --out runs/bert_vs_abz

With ``--searched RUN_DIR`` the best architecture of a search joins as a third model.

1. Tokenize the corpus once into blocks; one seeded held-out split serves both models.
2. Pretrain each model for the same steps x batch x seq_len tokens (same config, same seed, same data
   order and masks: only the architecture differs).
3. Fine-tune each on every GLUE task with a train split (``finetune_glue``), several seeds.
4. Write ``comparison.json`` and ``comparison.md`` into ``--out``.

Finished stages are reused when the command is run again (a pretraining run resumes from its
checkpoint; a finished GLUE suite is read back), so an interrupted experiment continues.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Optional

import torch

from autobert.graph import library
from autobert.model import ArchConfig, AttentionLayer
from autobert.train import PretrainConfig, WordPieceTokenizer, load_corpus, pretrain, split_blocks
from autobert.train.archs import abz_layers, match_ffn
from autobert.train.checkpoint import find_checkpoint
from autobert.train.finetune import FinetuneConfig
from autobert.train.glue_suite import finetune_glue

from .report import comparison_markdown

log = logging.getLogger("autobert.experiments.bert_vs_abz")

TASKS = ("cola", "sst2", "mrpc", "stsb", "qnli", "rte", "wnli")


def architectures(layers: int, hidden: int, heads: int, ffn: int, vocab_size: int, seq_len: int,
                  searched: Optional[tuple] = None) -> dict:
    """{"bert": all-standard-attention, "abz": AutoBERT-Zero mix, ["searched": the given layer choices]};
    every model but BERT gets the FFN width that matches BERT's parameter count."""
    sizes = dict(hidden=hidden, heads=heads, ffn=ffn, vocab_size=vocab_size, max_positions=seq_len)
    bert = ArchConfig(layers=tuple(AttentionLayer(library["standard"]) for _ in range(layers)), **sizes)
    archs = {"bert": bert, "abz": match_ffn(ArchConfig(layers=abz_layers(layers), **sizes), bert.num_parameters())}
    if searched is not None:
        if len(searched) != layers:
            raise ValueError(f"the searched architecture has {len(searched)} layers, the experiment {layers} "
                             "(--layers)")
        archs["searched"] = match_ffn(ArchConfig(layers=tuple(searched), **sizes), bert.num_parameters())
    return archs


def searched_layers(path) -> tuple:
    """Layer choices of the best architecture of a search: a run folder (its best.json), a best.json
    (first entry) or an architecture JSON file. Sizes are the experiment's, not the search's."""
    path = Path(path)
    file = path / "best.json" if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"--searched: no {file} (a search run folder, its best.json or an architecture JSON)")
    doc = json.loads(file.read_text(encoding="utf-8"))
    if isinstance(doc, list):
        if not doc or "arch" not in doc[0]:
            raise ValueError(f"--searched: {file} lists no architecture (a finished search writes best.json)")
        doc = doc[0]["arch"]
    return ArchConfig.from_dict(doc).layers


def _pretrain_one(name, arch, data, pcfg, tok, out: Path) -> dict:
    run = out / name / "pretrain"
    summary_file = run / "summary.json"
    if summary_file.is_file():
        log.info("%s: pretraining already done (%s)", name, run)
    else:
        resume = run.is_dir() and find_checkpoint(run) is not None
        pretrain(arch, data, pcfg, run, tokenizer=tok, resume=resume,
                 progress=lambda step, rec: log.info("%s step %d loss %.4f", name, step, rec["loss"])
                 if step % pcfg.log_interval == 0 else None)
    return json.loads(summary_file.read_text())


def _glue_one(name, fcfg, tok, glue_dir, out: Path, source=None) -> dict:
    """GLUE suite of ``out/name/pretrain`` (or of ``source``, e.g. an ArchConfig: no pretraining)."""
    folder = out / name / "glue"
    done = folder / "results.json"
    if done.is_file() and json.loads(done.read_text()).get("finetune_config") == fcfg.to_dict():
        log.info("%s: GLUE already done (%s)", name, folder)
        return json.loads(done.read_text())
    source = out / name / "pretrain" if source is None else source
    doc = finetune_glue(source, glue_dir, tok, fcfg, folder, tasks=TASKS,
                        progress=lambda ev: log.info("%s %s lr=%g seed=%d dev %s (%.0f s)", name, ev["task"], ev["lr"],
                                                     ev["seed"], ev["dev"], ev["seconds"])
                        if ev["event"] == "run_done" else None)
    doc["finetune_config"] = fcfg.to_dict()
    done.write_text(json.dumps(doc, indent=2) + "\n")
    return doc


def run(args) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    tok = WordPieceTokenizer.from_file(args.vocab)
    pcfg = PretrainConfig(steps=args.steps, batch_size=args.batch_size, seq_len=args.seq_len, lr=args.lr,
                          warmup_ratio=0.1, eval_interval=args.eval_interval, log_interval=10,
                          checkpoint_interval=args.eval_interval, holdout_fraction=0.05, seed=args.seed)
    # Test-set predictions are left out: the comparison is on dev, and predicting RTE's 3000 test
    # pairs per task and model costs more CPU time than a fine-tuning run.
    fcfg = FinetuneConfig(lr=args.ft_lr, epochs=args.epochs, batch_size=32, max_length=args.max_length,
                          seeds=tuple(range(args.seeds)), max_train_examples=args.max_train_examples,
                          predict_test=args.predict_test)
    blocks = load_corpus(args.corpus, tok, pcfg.seq_len)
    data = split_blocks(blocks, pcfg.holdout_fraction, pcfg.seed)
    searched = searched_layers(args.searched) if args.searched else None
    archs = architectures(args.layers, args.hidden, args.heads, args.ffn, tok.vocab_size, pcfg.seq_len, searched)
    unknown = sorted(set(args.scratch_control or ()) - set(archs))
    if unknown:  # before any work
        raise ValueError(f"--scratch-control: unknown model(s) {unknown}; the models are {list(archs)}")
    for name, arch in archs.items():
        (out / name).mkdir(exist_ok=True)
        (out / name / "arch.json").write_text(arch.to_json(indent=2) + "\n")
        log.info("%s: %d backbone parameters\n%s", name, arch.num_parameters(), arch.describe())
    results = {"setup": {"args": vars(args), "pretrain_config": pcfg.to_dict(), "finetune_config": fcfg.to_dict(),
                         "corpus_blocks": int(blocks.shape[0]), "train_blocks": int(data[0].shape[0]),
                         "held_out_blocks": int(data[1].shape[0]),
                         "pretrain_tokens": pcfg.steps * pcfg.batch_size * pcfg.seq_len},
               "models": {}}
    keep = ("tasks", "skipped", "glue_dev_average", "wall_s")
    for name, arch in archs.items():
        pre = _pretrain_one(name, arch, data, pcfg, tok, out)
        glue = _glue_one(name, fcfg, tok, args.glue_dir, out)
        results["models"][name] = {
            "layers": arch.describe().splitlines(), "ffn": arch.ffn,
            "backbone_parameters": arch.num_parameters(), "mlm_parameters": arch.num_parameters("mlm"),
            "pretrain": pre, "glue": {k: glue[k] for k in keep}}
    if args.scratch_control is not None:  # the same fine-tuning from random weights: what did pretraining add?
        controls = args.scratch_control or list(archs)
        results["scratch"] = {name: {k: v for k, v in _glue_one(name + "-scratch", fcfg, tok, args.glue_dir, out,
                                                                  source=archs[name]).items() if k in keep}
                              for name in archs if name in controls}
    stages = [m["pretrain"]["wall_s"] + m["glue"]["wall_s"] for m in results["models"].values()]
    stages += [g["wall_s"] for g in results.get("scratch", {}).values()]
    results["wall_s"] = sum(stages)  # all stages, also those reused from an earlier invocation
    results["invocation_wall_s"] = time.perf_counter() - t0
    (out / "comparison.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "comparison.md").write_text(comparison_markdown(results) + "\n")
    return results


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m autobert.experiments.bert_vs_abz", description=__doc__.split("\n")[0])
    p.add_argument("--corpus", required=True, help="pretraining text: a file or folder (WikiText-2 valid+test)")
    p.add_argument("--glue-dir", required=True, help="GLUE data root (glue_data/)")
    p.add_argument("--vocab", required=True, help="BERT vocab.txt")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--heads", type=int, default=2)
    p.add_argument("--ffn", type=int, default=512, help="BERT's FFN width (the abz model's is matched)")
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--steps", type=int, default=600, help="pretraining steps (both models)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3, help="pretraining peak lr")
    p.add_argument("--eval-interval", type=int, default=100)
    # 3e-4 x 5 epochs: with 1e-4 x 3 epochs (94 steps on 1000 examples) neither model moved off the
    # majority class on any task; these small, briefly pretrained models need a few hundred steps.
    p.add_argument("--ft-lr", type=float, default=3e-4)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--max-train-examples", type=int, default=2000, help="seeded subsample of large train sets")
    p.add_argument("--predict-test", action="store_true", help="also write test predictions (submission files)")
    p.add_argument("--scratch-control", nargs="*", metavar="MODEL",
                   help="also fine-tune these models (bert, abz, searched; none named: all) from random weights")
    p.add_argument("--searched", metavar="PATH",
                   help="add the best architecture of a search (run folder, best.json or architecture JSON), "
                        "resized to the experiment and FFN-matched to BERT's parameters")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0,
                   help="torch intra-op threads (0: torch's default). On a busy shared CPU use 1: an idle-spinning "
                        "second OpenMP thread made small fine-tuning steps 10-20x slower there")
    return p


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    results = run(args)
    print(comparison_markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
