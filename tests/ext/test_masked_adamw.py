"""fused_masked_adamw_ / MaskedAdamW: active entries follow torch.optim.AdamW, inactive entries (and
their moments) keep their bits, the C++ kernel agrees with the eager reference, bad input -> clear error."""
import copy

import pytest
import torch

import autobert_ext
from autobert_ext import MaskedAdamW, fused_masked_adamw_
from autobert_ext import backends
from autobert_ext import masked_adamw as mod

from adamw_state import bits, make_state

needs_C = pytest.mark.skipif(not autobert_ext.available(), reason="autobert_ext._C not built")
HYPER = dict(lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.1)
SHAPES = [(1,), (7,), (13,), (97,), (40, 7), (3, 5, 13), (1000,), (4099,)]


def tol(dtype):
    # torch's CPU sqrt is <= 1 ulp off correct rounding (the kernel's is exact); a few ulp of slack.
    eps = torch.finfo(dtype).eps
    return dict(rtol=8 * eps, atol=8 * eps)


def rand_grads(shapes, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g, dtype=torch.float64).to(dtype) for s in shapes]


def rand_masks(shapes, seed, p=0.5):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(s, generator=g) < p for s in shapes]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("foreach", [True, False])
def test_full_masks_match_torch_adamw(dtype, foreach):
    ps, _, _ = make_state(SHAPES, dtype)
    ref = [p.clone().requires_grad_() for p in ps]
    mine = [p.clone().requires_grad_() for p in ps]
    opt_ref = torch.optim.AdamW(ref, lr=1e-2, weight_decay=0.1, foreach=foreach)
    opt = MaskedAdamW(mine, lr=1e-2, weight_decay=0.1)
    for step in range(6):
        for r, q, g in zip(ref, mine, rand_grads(SHAPES, dtype, step)):
            r.grad, q.grad = g.clone(), g.clone()
        opt_ref.step()
        opt.step()
    for r, q in zip(ref, mine):
        torch.testing.assert_close(q, r, **tol(dtype))
        for key in ("exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(opt.state[q][key], opt_ref.state[r][key], **tol(dtype))
        assert opt.state[q]["step"].item() == opt_ref.state[r]["step"].item() == 6


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_partial_masks_match_adamw_on_gathered_slice(dtype):
    """Fixed masks: the active entries evolve exactly as torch AdamW on the gathered entries;
    inactive params and moments are bit-identical after every step."""
    ps, ms, vs = make_state(SHAPES, dtype)
    masks = rand_masks(SHAPES, seed=1)
    masks[0].fill_(True)
    slices = [p[k].clone().requires_grad_() for p, k in zip(ps, masks)]
    opt_ref = torch.optim.AdamW(slices, **{"lr": 1e-2, "weight_decay": 0.1})
    for s, m, v, k in zip(slices, ms, vs, masks):
        opt_ref.state[s] = {"step": torch.tensor(3.0), "exp_avg": m[k].clone(), "exp_avg_sq": v[k].clone()}
    frozen = [[t[~k].clone() for t in (p, m, v)] for p, m, v, k in zip(ps, ms, vs, masks)]
    for step in range(4, 9):
        grads = rand_grads(SHAPES, dtype, step)
        for s, g, k in zip(slices, grads, masks):
            s.grad = g[k].clone()
        opt_ref.step()
        fused_masked_adamw_(ps, grads, ms, vs, masks, step=step, **HYPER)
        for (p, m, v, k), old in zip(zip(ps, ms, vs, masks), frozen):
            for t, before in zip((p, m, v), old):
                assert torch.equal(bits(t[~k]), bits(before))
    for p, m, v, k, s in zip(ps, ms, vs, masks, slices):
        torch.testing.assert_close(p[k], s.detach(), **tol(dtype))
        torch.testing.assert_close(m[k], opt_ref.state[s]["exp_avg"], **tol(dtype))
        torch.testing.assert_close(v[k], opt_ref.state[s]["exp_avg_sq"], **tol(dtype))


def test_inactive_entries_keep_nan_and_inf_bits():
    """Inactive entries holding NaN/inf (and NaN grads there) are neither read into nor written."""
    ps, ms, vs = make_state([(257,)], torch.float32)
    mask = rand_masks([(257,)], seed=3)[0]
    for t in (ps[0], ms[0], vs[0]):
        t[~mask] = torch.tensor([float("nan"), float("inf"), -float("inf")]).repeat(300)[: int((~mask).sum())]
    grad = torch.randn(257)
    grad[~mask] = float("nan")
    before = [bits(t).clone() for t in (ps[0], ms[0], vs[0])]
    fused_masked_adamw_(ps, [grad], ms, vs, [mask], step=2, **HYPER)
    for t, b in zip((ps[0], ms[0], vs[0]), before):
        assert torch.equal(bits(t)[~mask], b[~mask])
        assert torch.isfinite(t[mask]).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_kernel_matches_eager_reference_with_changing_masks(dtype):
    shapes = SHAPES + [(2, 1)] * 40 + [(33,), (65537,)]  # many tensors, odd sizes, two large
    a, b = make_state(shapes, dtype), make_state(shapes, dtype)
    for step in range(1, 5):
        grads, masks = rand_grads(shapes, dtype, step), rand_masks(shapes, seed=10 + step)
        masks[1], masks[5] = None, torch.zeros(shapes[5], dtype=torch.bool)  # None = all; none
        before = [t.clone() for t in a[0]]
        fused_masked_adamw_(a[0], grads, a[1], a[2], masks, step=step, **HYPER)
        mod.masked_adamw_reference_(b[0], grads, b[1], b[2], masks, [step], **HYPER)
        assert torch.equal(bits(a[0][5]), bits(before[5]))
    t = tol(dtype) if dtype != torch.bfloat16 else dict(rtol=2 ** -7, atol=2 ** -7)  # 1 bf16 ulp
    for x, y in zip(sum(a, []), sum(b, [])):
        torch.testing.assert_close(x, y, **t)


def test_eager_backend_env_and_missing_C_agree_with_kernel(monkeypatch):
    shapes = SHAPES
    runs = {}
    for name in ("cpp", "env", "noC"):
        with monkeypatch.context() as mp:
            if name == "env":
                mp.setenv("AUTOBERT_BACKEND", "eager")
            if name == "noC":
                mp.setattr(autobert_ext._loader, "get_C", lambda: None)  # as if _C were missing
            ps, ms, vs = make_state(shapes, torch.float64)
            for step in range(1, 4):
                fused_masked_adamw_(ps, rand_grads(shapes, torch.float64, step), ms, vs,
                                    rand_masks(shapes, step), step=step, **HYPER)
            runs[name] = ps + ms + vs
    for x, y, z in zip(runs["cpp"], runs["env"], runs["noC"]):
        torch.testing.assert_close(x, y, **tol(torch.float64))
        assert torch.equal(y, z)


def test_none_masks_and_per_tensor_steps_equal_separate_calls():
    ps, ms, vs = make_state(SHAPES, torch.float32)
    qs, ns, ws = (copy.deepcopy(x) for x in (ps, ms, vs))
    grads, steps = rand_grads(SHAPES, torch.float32, 0), list(range(1, len(SHAPES) + 1))
    fused_masked_adamw_(ps, grads, ms, vs, None, step=steps, **HYPER)
    for i in range(len(SHAPES)):
        fused_masked_adamw_([qs[i]], [grads[i]], [ns[i]], [ws[i]], [None], step=steps[i], **HYPER)
    for x, y in zip(ps + ms + vs, qs + ns + ws):
        assert torch.equal(x, y)


@needs_C
def test_result_independent_of_thread_count():
    shapes = [(100_003,), (31,), (70_001,)]
    out = []
    old = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            ps, ms, vs = make_state(shapes, torch.float32)
            fused_masked_adamw_(ps, rand_grads(shapes, torch.float32, 0), ms, vs, rand_masks(shapes, 0),
                                step=3, **HYPER)
            out.append(ps + ms + vs)
    finally:
        torch.set_num_threads(old)
    assert all(torch.equal(x, y) for x, y in zip(*out))


def test_bumps_version_counters():
    ps, ms, vs = make_state([(5,)], torch.float32)
    v0 = [t._version for t in (ps[0], ms[0], vs[0])]
    fused_masked_adamw_(ps, rand_grads([(5,)], torch.float32, 0), ms, vs, step=1, **HYPER)
    assert all(t._version > v for t, v in zip((ps[0], ms[0], vs[0]), v0))


def test_opcheck():
    ps, ms, vs = make_state([(13,), (4, 5), (1,)], torch.float32)
    grads = rand_grads([(13,), (4, 5), (1,)], torch.float32, 0)
    masks = [torch.rand(13) < 0.5, None, torch.tensor([True])]
    op = torch.ops.autobert.fused_masked_adamw_.default
    torch.library.opcheck(op, (ps, grads, ms, vs, masks, [1, 2, 3], 1e-2, 0.9, 0.999, 1e-8, 0.1))


def _bad_cases():
    p, g, m, v = (torch.randn(4, 3) for _ in range(4))
    k = torch.ones(4, 3, dtype=torch.bool)
    return {
        "length": (([p], [g, g], [m], [v], [k], 1), r"grads has 2 tensors but params has 1"),
        "grad shape": (([p], [g.T], [m], [v], [k], 1), r"grads\[0\] has shape"),
        "mask shape": (([p], [g], [m], [v], [k[:2]], 1), r"masks\[0\] has shape"),
        "mask dtype": (([p], [g], [m], [v], [k.float()], 1), r"masks\[0\] has dtype"),
        "dtype mix": (([p, p.clone()], [g, g.double()], [m, m.clone()], [v, v.clone()], [k, k], 1),
                      r"grads\[1\] has dtype"),
        "int params": (([p.int()], [g.int()], [m.int()], [v.int()], [k], 1), r"params\[0\] has dtype"),
        "non-contiguous": (([p.T], [g.T], [m.T], [v.T], [k.T], 1), r"params\[0\] is not contiguous"),
        "step 0": (([p], [g], [m], [v], [k], 0), r"steps\[0\] is 0"),
        "aliased": (([p, p], [g, g], [m, m.clone()], [v, v.clone()], [k, k], 1), r"params\[0\] and params\[1\]"),
        "device": (([p], [g.to("meta")], [m], [v], [k], 1), r"grads\[0\] is on meta"),
    }


@needs_C
@pytest.mark.parametrize("case", list(_bad_cases()))
def test_bad_input_raises_clear_error_in_kernel(case):
    (ps, gs, ms, vs, ks, step), pattern = _bad_cases()[case]
    if case == "device":  # the dispatcher picks the kernel by device: a meta tensor selects Meta, which has none
        pattern = r"autobert_kernels::fused_masked_adamw_: .* with Meta tensors"
    steps = [step]
    with pytest.raises(RuntimeError, match=pattern):
        torch.ops.autobert_kernels.fused_masked_adamw_(ps, gs, ms, vs, ks, steps, 1e-2, 0.9, 0.999, 1e-8, 0.1)


@pytest.mark.parametrize("case", ["length", "grad shape", "mask shape", "mask dtype", "dtype mix", "step 0"])
def test_bad_input_raises_clear_error_through_public_api(case, monkeypatch):
    (ps, gs, ms, vs, ks, step), pattern = _bad_cases()[case]
    for backend in ("cpp", "eager"):
        monkeypatch.setenv("AUTOBERT_BACKEND", backend)
        if backend == "cpp" and not autobert_ext.available():
            continue
        with pytest.raises(RuntimeError, match=pattern):
            fused_masked_adamw_(ps, gs, ms, vs, ks, step=step, **HYPER)


def test_cuda_kernel_refuses_without_eager(monkeypatch):
    """AUTOBERT_BACKEND=cuda runs the CUDA kernel where the build has one (checked against the eager
    reference on a GPU) and otherwise refuses with the reason instead of running something else."""
    monkeypatch.setenv("AUTOBERT_BACKEND", "cuda")
    if not autobert_ext.with_cuda():
        with pytest.raises(RuntimeError, match="AUTOBERT_BACKEND=cuda cannot run masked_adamw here: "
                                               ".*(without CUDA kernels|not available)"):
            backends.choose("masked_adamw", torch.device("cuda"), torch.float32)
        return
    assert backends.choose("masked_adamw", torch.device("cuda"), torch.float32) == "cuda"
    if not torch.cuda.is_available():
        return
    gen = torch.Generator().manual_seed(3)
    p, g = (torch.randn(37, generator=gen).cuda() for _ in range(2))
    keep = (torch.rand(37, generator=gen) < 0.5).cuda()
    fused = [p.clone(), torch.zeros_like(p), torch.zeros_like(p)]
    eager = [t.clone() for t in fused]
    fused_masked_adamw_([fused[0]], [g], [fused[1]], [fused[2]], [keep], step=1, **HYPER)
    monkeypatch.setenv("AUTOBERT_BACKEND", "eager")
    fused_masked_adamw_([eager[0]], [g], [eager[1]], [eager[2]], [keep], step=1, **HYPER)
    for a, b in zip(fused, eager):
        torch.testing.assert_close(a, b, **tol(torch.float32))


# ---- MaskedAdamW ---------------------------------------------------------------------------------

def _model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(13, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3))


