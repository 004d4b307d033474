"""BIWS evaluation: warm up a weight-sharing supernet, then score each candidate by inheriting its
weights (``Supernet.extract``), training a few MLM steps and measuring the held-out MLM loss.

The supernet is trained only during warm-up and then frozen (saved to the run folder): every
candidate starts from the same weights, so a fitness depends only on the architecture and the
seed — which is what makes a resumed search equal an uninterrupted one. Each candidate trains on
a copy; batch order, masks and dropout are seeded from the run seed alone, the same for every
candidate, so candidates are compared on identical data.

Optional quick GLUE proxy (``BIWSConfig.glue_task``): after its MLM steps the child's backbone gets
a fresh classification head and is fine-tuned on a seeded subsample of the task's train split
(``autobert.train.finetune_loop.train_one``), then scored on a fixed dev subsample with the task's
GLUE metric. Fitness = MLM loss - glue_weight * dev score (``glue_only``: -dev score); both
numbers are recorded in the candidate's metrics.
"""
from __future__ import annotations

import dataclasses
import logging
import random
import time
from pathlib import Path
from typing import Callable, Optional

import torch

from autobert.model.atomic import atomic_write
from autobert.model.config import ArchConfig
from autobert.model.heads import ForMaskedLM
from autobert.model.space import SearchSpace
from autobert.search.config import BIWSConfig
from autobert.search.constraints import Constraints
from autobert.search.outcome import CandidateFailed
from autobert.supernet import SingleChangeSampler, Supernet, UniformSampler, make_optimizer, masked_step
from autobert.train import (MaskingIds, WordPieceTokenizer, evaluate_mlm, load_corpus, mask_tokens, masked_lm_loss,
                            mlm_step, split_blocks)
from autobert.train.schedule import adamw

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class MLMData:
    """Token blocks for training and scoring, and the ids masking needs."""

    train: torch.Tensor      # (num_train, seq_len) long
    heldout: torch.Tensor    # (num_heldout, seq_len) long
    masking: MaskingIds
    vocab_size: int
    id_map: Optional[torch.Tensor] = None  # tokenizer id -> model id (compact vocabulary; -1: unused)


def compact_vocabulary(blocks: torch.Tensor, masking: MaskingIds) -> tuple[torch.Tensor, MaskingIds]:
    """Re-number the ids that occur in ``blocks`` (plus the specials) densely from 0.

    A WikiText-sized corpus uses a third of BERT's 30522 word pieces; the output softmax and the
    embedding update are the largest costs of a small proxy model, so dropping unused rows makes
    every step cheaper without changing what the model can predict on this corpus.
    blocks (n, N) long -> (n, N) long in [0, V'), and MaskingIds over V'.
    """
    lut, ids = compact_map(blocks, masking)
    return lut[blocks], ids


def compact_map(blocks: torch.Tensor, masking: MaskingIds) -> tuple[torch.Tensor, MaskingIds]:
    """(lut (V,) long: old id -> new id or -1, MaskingIds over the new ids) of ``compact_vocabulary``;
    ``lut`` maps other text (an evaluation corpus) into the same compact vocabulary."""
    specials = sorted(masking.special_token_ids | {masking.mask_token_id})
    used = torch.unique(torch.cat([torch.tensor(specials, dtype=torch.long), blocks.flatten()]))  # sorted
    lut = torch.full((masking.vocab_size,), -1, dtype=torch.long)
    lut[used] = torch.arange(len(used))
    remap = {int(i): int(lut[i]) for i in specials}
    ids = MaskingIds(mask_token_id=remap[masking.mask_token_id], vocab_size=len(used),
                     special_token_ids=frozenset(remap[i] for i in masking.special_token_ids),
                     pad_token_id=None if masking.pad_token_id is None else remap[masking.pad_token_id])
    return lut, ids


