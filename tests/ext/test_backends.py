"""autobert_ext.backends: AUTOBERT_BACKEND means the same through every entry point, the default
rule, one meaning of a fully padded row's log-sum-exp, and fake (meta) results that match the
real ones in shape and dtype in float32, bfloat16 and float16."""
import logging
import re
from pathlib import Path

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

import autobert_ext
from autobert.fusion import plan
from autobert.graph import library
from autobert_ext import backends
from autobert_ext.streaming_attention import forward as streaming_forward
from autobert_ext.fused_attention import _fused_attention_op
from autobert_ext.program import BY_NAME, Program
from autobert_ext.reference import EMPTY_ROW_LSE

OP = {name: o.code for name, o in BY_NAME.items()}
SCALE = Program(1, ((OP["mulc"], 1, 0, -1, 0.5),), (1,))          # s -> s / 2
SCALE_BWD = Program(2, ((OP["mulc"], 2, 1, -1, 0.5),), (2,))      # (s, g) -> g / 2
TANH = Program(1, ((OP["tanh"], 1, 0, -1, 0.0), (OP["mulc"], 2, 1, -1, 2.0)), (2,))
CPU = torch.device("cpu")


def _qkv(dtype=torch.float32, n=5, d=4):
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 2, n, d, generator=gen).to(dtype) for _ in range(3))
    mask = torch.ones(2, n, dtype=torch.bool)
    mask[0, 3:] = False
    mask[1] = False  # one fully padded sequence
    return q, k, v, mask


def _masked_adamw():
    p, g = torch.randn(6), torch.randn(6)
    m, v = torch.zeros(6), torch.zeros(6)
    autobert_ext.fused_masked_adamw_([p], [g], [m], [v], [p > 0], step=1, lr=1e-2)
    return p


# Each public entry point with the kernel family its backend choice is made for.
ENTRY_POINTS = {
    "elementwise": ("elementwise", lambda: autobert_ext.elementwise(TANH, None, [torch.randn(7)])[0]),
    "fused_softmax": ("softmax", lambda: autobert_ext.fused_softmax(None, None, None, None, [torch.randn(2, 3, 5)],
                                                                     torch.ones(2, 5, dtype=torch.bool))),
    "streaming_attention": ("streaming", lambda: autobert_ext.streaming_attention(*_qkv()[:3], SCALE, SCALE_BWD)),
    "fused_attention (streaming plan)": ("streaming", lambda: autobert_ext.fused_attention(
        plan(library["standard"], 4), *_qkv())),
    "fused_attention (general plan)": ("softmax", lambda: autobert_ext.fused_attention(
        plan(library["abz_sqrt_score"], 4), *_qkv())),
    "fused_masked_adamw_": ("masked_adamw", _masked_adamw),
}


@pytest.mark.parametrize("backend", backends.BACKENDS)
@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_forced_backend_is_one_rule_through_every_entry_point(monkeypatch, backend, entry):
    """A forced backend runs wherever ``backends.unavailable`` says it can, and everywhere else
    raises the same RuntimeError naming the variable and the reason (never a silent substitute)."""
    family, call = ENTRY_POINTS[entry]
    monkeypatch.setenv("AUTOBERT_BACKEND", backend)
    why = backends.unavailable(backend, family, CPU, torch.float32)
    if family != "masked_adamw" and entry.startswith("fused_attention"):  # a plan runs several families
        whys = [backends.unavailable(backend, f, CPU, torch.float32) for f in ("elementwise", "softmax", "streaming")]
        why = next((w for w in whys if w is not None), None)
    if why is None:
        assert torch.isfinite(call()).all()
    else:
        with pytest.raises(RuntimeError, match=f"AUTOBERT_BACKEND={backend} cannot run .*: "):
            call()


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_unknown_backend_is_rejected_by_every_entry_point(monkeypatch, entry):
    monkeypatch.setenv("AUTOBERT_BACKEND", "fortran")
    with pytest.raises(ValueError, match="AUTOBERT_BACKEND='fortran'; expected one of eager, cpp, cuda, triton"):
        ENTRY_POINTS[entry][1]()


def test_forced_gpu_backends_refuse_cpu_tensors_alike(monkeypatch):
    monkeypatch.setenv("AUTOBERT_BACKEND", "cuda")
    for family in backends.FAMILIES:
        with pytest.raises(RuntimeError, match="AUTOBERT_BACKEND=cuda cannot run .* need CUDA tensors"):
            backends.choose(family, CPU, torch.float32)
    monkeypatch.setenv("AUTOBERT_BACKEND", "triton")
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    for family in ("elementwise", "softmax", "streaming"):
        with pytest.raises(RuntimeError, match="AUTOBERT_BACKEND=triton cannot run .* need CUDA tensors"):
            backends.choose(family, CPU, torch.float32)
    with pytest.raises(RuntimeError, match="no Triton kernel for masked_adamw"):
        backends.choose("masked_adamw", CPU, torch.float32)


