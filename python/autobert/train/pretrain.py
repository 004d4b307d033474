"""MLM pretraining: ``PretrainConfig`` and ``pretrain``.

A run folder holds ``pretrain_config.json``, ``arch.json``, ``metrics.jsonl``/``metrics.csv``
(+ ``tensorboard/`` when installed), ``checkpoint/`` (see ``checkpoint.py``) and, when the run
ends, the final model (``config.json`` + ``model.safetensors``, loadable with ``from_pretrained``,
with the tokenizer's ``vocab.txt`` beside it) and ``summary.json``.

Data order is a pure function of (seed, step): micro-batch m of the run is slice m of a seeded
permutation of the training blocks (a new permutation per epoch), so resuming needs no data-loader
state. Launched by ``torchrun`` (WORLD_SIZE > 1) each rank takes its share of every global batch
and DistributedDataParallel averages gradients (gloo on CPU, nccl on GPU).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Callable, Optional, Union

import torch
from torch.nn.parallel import DistributedDataParallel

from autobert.model import ArchConfig, ForMaskedLM, save_pretrained

from .checkpoint import find_checkpoint, load_checkpoint, save_checkpoint
from .corpus import CorpusError, load_corpus, split_blocks
from .distributed import DistContext, barrier, init_distributed, mean_across_ranks
from .masking import MaskingIds, as_masking_ids, mask_tokens
from .metrics_log import MetricsLog
from .mlm import MaskedLMLoss, autocast, evaluate_mlm
from .run_config import JsonConfig, check_choice, check_float, check_int, write_text_atomic
from .run_lock import RunLock
from .schedule import adamw, warmup_linear_decay, warmup_steps_for
from .tokenizer import WordPieceTokenizer

__all__ = ["PretrainConfig", "PretrainResult", "pretrain", "PRETRAIN_PRESETS", "DATA_FILE", "data_record"]

log = logging.getLogger(__name__)

DATA_FILE = "data.json"  # the corpus and vocabulary a run read (a resume must read the same)

#: Named PretrainConfig starting points (``PretrainConfig.preset``). ``demo``: the out-of-the-box
#: run on the embedded WikiText-2 text, about a minute of bert-tiny on 2 CPU cores.
PRETRAIN_PRESETS = {
    "demo": {"steps": 100, "batch_size": 8, "seq_len": 64, "max_tokens": 60000, "eval_interval": 50,
             "eval_max_blocks": 32, "log_interval": 10, "checkpoint_interval": 50, "lr": 1e-3},
}


@dataclasses.dataclass(frozen=True)
class PretrainConfig(JsonConfig):
    """How to pretrain; written to ``<run>/pretrain_config.json``. Invalid values raise ValueError."""

    FILE_NAME = "pretrain_config.json"

    steps: int = 1000                      # optimizer steps
    batch_size: int = 32                   # blocks per micro-batch per process
    grad_accum: int = 1                    # micro-batches per optimizer step
    seq_len: int = 128                     # block length incl. [CLS] and [SEP]
    lr: float = 5e-4                       # peak learning rate
    warmup_ratio: float = 0.1              # fraction of steps of linear warmup, then linear decay to 0
    weight_decay: float = 0.01             # AdamW decay (not on biases / LayerNorm)
    adam_betas: tuple = (0.9, 0.999)
    adam_eps: float = 1e-6
    clip_norm: Optional[float] = 1.0       # gradient-norm clip; None for none
    mask_prob: float = 0.15                # MLM masking rate (80/10/10)
    holdout_fraction: float = 0.05         # blocks held out for the MLM loss/perplexity
    eval_interval: int = 100               # steps between held-out evaluations (also at the end)
    eval_batch_size: int = 64
    eval_max_blocks: Optional[int] = None  # cap on held-out blocks scored (None: all)
    log_interval: int = 10                 # steps averaged into one metrics record
    checkpoint_interval: int = 100         # steps between checkpoints (also at the end)
    max_tokens: Optional[int] = None       # read at most this many corpus tokens (None: all)
    precision: str = "auto"                # "auto" (bf16 autocast on GPU, fp32 on CPU), "fp32", "bf16"
    seed: int = 0                          # model init, data order, masking, dropout, held-out split

    def __post_init__(self):
        o = "PretrainConfig"
        for name in ("steps", "batch_size", "grad_accum", "eval_interval", "eval_batch_size", "log_interval",
                     "checkpoint_interval"):
            check_int(o, name, getattr(self, name), 1)
        check_int(o, "seq_len", self.seq_len, 3)
        check_int(o, "seed", self.seed, 0)
        check_int(o, "eval_max_blocks", self.eval_max_blocks, 1, optional=True)
        check_int(o, "max_tokens", self.max_tokens, 1, optional=True)
        check_float(o, "lr", self.lr, 0.0, 1.0, lo_open=True)
        check_float(o, "warmup_ratio", self.warmup_ratio, 0.0, 1.0)
        check_float(o, "weight_decay", self.weight_decay, 0.0, 1.0)
        check_float(o, "adam_eps", self.adam_eps, 0.0, 1.0, lo_open=True)
        check_float(o, "clip_norm", self.clip_norm, 0.0, float("inf"), lo_open=True, optional=True)
        check_float(o, "mask_prob", self.mask_prob, 0.0, 1.0, lo_open=True, hi_open=True)
        check_float(o, "holdout_fraction", self.holdout_fraction, 0.0, 1.0, hi_open=True)
        check_choice(o, "precision", self.precision, ("auto", "fp32", "bf16"))
        betas = tuple(self.adam_betas) if isinstance(self.adam_betas, (list, tuple)) else self.adam_betas
        if not (isinstance(betas, tuple) and len(betas) == 2
                and all(isinstance(b, (int, float)) and 0.0 <= b < 1.0 for b in betas)):
            raise ValueError(f"PretrainConfig.adam_betas must be two numbers in [0, 1), got {self.adam_betas!r}")
        object.__setattr__(self, "adam_betas", betas)

    @classmethod
    def preset(cls, name: str, **changes) -> "PretrainConfig":
        """A named starting point from ``PRETRAIN_PRESETS``, with fields changed."""
        if name not in PRETRAIN_PRESETS:
            raise ValueError(f"unknown pretrain preset {name!r}; presets: {sorted(PRETRAIN_PRESETS)}")
        return cls(**{**PRETRAIN_PRESETS[name], **changes})

    def use_bf16(self, device: torch.device) -> bool:
        return self.precision == "bf16" or (self.precision == "auto" and device.type == "cuda")


@dataclasses.dataclass
class PretrainResult:
    out_dir: Path
    step: int                          # optimizer steps finished
    finished: bool                     # False when stopped early by ``stop_after``
    train_losses: list                 # (step, loss) of every step run in this call
    eval: Optional[dict]               # last held-out {"loss", "perplexity", "tokens"}
    tokens_per_s: float                # training throughput of this call (all ranks), eval time excluded
    parameters: int                    # backbone + MLM head parameters
    wall_s: float


Corpus = Union[str, os.PathLike, torch.Tensor, tuple]


def _blocks(corpus: Corpus, tokenizer: Optional[WordPieceTokenizer], config: PretrainConfig):
    """(train, held_out) block tensors from a path, a (num_blocks, seq_len) tensor, or a ready pair."""
    if isinstance(corpus, tuple):
        train, held = corpus
    else:
        if not isinstance(corpus, torch.Tensor):
            if tokenizer is None:
                raise ValueError("a corpus path needs a tokenizer")
            corpus = load_corpus(corpus, tokenizer, config.seq_len, max_tokens=config.max_tokens)
        train, held = split_blocks(corpus, config.holdout_fraction, config.seed)
    if train.dim() != 2 or train.shape[1] != config.seq_len:
        raise ValueError(f"training blocks must be (num_blocks, {config.seq_len}), got {tuple(train.shape)}")
    return train.long(), (held.long() if held is not None and held.numel() else None)


class _BatchOrder:
    """Micro-batch m -> block indices for one rank; a fresh seeded permutation every epoch."""

    def __init__(self, n_blocks: int, batch_size: int, ctx: DistContext, seed: int):
        self.n, self.b, self.ctx, self.seed = n_blocks, batch_size, ctx, seed
        self.per_epoch = n_blocks // (batch_size * ctx.world_size)
        if self.per_epoch == 0:
            raise CorpusError(f"{n_blocks} training blocks are fewer than one global batch "
                              f"({batch_size} x {ctx.world_size} process(es)); use a smaller batch or more text")
        self._epoch, self._perm = -1, None

    def __call__(self, m: int) -> torch.Tensor:
        epoch, pos = divmod(m, self.per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.n, generator=g)
        start = (pos * self.ctx.world_size + self.ctx.rank) * self.b
        return self._perm[start:start + self.b]


def _prepare_run_dir(out_dir: Path, arch: ArchConfig, config: PretrainConfig, resume: bool,
                     data: Optional[dict]) -> Optional[Path]:
    """Check/write the run folder's configs; returns the checkpoint to resume from (or None)."""
    ckpt = find_checkpoint(out_dir)
    if not resume:
        if ckpt is not None:
            raise FileExistsError(f"{out_dir} already holds a pretraining checkpoint; pass resume=True "
                                  f"(--resume) to continue it or choose another folder")
        return None
    if not (out_dir / PretrainConfig.FILE_NAME).is_file():
        raise FileNotFoundError(f"nothing to resume: {out_dir} is not a pretraining run folder "
                                f"(no {PretrainConfig.FILE_NAME})")
    saved = PretrainConfig.load(out_dir / PretrainConfig.FILE_NAME)
    diff = config.differences(saved)
    if diff:
        raise ValueError(f"cannot resume {out_dir}: config fields {diff} differ from the run's "
                         f"{PretrainConfig.FILE_NAME} (a resumed run must use the same config)")
    saved_arch = _read_json_file(out_dir / "arch.json", ArchConfig.from_json)
    if saved_arch != arch:
        raise ValueError(f"cannot resume {out_dir}: the architecture differs from the run's arch.json")
    saved_data = _read_json_file(out_dir / DATA_FILE, json.loads) if (out_dir / DATA_FILE).is_file() else None
    if data is not None and saved_data is not None and saved_data != data:
        raise ValueError(f"cannot resume {out_dir}: its {DATA_FILE} records {saved_data}, this call gives {data}")
    if ckpt is None:  # stopped before its first checkpoint: the seeded run starts over
        log.info("%s has no checkpoint yet; starting it from step 0", out_dir)
    return ckpt