def load_mlm_data(corpus, vocab, cfg: BIWSConfig, seed: int) -> MLMData:
    """Tokenise ``corpus`` with the WordPiece ``vocab`` into blocks and hold out a seeded fraction."""
    tokenizer = WordPieceTokenizer.from_vocab(vocab)
    blocks = load_corpus(corpus, tokenizer, cfg.seq_len, max_tokens=cfg.max_tokens)  # (n, seq_len)
    masking, lut = MaskingIds.from_tokenizer(tokenizer), None
    if cfg.compact_vocab:
        lut, masking = compact_map(blocks, masking)
        blocks = lut[blocks]
    train, heldout = split_blocks(blocks, cfg.holdout_fraction, seed)
    log.info("MLM data: %d train / %d held-out blocks of %d, vocabulary %d", len(train), len(heldout),
             cfg.seq_len, masking.vocab_size)
    return MLMData(train, heldout[:cfg.eval_blocks], masking, masking.vocab_size, lut)


class _MappedTokenizer:
    """A WordPieceTokenizer whose input_ids are mapped into the model's (compact) vocabulary; ids the
    MLM corpus never used become [UNK]."""

    def __init__(self, tokenizer: WordPieceTokenizer, id_map: Optional[torch.Tensor]):
        self.tokenizer, self.id_map = tokenizer, id_map
        self.unk = None if id_map is None else int(id_map[tokenizer.unk_token_id])

    def __call__(self, texts_a, texts_b=None, max_length: int = 512) -> dict:
        enc = dict(self.tokenizer(texts_a, texts_b, max_length=max_length))
        if self.id_map is not None:
            ids = self.id_map[enc["input_ids"]]  # (B, L)
            enc["input_ids"] = torch.where(ids < 0, torch.full_like(ids, self.unk), ids)
        return enc


@dataclasses.dataclass(frozen=True)
class GlueData:
    """The GLUE proxy's examples: a seeded train subsample and a fixed dev subsample of one task."""

    task: str                 # GLUE config name (sst2, rte, ...)
    train: list               # autobert.glue.Example rows
    dev: list
    num_labels: int           # 1: regression (STS-B)
    tokenizer: Callable       # texts -> input_ids in the model's vocabulary / token_type_ids / attention_mask


def _seeded_subset(rows, k: int, seed: int) -> list:
    rows = list(rows)
    if k >= len(rows):
        return rows
    idx = torch.randperm(len(rows), generator=_generator(seed))[:k]
    return [rows[i] for i in sorted(idx.tolist())]


def load_glue_data(vocab, cfg: BIWSConfig, seed: int, id_map: Optional[torch.Tensor] = None) -> GlueData:
    """Load ``cfg.glue_task`` from ``cfg.glue_dir``: train/dev subsamples seeded by the run seed.

    Raises ValueError naming the task or the folder when the data cannot be found.
    """
    from autobert.glue import GlueFileNotFoundError, get_config, load_task
    task = cfg.glue_task  # the config name: BIWSConfig normalises it
    folder = Path(cfg.glue_dir)
    try:  # load_task names the missing folder or file and what the task's folder should hold
        train = load_task(task, folder, "train")
        dev = load_task(task, folder, "dev")
    except GlueFileNotFoundError as e:
        raise ValueError(f"GLUE proxy: task {task!r} data missing under {folder}: {e}") from None
    data = GlueData(task, _seeded_subset(train, cfg.glue_train_examples, seed),
                    _seeded_subset(dev, cfg.glue_dev_examples, seed + 1), get_config(task).task.num_labels,
                    _MappedTokenizer(WordPieceTokenizer.from_vocab(vocab), id_map))
    log.info("GLUE proxy %s: %d train / %d dev examples", task, len(data.train), len(data.dev))
    return data


def combined_fitness(mlm_loss: float, glue_score: Optional[float], cfg: BIWSConfig) -> float:
    """The fitness (lower is better): the MLM loss, minus ``glue_weight`` x the GLUE dev score when the
    proxy is on, or minus the dev score alone with ``glue_only``."""
    if glue_score is None:
        return mlm_loss
    if cfg.glue_only:
        return -glue_score
    return mlm_loss - cfg.glue_weight * glue_score


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed % (2 ** 63))


