"""The plan executor on the Triton backend: on CPU through Triton's interpreter (TRITON_INTERPRET=1,
set by tests/conftest.py), so CI checks the generated kernels end to end: fused == eager for the
library and random graphs, outputs and q/k/v gradients, with and without masks."""
import os
import random

import pytest
import torch

from autobert.graph import library, random_graph

pytest.importorskip("triton")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1",
                                reason="needs a GPU or TRITON_INTERPRET=1")

from test_fused_attention import check_graph  # noqa: E402


@pytest.fixture(autouse=True)
def _triton_backend(monkeypatch):
    monkeypatch.setenv("AUTOBERT_BACKEND", "triton")


@pytest.mark.parametrize("name", sorted(library))
@pytest.mark.parametrize("masked", [False, True])
def test_library_graph_triton(name, masked):
    check_graph(library[name], b=2, h=1, n=13, d=7, masked=masked)


def test_odd_head_dim_and_single_token():
    check_graph(library["abz_sqrt_score"], b=1, h=2, n=1, d=40, masked=False)
    check_graph(library["standard"], b=2, h=1, n=37, d=40, masked=True)


def test_random_graphs_triton():
    rng = random.Random(99)
    for i in range(24):
        check_graph(random_graph(rng, 8), b=2, h=1, n=13, d=7, seed=i, masked=i % 2 == 0)