def test_default_rule(monkeypatch, caplog):
    monkeypatch.delenv("AUTOBERT_BACKEND", raising=False)
    want_cpu = "cpp" if autobert_ext.available() else "eager"
    assert {f: backends.choose(f, CPU, torch.float32) for f in backends.FAMILIES} == dict.fromkeys(
        backends.FAMILIES, want_cpu)
    assert backends.choose("streaming", torch.device("meta")) == "eager"
    # float64 on a GPU: no GPU kernel computes it, so eager, after one warning per family and device type.
    monkeypatch.setattr(backends, "_WARNED", set())
    cuda = torch.device("cuda")
    with caplog.at_level(logging.WARNING, logger="autobert_ext"):
        assert backends.choose("masked_adamw", cuda, torch.float64) == "eager"
        assert backends.choose("masked_adamw", cuda, torch.float64) == "eager"
    warned = [r.getMessage() for r in caplog.records if "masked_adamw on cuda" in r.getMessage()]
    assert len(warned) == 1 and "float32/bfloat16/float16, got torch.float64" in warned[0]


def test_compiled_kernel_names_are_the_ones_the_bindings_register():
    """backends finds each family's compiled kernel as a dispatcher op by name; a name with no
    registration for a device sends the family to eager there (a CUDA AdamW kernel was once looked
    up under a misspelt name). The registrations are read from csrc/bindings, so a CPU-only build
    checks the CUDA ones too: every family has a CPU kernel, every family but streaming attention
    (Triton on GPUs) a CUDA one."""
    src = {f.name: f.read_text() for f in (Path(__file__).resolve().parents[2] / "csrc" / "bindings").glob("*.cpp")}
    defined = set(re.findall(r'm\.def\(\s*"(\w+)\(', src["module.cpp"]))
    impl = re.compile(r'm\.impl\(\s*"(\w+)"')
    cuda = set(impl.findall(src["cuda.cpp"]))
    cpu = set(impl.findall("".join(text for name, text in src.items() if name != "cuda.cpp")))
    for family in backends.FAMILIES:
        name = backends._C_NAMES[family]
        assert name in defined and name in cpu, (family, name)
        assert (name in cuda) == (family != "streaming"), (family, name)


def test_empty_row_lse_is_one_convention_on_every_backend(monkeypatch):
    """cpp, triton (the CPU interpreter here) and eager save EMPTY_ROW_LSE (+inf) for a query row
    whose keys are all padded, in float32 for every input dtype, and give it output 0."""
    monkeypatch.delenv("AUTOBERT_BACKEND", raising=False)
    names = [b for b in ("eager", "cpp", "triton") if backends.unavailable(b, "streaming", CPU, torch.float32) is None]
    assert "eager" in names and len(names) >= 2, names
    for dtype in (torch.float32, torch.bfloat16):
        q, k, v, mask = _qkv(dtype)
        for name in names:
            out, lse = streaming_forward(name, q, k, v, SCALE, "softmax", mask)
            assert lse.dtype == torch.float32, (name, dtype)
            assert torch.all(lse[1] == EMPTY_ROW_LSE), (name, dtype)
            assert torch.isfinite(lse[0]).all(), (name, dtype)
            assert torch.all(out[1] == 0), (name, dtype)


PLAN_GRAPHS = ["standard", "cosine", "abz_sqrt_key_qkv", "abz_sqrt_score", "linear"]


@pytest.mark.parametrize("name", PLAN_GRAPHS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_fake_results_match_real_shapes_and_dtypes(name, dtype):
    q, k, v, mask = _qkv(dtype, n=5, d=8)
    p = plan(library[name], 8).json
    real = _fused_attention_op(p, q, k, v, mask)
    with FakeTensorMode() as mode:
        fake = _fused_attention_op(p, *(mode.from_tensor(t) for t in (q, k, v, mask)))
    assert [(tuple(t.shape), t.dtype) for t in fake] == [(tuple(t.shape), t.dtype) for t in real]


@pytest.mark.parametrize("name", ["standard", "cosine"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_opcheck_in_every_dtype(name, dtype):
    q, k, v, mask = _qkv(dtype, n=5, d=8)
    p = plan(library[name], 8).json
    for m in (None, mask):
        args = (p, q.clone().requires_grad_(), k.clone().requires_grad_(), v.clone().requires_grad_(), m)
        torch.library.opcheck(_fused_attention_op, args)


@pytest.mark.skipif(not autobert_ext.available(), reason="autobert_ext._C is not built")
def test_kernels_are_dispatcher_ops_registered_per_device():
    """Each _C kernel is one op with a CPU implementation, and a CUDA one exactly in CUDA builds;
    ``backends`` asks the dispatcher, not a name suffix."""
    from autobert_ext import _loader
    for name in ("elementwise", "fused_softmax", "fused_softmax_backward", "streaming_attention",
                 "streaming_attention_backward", "fused_masked_adamw_"):
        assert _loader.has_kernel(name, "cpu"), name
        assert callable(_loader.kernel(name))
    for name in ("elementwise", "fused_softmax", "fused_softmax_backward", "fused_masked_adamw_"):
        assert _loader.has_kernel(name, "cuda") == _loader.with_cuda(), name