class BIWSEvaluator:
    """arch (ArchConfig) -> (held-out MLM loss, metrics), from a warmed-up supernet.

    Args:
        base: sizes of every candidate (vocab_size must equal ``data.vocab_size``).
        space: what warm-up samples children from.
        data: train / held-out blocks.
        cfg: BIWS settings; seed: run seed.
        constraints: a latency limit is checked on the extracted child before training.
        device: where the supernet lives and children train; the data stay on the CPU (masks are
            drawn there, so they are the same on any device) and each batch moves over.
    """

    def __init__(self, base: ArchConfig, space: SearchSpace, data: MLMData, cfg: BIWSConfig, seed: int = 0,
                 constraints: Optional[Constraints] = None, glue: Optional[GlueData] = None,
                 device: "str | torch.device" = "cpu"):
        if base.vocab_size != data.vocab_size:
            raise ValueError(f"base vocab_size {base.vocab_size} != data vocabulary {data.vocab_size}")
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.base, self.space, self.data, self.cfg, self.seed = base, space, data, cfg, seed
        self.constraints = constraints or Constraints()
        self.glue = glue
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.supernet = Supernet(base, kernel_sizes=space.kernel_sizes, space=space)
        self.device = torch.device(device)
        self.supernet.to(self.device)

    # ---- supernet ----
    def _batch(self, gen: torch.Generator) -> torch.Tensor:
        idx = torch.randint(len(self.data.train), (self.cfg.batch_size,), generator=gen)
        return self.data.train[idx]  # (B, seq_len)

    def warm_up(self, steps: Optional[int] = None, progress: Optional[Callable[[int, float], None]] = None) -> dict:
        """Train the supernet on sampled children (uniform and single-change samplers, masked AdamW)."""
        steps = self.cfg.warmup_steps if steps is None else steps
        rng = random.Random(f"{self.seed}/warmup")
        uniform, single = UniformSampler(self.space, rng), SingleChangeSampler(self.space, rng)
        opt = make_optimizer(self.supernet, lr=self.cfg.supernet_lr)
        gen, losses, skipped, start = _generator(self.seed), [], 0, time.perf_counter()
        ramp = max(1, steps // 10)
        self.supernet.train()
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            for step in range(steps):
                for group in opt.param_groups:  # linear warm-up over the first 10%, then constant
                    group["lr"] = self.cfg.supernet_lr * min(1.0, (step + 1) / ramp)
                sampler = single if rng.random() < self.cfg.single_change_prob else uniform
                self.supernet.activate(sampler())
                inputs, labels = mask_tokens(self._batch(gen), self.data.masking, generator=gen)
                inputs, labels = inputs.to(self.device), labels.to(self.device)
                loss = masked_lm_loss(self.supernet.net, inputs, labels)
                opt.zero_grad(set_to_none=True)
                if not torch.isfinite(loss):  # a numerically wild child must not poison the shared weights
                    skipped += 1
                    continue
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.supernet.parameters(), 1.0)
                masked_step(self.supernet, opt)
                losses.append(float(loss.detach()))
                if progress is not None:
                    progress(step + 1, losses[-1])
        seconds = time.perf_counter() - start
        log.info("supernet warm-up: %d steps in %.1f s, last loss %.3f, %d non-finite skipped", steps, seconds,
                 losses[-1] if losses else float("nan"), skipped)
        return {"steps": steps, "seconds": seconds, "losses": losses, "skipped": skipped}

    def save(self, path) -> None:
        """Atomically write the supernet weights (a crash never leaves a half-written file)."""
        state = {k: v.cpu() for k, v in self.supernet.state_dict().items()}  # loadable on any device
        atomic_write(path, lambda tmp: torch.save({"state_dict": state, "base": self.base.to_json()}, tmp))

    def load(self, path) -> None:
        doc = torch.load(path, map_location=self.device, weights_only=True)
        if doc["base"] != self.base.to_json():
            raise ValueError(f"supernet checkpoint {path} was made for another base architecture")
        self.supernet.load_state_dict(doc["state_dict"])

    # ---- candidates ----
    def candidate_seed(self, arch: ArchConfig) -> int:
        """Every candidate trains on the same batches with the same masks (common random numbers):
        fitness differences then come from the architecture, not from the luck of the data order."""
        return self.seed

    def shrink_toward_init(self, child: ForMaskedLM, arch: ArchConfig) -> None:
        """child's weights <- inherit * inherited + (1 - inherit) * a fresh init of ``arch``, in place.

        The init is seeded by the run seed alone (the same for every candidate). A child that
        inherits everything hides how a layer trains from random weights, which is how a final
        model trains: the proxy then favours layers that only work with trained weights."""
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            fresh = ForMaskedLM(arch)
        init = dict(fresh.named_parameters())
        with torch.no_grad():
            for name, w in child.named_parameters():
                w.lerp_(init[name].to(w.device), 1.0 - self.cfg.inherit)

    def train_child(self, model: torch.nn.Module, steps: int, seed: int,
                    optimizer: Optional[torch.optim.Optimizer] = None) -> list[float]:
        """``steps`` MLM steps of ``model`` (AdamW at child_lr unless ``optimizer``), batches/masks/dropout
        from ``seed``; the training losses."""
        opt = optimizer or adamw(model, lr=self.cfg.child_lr, weight_decay=0.01)
        gen, losses = _generator(seed), []
        model.train()
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            for _ in range(steps):
                losses.append(mlm_step(model, self._batch(gen), opt, self.data.masking, generator=gen))
        return losses

    def score(self, model: torch.nn.Module) -> float:
        """Held-out MLM loss with masks fixed by the run seed (comparable across candidates)."""
        return evaluate_mlm(model, self.data.heldout, batch_size=64, seed=self.seed, masking=self.data.masking)["loss"]

    def __call__(self, arch: ArchConfig) -> tuple[float, dict]:
        start = time.perf_counter()
        child = self.supernet.extract(arch)
        if self.cfg.inherit < 1:
            self.shrink_toward_init(child, arch)
        reason = self.constraints.latency_violation(child, seed=self.seed)
        if reason is not None:
            raise CandidateFailed(reason)
        losses = self.train_child(child, self.cfg.child_steps, self.candidate_seed(arch))
        trained = time.perf_counter()
        loss = self.score(child)
        end = time.perf_counter()
        metrics = {"train_seconds": trained - start, "eval_seconds": end - trained,
                   "train_loss_first": losses[0] if losses else None,
                   "train_loss_last": losses[-1] if losses else None}
        if self.glue is None:
            return loss, metrics
        score, glue_metrics = self.glue_proxy(child)
        metrics.update(mlm_loss=loss, glue_task=self.glue.task, glue_score=score, glue_metrics=glue_metrics,
                       glue_seconds=time.perf_counter() - end)
        return combined_fitness(loss, score, self.cfg), metrics

    def glue_proxy(self, child: torch.nn.Module) -> tuple[float, dict]:
        """Fine-tune ``child``'s backbone (in place) with a new classification head on the GLUE
        subsample; (dev score, dev metrics). Head init, batch order and dropout come from the run seed."""
        from autobert.glue import compute_metrics, task_score
        from autobert.model import ForSequenceClassification
        from autobert.train.finetune import FinetuneConfig
        from autobert.train.finetune_loop import predict, train_one
        g, cfg = self.glue, self.cfg
        ft = FinetuneConfig(lr=cfg.glue_lr, epochs=cfg.glue_epochs, batch_size=cfg.glue_batch_size,
                            eval_batch_size=128, max_length=cfg.glue_max_length, seeds=(0,), predict_test=False,
                            precision="fp32")
        device = next(child.parameters()).device
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            model = ForSequenceClassification(child.config, num_labels=g.num_labels, backbone=child.backbone)
            model.to(device)
            train_one(model, g.train, g.tokenizer, ft, lr=cfg.glue_lr, seed=self.seed, device=device, bf16=False)
            preds = predict(model, g.dev, g.tokenizer, ft, device=device, bf16=False, regression=g.num_labels == 1)
        glue_metrics = compute_metrics(g.task, preds, [r.label for r in g.dev])
        return float(task_score(g.task, glue_metrics)), glue_metrics
