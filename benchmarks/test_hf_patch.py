"""hf_patch suite: a bert-base sized Hugging Face BertModel, patched with graph attention vs unpatched.

Random init (no downloads), fp32, CPU, inference (eval, no_grad), batch 16, N in {128, 512};
one quarter of the batch is padded by N/8 tokens so the attention mask is live. Cases are
"bert-base/B=16/N=<n>". Variants:
  hf_sdpa            unpatched, transformers' default SDPA attention (the baseline)
  hf_eager           unpatched, attn_implementation="eager"
  patched_standard   patch_attention(model, "standard"): same maths through autobert.fusion.fused_attention
  patched_abz        patch_attention(model, "abz_sqrt_softplus_key"): an AutoBERT-Zero graph
Run: pytest benchmarks/test_hf_patch.py  (AUTOBERT_BENCH_N=128 to restrict sizes)
"""
import os

import pytest
import torch

transformers = pytest.importorskip("transformers")
from transformers import BertConfig, BertModel  # noqa: E402

from autobert.model import patch_attention  # noqa: E402

SUITE = "hf_patch"
BATCH = 16
SIZES = [int(n) for n in os.environ.get("AUTOBERT_BENCH_HF_N", os.environ.get("AUTOBERT_BENCH_N", "128,512")).split(",")
         if int(n) <= 512]
VARIANTS = {"hf_sdpa": ("sdpa", None), "hf_eager": ("eager", None),
            "patched_standard": ("sdpa", "standard"), "patched_abz": ("sdpa", "abz_sqrt_softplus_key")}


def _model(impl: str) -> BertModel:
    torch.manual_seed(0)
    return BertModel(BertConfig(attn_implementation=impl), add_pooling_layer=False).eval()  # bert-base sizes


def _inputs(n: int):
    g = torch.Generator().manual_seed(n)
    ids = torch.randint(1000, 30000, (BATCH, n), generator=g)
    mask = torch.ones(BATCH, n, dtype=torch.long)
    mask[: BATCH // 4, n - n // 8:] = 0
    return ids, mask


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_bert_base_inference(benchmark, bench_record, peak_memory, variant, n):
    impl, graph = VARIANTS[variant]
    model = _model(impl)
    handle = patch_attention(model, graph) if graph is not None else None
    ids, mask = _inputs(n)

    def run():
        with torch.no_grad():
            return model(input_ids=ids, attention_mask=mask).last_hidden_state

    run()  # warm-up: thread pool, allocator, fused-attention plan
    benchmark.pedantic(run, rounds=5 if n <= 128 else 3, warmup_rounds=0)
    bench_record(benchmark, suite=SUITE, case=f"bert-base/B={BATCH}/N={n}", variant=variant, baseline="hf_sdpa",
                 shapes=[BATCH, n, 768], dtype="float32", peak_mem_bytes=peak_memory(run),
                 graph=graph or "hf")
    if handle is not None:
        handle.revert()
