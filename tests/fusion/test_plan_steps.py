"""Plan steps: one class per kind, the plan JSON format, and the saved tensors' shapes and dtypes
(the fake implementation's results match the real ones in every dtype)."""
import json
import random

import pytest
import torch

from autobert.fusion import plan
from autobert.graph import library, parse, random_graph
from autobert_ext import plan_executor as X
from autobert_ext.plan import Plan
from autobert_ext.plan_steps import STEPS

GRAPHS = ["standard", "linear", "cosine", "abz_sqrt_key_qkv", "sigmoid"]


def _plans():
    rng = random.Random(5)
    general = parse("matmul(tanh(softmax(matmul(Q, transpose(K)))), softmax(V))")  # softmax steps
    return ([plan(library[n], 8) for n in GRAPHS] + [plan(general, 8)]
            + [plan(random_graph(rng, 8), 8) for _ in range(6)])


def test_one_class_per_kind_and_json_round_trip():
    seen = set()
    for p in _plans():
        for s in p.steps:
            assert type(s) is STEPS[s.kind]
            seen.add(s.kind)
        back = Plan.from_json(p.json)
        assert back == p and back.json == p.json
    assert {"elementwise", "softmax", "matmul", "streaming", "rownorm"} <= seen


def test_json_errors_name_the_problem():
    doc = json.loads(plan(library["standard"], 8).json)
    with pytest.raises(ValueError, match="plan version 0, expected 1"):
        Plan.from_json(json.dumps(dict(doc, version=0)))
    doc["steps"][0]["kind"] = "fft"
    with pytest.raises(ValueError, match="unknown plan step kind 'fft'"):
        Plan.from_json(json.dumps(doc))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_fake_results_match_real_shapes_and_dtypes(dtype):
    gen = torch.Generator().manual_seed(0)
    for p in _plans():
        q, k, v = (torch.randn(2, 2, 5, 8, generator=gen).to(dtype) for _ in range(3))
        mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
        real = X.pack(p, *X.forward(p, q, k, v, mask))
        fake = X.fake_results(p, q)
        assert [(tuple(t.shape), t.dtype) for t in fake] == [(tuple(t.shape), t.dtype) for t in real], p.describe()