def _train(model, opt, steps, seed, masks_for=None):
    g = torch.Generator().manual_seed(seed)
    for i in range(steps):
        x = torch.randn(5, 13, generator=g)
        opt.zero_grad()
        model(x).square().sum().backward()
        if masks_for is not None:
            opt.set_masks(masks_for(i))
        opt.step()


def _masks_for(model):
    w1, b1, w2, _ = model.parameters()
    return lambda i: {w1: rand_masks([w1.shape], 100 + i)[0], b1: torch.zeros_like(b1, dtype=torch.bool),
                      w2: None}


def test_step_count_advances_only_with_an_active_entry_and_grad():
    model = _model()
    w1, b1, w2, b2 = model.parameters()
    opt = MaskedAdamW(model.parameters(), lr=1e-2)
    _train(model, opt, 3, seed=0, masks_for=_masks_for(model))
    assert opt.state[w1]["step"].item() == 3 and opt.state[w2]["step"].item() == 3
    assert len(opt.state[b1]) == 0  # never active: no state, bits untouched
    b2.grad = None
    before = b2.detach().clone()
    opt.step()
    assert torch.equal(b2, before) and opt.state[b2]["step"].item() == 3


def test_state_dict_round_trip_continues_identically():
    model = _model()
    opt = MaskedAdamW(model.parameters(), lr=1e-2, weight_decay=0.05)
    _train(model, opt, 3, seed=0, masks_for=_masks_for(model))
    clone = copy.deepcopy(model)
    opt2 = MaskedAdamW(clone.parameters(), lr=0.5)
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
    assert opt2.param_groups[0]["lr"] == 1e-2
    _train(model, opt, 3, seed=1, masks_for=_masks_for(model))
    _train(clone, opt2, 3, seed=1, masks_for=_masks_for(clone))
    for p, q in zip(model.parameters(), clone.parameters()):
        assert torch.equal(p, q)
        for key in ("step", "exp_avg", "exp_avg_sq"):
            if opt.state[p]:
                assert torch.equal(opt.state[p][key], opt2.state[q][key])