def _read_json_file(path: Path, parse):
    if not path.is_file():
        raise FileNotFoundError(f"cannot resume {path.parent}: {path.name} is missing")
    try:
        return parse(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot resume {path.parent}: {path} is not valid ({e})") from None


def data_record(corpus, tokenizer: Optional[WordPieceTokenizer]) -> Optional[dict]:
    """{"corpus", "vocab"} absolute paths of a path corpus (what ``data.json`` holds), else None."""
    if not isinstance(corpus, (str, os.PathLike)):
        return None
    vocab = tokenizer.source if tokenizer is not None and Path(tokenizer.source).exists() else None
    return {"corpus": str(Path(corpus).resolve()), "vocab": None if vocab is None else str(Path(vocab).resolve())}


def _copy_vocab(tokenizer: Optional[WordPieceTokenizer], out_dir: Path) -> None:
    """Put the tokenizer file beside the final model, so the folder is self-contained."""
    src = Path(tokenizer.source) if tokenizer is not None else None
    if src is not None and src.is_file():
        target = out_dir / ("tokenizer.json" if src.suffix == ".json" else "vocab.txt")
        if src.resolve() != target.resolve():
            shutil.copyfile(src, target)


def pretrain(arch: ArchConfig, corpus: Corpus, config: PretrainConfig, out_dir: "str | os.PathLike", *,
             tokenizer: Optional[WordPieceTokenizer] = None, masking: Optional[MaskingIds] = None,
             resume: bool = False, stop_after: Optional[int] = None, device: "str | torch.device | None" = None,
             progress: Optional[Callable[[int, dict], None]] = None) -> PretrainResult:
    """Pretrain a ForMaskedLM of ``arch`` with dynamic MLM masking.

    Args:
        arch: the architecture; its vocab_size must cover the tokenizer's ids.
        corpus: a text file/folder (needs ``tokenizer``), a (num_blocks, seq_len) long tensor (split by
            ``config.holdout_fraction``), or a ready ``(train_blocks, held_out_blocks_or_None)`` pair.
        config: the PretrainConfig (saved into ``out_dir``; must match on resume).
        out_dir: run folder (created).
        tokenizer: WordPieceTokenizer; gives the masking ids and is copied beside the final model.
        masking: masking ids when no tokenizer is given (e.g. a synthetic vocabulary).
        resume: continue from ``out_dir/checkpoint``; the continued run's losses equal the
            uninterrupted run's.
        stop_after: stop (with a checkpoint) once this many steps are done, as if preempted.
        device: default CUDA (``LOCAL_RANK``) when available, else CPU.
        progress: called after every step with (step, record) — the CLI's progress bar.
    """
    if tokenizer is None and masking is None:
        raise ValueError("pretrain needs a tokenizer or masking ids")
    masking = as_masking_ids(tokenizer if masking is None else masking)
    if arch.vocab_size < masking.vocab_size:
        raise ValueError(f"arch.vocab_size {arch.vocab_size} is smaller than the tokenizer's {masking.vocab_size}")
    if arch.max_positions < config.seq_len:
        raise ValueError(f"arch.max_positions {arch.max_positions} < seq_len {config.seq_len}")
    out_dir = Path(out_dir)
    ctx = init_distributed(device)
    try:
        trainer = _Trainer(arch, config, out_dir, ctx, masking, tokenizer)
        return trainer.run(_blocks(corpus, tokenizer, config), resume, stop_after, progress,
                           data_record(corpus, tokenizer))
    finally:
        ctx.close()


class _Trainer:
    def __init__(self, arch, config: PretrainConfig, out_dir: Path, ctx: DistContext, masking, tokenizer):
        self.arch, self.cfg, self.out, self.ctx = arch, config, out_dir, ctx
        self.masking, self.tokenizer = masking, tokenizer
        self.bf16 = config.use_bf16(ctx.device)
        torch.manual_seed(config.seed)  # model initialisation
        self.model = ForMaskedLM(arch).to(ctx.device).train()
        loss_mod = MaskedLMLoss(self.model)
        self.loss_mod = DistributedDataParallel(loss_mod) if ctx.distributed else loss_mod
        self.opt = adamw(self.model, config.lr, config.weight_decay, config.adam_betas, config.adam_eps)
        self.sched = warmup_linear_decay(self.opt, warmup_steps_for(config.steps, config.warmup_ratio), config.steps)
        # Masks are drawn on the CPU: the same masks on any device; each rank its own stream.
        self.mask_gen = torch.Generator().manual_seed(config.seed * 7919 + 17 + ctx.rank)
        # Dropout draws from the global RNG; offset per rank so replicas do not drop the same units.
        torch.manual_seed(config.seed + 1 + ctx.rank)

    def run(self, data, resume: bool, stop_after: Optional[int], progress, record: Optional[dict]) -> PretrainResult:
        lock = RunLock(self.out)
        try:
            if self.ctx.is_main:  # one process per run folder (rank 0 speaks for a torchrun group)
                if resume and not self.out.is_dir():
                    raise FileNotFoundError(f"nothing to resume: {self.out} does not exist")
                self.out.mkdir(parents=True, exist_ok=True)
                lock.acquire()
            return self._run(data, resume, stop_after, progress, record)
        finally:
            lock.release()

    def _run(self, data, resume: bool, stop_after: Optional[int], progress, record: Optional[dict]) -> PretrainResult:
        cfg, ctx, out = self.cfg, self.ctx, self.out
        train, held = data
        t_start = time.perf_counter()
        ckpt = None
        if ctx.is_main:
            ckpt = _prepare_run_dir(out, self.arch, cfg, resume, record)
            write_text_atomic(out / cfg.FILE_NAME, cfg.to_json())
            write_text_atomic(out / "arch.json", self.arch.to_json(indent=2) + "\n")
            if record is not None:
                write_text_atomic(out / DATA_FILE, json.dumps(record, indent=2) + "\n")
        barrier(ctx)
        if resume:
            ckpt = ckpt or find_checkpoint(out)
        step = 0 if ckpt is None else load_checkpoint(ckpt, ctx, model=self.model, optimizer=self.opt,
                                                      scheduler=self.sched, mask_generator=self.mask_gen)
        logger = MetricsLog(out, enabled=ctx.is_main, resume_step=step if resume else None)
        order = _BatchOrder(train.shape[0], cfg.batch_size, ctx, cfg.seed)
        end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
        log.info("pretraining %d parameters on %d blocks (%d held out) from step %d to %d on %s%s",
                 self.n_params, train.shape[0], 0 if held is None else held.shape[0], step, end, ctx.device,
                 " (bf16 autocast)" if self.bf16 else "")
        losses, window, last_eval = [], [], None
        train_time, tokens = 0.0, 0
        while step < end:
            t0 = time.perf_counter()
            loss, grad_norm = self._step(train, order, step)
            step += 1
            dt = time.perf_counter() - t0
            train_time += dt
            tokens += cfg.batch_size * cfg.grad_accum * cfg.seq_len * ctx.world_size
            losses.append((step, loss))
            window.append((loss, grad_norm, dt))
            record = {"step": step, "kind": "train", "loss": loss, "lr": self.sched.get_last_lr()[0],
                      "grad_norm": grad_norm}
            if step % cfg.log_interval == 0 or step == end:
                logger.write(self._window_record(window, step, tokens, time.perf_counter() - t_start))
                window = []
            if held is not None and (step % cfg.eval_interval == 0 or step == cfg.steps):
                last_eval = self._evaluate(held, step, logger, time.perf_counter() - t_start)
                if last_eval is not None:  # rank 0 only
                    record["eval_loss"] = last_eval["loss"]
            if step % cfg.checkpoint_interval == 0 or step == end:
                save_checkpoint(out, ctx, model=self.model, optimizer=self.opt, scheduler=self.sched,
                                step=step, mask_generator=self.mask_gen)
            if progress is not None and ctx.is_main:
                progress(step, record)
        logger.close()
        tps = tokens / train_time if train_time else float("nan")
        result = PretrainResult(out, step, step >= cfg.steps, losses, last_eval, tps, self.n_params,
                                time.perf_counter() - t_start)
        if result.finished and ctx.is_main:
            self._finish(result)
        barrier(ctx)
        return result

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def _step(self, train: torch.Tensor, order: _BatchOrder, step: int) -> tuple[float, float]:
        """One optimizer step over ``grad_accum`` micro-batches; returns (mean loss, grad norm)."""
        cfg, ctx = self.cfg, self.ctx
        total = 0.0
        for micro in range(cfg.grad_accum):
            batch = train[order(step * cfg.grad_accum + micro)]  # (B, seq_len)
            inputs, labels = mask_tokens(batch, self.masking, prob=cfg.mask_prob, generator=self.mask_gen)
            inputs, labels = inputs.to(ctx.device), labels.to(ctx.device)
            # Gradients are all-reduced only on the last micro-batch of the step.
            sync = not ctx.distributed or micro == cfg.grad_accum - 1
            with (contextlib.nullcontext() if sync else self.loss_mod.no_sync()):
                with autocast(ctx.device, self.bf16):
                    loss = self.loss_mod(inputs, labels)
                (loss / cfg.grad_accum).backward()
            total += float(loss.detach())
        clip = cfg.clip_norm if cfg.clip_norm is not None else float("inf")
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip))
        self.opt.step()
        self.sched.step()
        self.opt.zero_grad(set_to_none=True)
        return mean_across_ranks(ctx, total / cfg.grad_accum), grad_norm

    def _window_record(self, window, step: int, tokens: int, elapsed: float) -> dict:
        cfg = self.cfg
        dt = sum(w[2] for w in window)
        n_tok = len(window) * cfg.batch_size * cfg.grad_accum * cfg.seq_len * self.ctx.world_size
        return {"step": step, "kind": "train", "loss": sum(w[0] for w in window) / len(window),
                "lr": self.sched.get_last_lr()[0], "grad_norm": sum(w[1] for w in window) / len(window),
                "tokens_per_s": n_tok / dt if dt else None, "tokens_seen": tokens, "elapsed_s": elapsed}

    def _evaluate(self, held: torch.Tensor, step: int, logger: MetricsLog, elapsed: float) -> dict:
        cfg = self.cfg
        result = None
        if self.ctx.is_main:
            result = evaluate_mlm(self.model, held, batch_size=cfg.eval_batch_size, seed=cfg.seed,
                                  masking=self.masking, prob=cfg.mask_prob, max_blocks=cfg.eval_max_blocks,
                                  bf16=self.bf16)
            logger.write({"step": step, "kind": "eval", "loss": result["loss"],
                          "perplexity": result["perplexity"], "elapsed_s": elapsed})
            log.info("step %d: held-out MLM loss %.4f, perplexity %.2f", step, result["loss"], result["perplexity"])
        barrier(self.ctx)
        return result

    def _finish(self, result: PretrainResult) -> None:
        save_pretrained(self.model, self.out)
        _copy_vocab(self.tokenizer, self.out)
        summary = {"steps": result.step, "parameters": result.parameters, "tokens_per_s": result.tokens_per_s,
                   "eval": result.eval, "wall_s": result.wall_s, "device": str(self.ctx.device),
                   "world_size": self.ctx.world_size, "bf16": self.bf16}
        write_text_atomic(self.out / "summary.json", json.dumps(summary, indent=2) + "\n")
        log.info("pretraining done: %d steps, %.0f tokens/s, model in %s", result.step, result.tokens_per_s, self.out)