def test_loads_torch_adamw_state_and_continues_like_it():
    model, ref = _model(), _model()
    opt_ref = torch.optim.AdamW(ref.parameters(), lr=1e-2)
    _train(ref, opt_ref, 2, seed=0)
    model.load_state_dict(ref.state_dict())
    opt = MaskedAdamW(model.parameters())
    opt.load_state_dict(copy.deepcopy(opt_ref.state_dict()))  # load_state_dict shares tensors
    _train(ref, opt_ref, 3, seed=1)
    _train(model, opt, 3, seed=1)
    for p, q in zip(ref.parameters(), model.parameters()):
        torch.testing.assert_close(q, p, **tol(torch.float32))


def test_set_masks_rejects_bad_masks():
    model = _model()
    w1 = next(model.parameters())
    opt = MaskedAdamW(model.parameters())
    with pytest.raises(ValueError, match="not a parameter"):
        opt.set_masks({torch.zeros(3): None})
    with pytest.raises(ValueError, match="bool tensor"):
        opt.set_masks({w1: torch.ones_like(w1)})
    with pytest.raises(ValueError, match="has shape"):
        opt.set_masks({w1: torch.ones(3, dtype=torch.bool)})
    with pytest.raises(ValueError, match="Invalid betas"):
        MaskedAdamW(model.parameters(), betas=(1.0, 0.9))


def test_strided_parameter_is_updated_through_a_copy():
    w = torch.randn(4, 6).T.requires_grad_()  # non-contiguous (6, 4) leaf
    assert not w.is_contiguous()
    ref, orig = w.detach().clone().requires_grad_(), w.detach().clone()
    w.grad, ref.grad = torch.ones(6, 4), torch.ones(6, 4)
    mask = rand_masks([(6, 4)], 0)[0]
    opt = MaskedAdamW([w], lr=0.1)
    opt.set_masks({w: mask})
    opt.step()
    ref_opt = torch.optim.AdamW([ref], lr=0.1)
    ref_opt.step()
    torch.testing.assert_close(w[mask], ref[mask].detach(), **tol(torch.float32))
    assert torch.equal(w[~mask], orig[~mask]) and not torch.equal(w[mask], orig[mask])
