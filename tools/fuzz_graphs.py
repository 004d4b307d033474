"""Fuzzing campaign for the attention-graph IR and its fused kernels (not part of the test run).

Graphs come from the project's own generator (``random_graph``), from chains of its mutations
(``mutate``) and from Hypothesis strategies written here: expression trees drawn over *every* op,
deep elementwise chains spliced into standard attention, inputs at extreme but finite scales,
key-padding masks with fully padded sequences, N = 1. Each graph goes through the planner and the
compiled C++ kernels (``AUTOBERT_BACKEND=cpp``), a sample also through the Triton interpreter,
forward and q/k/v gradients, and is judged by DESIGN.md §5's rule against float64 eager
(``tests/fusion/numerics.py``): error(kernel) <= 2 x error(eager float32) + floor, where eager's
float32 error is the larger of its plain run's and that of ``ROUNDING_SAMPLES`` Monte Carlo
arithmetic samples (one lucky operation order must not set the bar; the reason is in numerics.py).

Then malformed expressions and graph JSON documents (mutated valid ones, deep nesting, bad types,
cycles, truncation, bytes that are not UTF-8): each must raise ``GraphError``.

    python tools/fuzz_graphs.py --graphs 10000 --malformed 2000 --out benchmarks/results/fuzz_graphs.json

A finding is a *crash* (anything but the tolerance check failing: an exception from the planner
or a kernel, a non-finite kernel output where float32 eager is finite) or a *mismatch* (the
tolerance check failing). Draws whose float32 eager result is not finite are out of float32's
range: they are counted, not judged.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

import torch

if not torch.cuda.is_available():  # before anything defines a @triton.jit kernel
    os.environ.setdefault("TRITON_INTERPRET", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "fusion"))  # the shared tolerance rule and fused-vs-eager runner

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import seed as hypothesis_seed  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from numerics import assert_close_to_reference, random_rounding  # noqa: E402
from test_fused_attention import _run as run  # noqa: E402  (out, dq, dk, dv of fn(graph, q, k, v, mask))

from autobert.fusion import fused_attention, plan  # noqa: E402
from autobert.graph import Graph, GraphError, eager, library, mutate, parse, random_graph, validity  # noqa: E402
from autobert.graph import shapes as S  # noqa: E402
from autobert.graph.ops import BINARY_ELEMENTWISE, OPS, UNARY_ELEMENTWISE  # noqa: E402

#: Floor of the tolerance rule in float32 ulps: the value tests/fusion uses for random graphs
#: (random chains divide by near-zero values, where FMA contraction moves a kernel further from
#: float64 than eager's op-by-op rounding).
ULPS = 300.0
#: Monte Carlo arithmetic samples of float32 eager per graph (tests/fusion/numerics.py): the rule's
#: error(eager, float32) is the largest of their errors and the plain float32 eager run's.
ROUNDING_SAMPLES = 3
SIZES_N = (1, 2, 5, 13, 37)
SIZES_D = (1, 3, 7, 16)
SCALES = (1.0, 1e-3, 1e-6, 8.0, 30.0, 300.0)  # extreme but finite input magnitudes
MASKS = ("none", "random", "empty_rows", "one_real")


# ---------------------------------------------------------------- graph sources
_MATMUL_PAIRS = {S.ND: [(S.NN, S.ND), (S.ND, S.DD)], S.DN: [(S.DN, S.NN), (S.DD, S.DN)],
                 S.NN: [(S.ND, S.DN)], S.DD: [(S.DN, S.ND)]}


@st.composite
def expressions(draw, shape=S.ND, depth=0, max_depth=7):
    """An expression string of ``shape`` drawn over every op of the registry (softmax on any shape,
    cosine and matmul for every operand pair, every unary and binary elementwise op)."""
    if shape == S.ND and (depth >= max_depth or draw(st.integers(0, 5)) == 0):
        return draw(st.sampled_from(("Q", "K", "V")))
    if depth >= max_depth:  # shortest way to the shape
        return {S.DN: "transpose(K)", S.NN: "matmul(Q, transpose(K))", S.DD: "matmul(transpose(V), Q)"}[shape]
    kind = draw(st.sampled_from(("unary", "binary", "softmax", "matmul", "cosine", "transpose")))
    sub = lambda s: expressions(s, depth + 1, max_depth)  # noqa: E731
    if kind == "unary":
        return f"{draw(st.sampled_from(UNARY_ELEMENTWISE))}({draw(sub(shape))})"
    if kind == "binary":
        return f"{draw(st.sampled_from(BINARY_ELEMENTWISE))}({draw(sub(shape))}, {draw(sub(shape))})"
    if kind == "softmax":
        return f"softmax({draw(sub(shape))})"
    if kind == "transpose":
        return f"transpose({draw(sub((shape[1], shape[0])))})"
    a, b = draw(st.sampled_from(_MATMUL_PAIRS[shape]))
    return f"{kind}({draw(sub(a))}, {draw(sub(b))})"


@st.composite
def deep_chains(draw):
    """Standard attention with a long elementwise chain on one of Q, K, V, the scores or the output."""
    chain = draw(st.lists(st.sampled_from(UNARY_ELEMENTWISE), min_size=8, max_size=48))
    where = draw(st.sampled_from(("Q", "K", "V", "scores", "out")))

    def wrap(x):
        for op in chain:
            x = f"{op}({x})"
        return x
    q, k, v = (wrap(n) if where == n else n for n in ("Q", "K", "V"))
    scores = f"scale(matmul({q}, transpose({k})))"
    if where == "scores":
        scores = wrap(scores)
    out = f"matmul(softmax({scores}), {v})"
    return wrap(out) if where == "out" else out


@st.composite
def draws(draw):
    """(graph expression or None, case): None asks the loop for a project-generated graph."""
    source = draw(st.sampled_from(("random", "mutated", "every_op", "deep_chain")))
    expr = None
    if source == "every_op":
        expr = draw(expressions())
    elif source == "deep_chain":
        expr = draw(deep_chains())
    case = {"source": source, "expr": expr, "b": draw(st.integers(1, 2)), "h": draw(st.integers(1, 2)),
            "n": draw(st.sampled_from(SIZES_N)), "d": draw(st.sampled_from(SIZES_D)),
            "scale": draw(st.sampled_from(SCALES)), "mask": draw(st.sampled_from(MASKS)),
            "zeros": draw(st.booleans()), "seed": draw(st.integers(0, 2 ** 31 - 1))}
    return case


# ---------------------------------------------------------------- inputs and checks
def make_inputs(case):
    """q, k, v (B, H, N, d) float64 at the case's scale, a (B, N) mask or None, an output gradient."""
    b, h, n, d = case["b"], case["h"], case["n"], case["d"]
    gen = torch.Generator().manual_seed(case["seed"])
    qkv = [torch.randn(b, h, n, d, generator=gen, dtype=torch.float64) * case["scale"] for _ in range(3)]
    if case["zeros"]:  # exact zeros on some entries: the safe ops' branch points (sqrt, div, log, cosine)
        for t in qkv:
            t[torch.rand(t.shape, generator=gen) < 0.2] = 0.0
    mask = None
    if case["mask"] != "none":
        mask = torch.rand(b, n, generator=gen) > 0.3
        if case["mask"] == "empty_rows":
            mask[0] = False  # a sequence with no real token: every key padded
        elif case["mask"] == "one_real":
            mask[:] = False
            mask[:, 0] = True
    grad = torch.randn(b, h, n, d, generator=gen, dtype=torch.float64)
    if mask is not None:  # outputs at padded query rows are unspecified: nothing flows back from them
        grad = grad * mask[:, None, :, None]
    return qkv, mask, grad


def rounding_samples(graph, case, qkv, mask, grad) -> list:
    """ROUNDING_SAMPLES Monte Carlo arithmetic samples of float32 eager: [out, dq, dk, dv] each."""
    rounded = [t.float().double() for t in qkv]
    samples = []
    for i in range(ROUNDING_SAMPLES):
        with random_rounding(torch.float32, case["seed"] + i):
            samples.append(run(eager, graph, rounded, mask, grad.float().double(), torch.float64))
    return samples


def check(graph, case, backends):
    """None when every backend agrees with eager under the rule; else (kind, message)."""
    qkv, mask, grad = make_inputs(case)
    ref = run(eager, graph, qkv, mask, grad, torch.float64)
    same = run(eager, graph, qkv, mask, grad, torch.float32)
    if not all(torch.isfinite(t).all() for t in same):
        return ("out_of_range", "float32 eager is not finite")
    samples = rounding_samples(graph, case, qkv, mask, grad)
    plan(graph, case["d"])  # the planner on its own: a planning error is a crash, not a kernel bug
    for backend in backends:
        os.environ["AUTOBERT_BACKEND"] = backend
        got = run(fused_attention, graph, qkv, mask, grad, torch.float32)
        rows = None if mask is None else mask[:, None, :, None].expand_as(got[0])
        if not all(torch.isfinite(t).all() for t in got):
            return ("crash", f"{backend}: non-finite kernel result where float32 eager is finite")
        for i, (name, a, e, r) in enumerate(zip(("out", "dq", "dk", "dv"), got, same, ref)):
            mc = [sample[i] for sample in samples]
            if name == "out" and rows is not None:
                a, e, r, mc = a[rows], e[rows], r[rows], [m[rows] for m in mc]
            try:
                assert_close_to_reference(a, e, r, f"{backend} {name}", ulps=ULPS, rounding_samples=mc)
            except AssertionError as err:
                return ("mismatch", str(err))
    return None


def triage(case) -> dict:
    """Diagnostics of a mismatch: per output, the float64 reference's magnitude, float32 eager's and the
    kernel's errors against it, and the kernel's error when it runs in float64 itself. A kernel whose
    float64 run agrees with float64 eager to ~1e-6 of the result computes the same function; its
    float32 error then comes from rounding in an ill-conditioned graph."""
    graph = parse(case["expr"])
    qkv, mask, grad = make_inputs(case)
    ref = run(eager, graph, qkv, mask, grad, torch.float64)
    same = run(eager, graph, qkv, mask, grad, torch.float32)
    os.environ["AUTOBERT_BACKEND"] = "cpp"
    try:
        got = run(fused_attention, graph, qkv, mask, grad, torch.float32)
        got64 = run(fused_attention, graph, qkv, mask, grad, torch.float64)
    finally:
        os.environ.pop("AUTOBERT_BACKEND", None)
    samples = rounding_samples(graph, case, qkv, mask, grad)
    out = {}
    for i, (name, a, e, r, a64) in enumerate(zip(("out", "dq", "dk", "dv"), got, same, ref, got64)):
        mc = [sample[i] for sample in samples]
        if name == "out" and mask is not None:
            rows = mask[:, None, :, None].expand_as(r)
            a, e, r, a64, mc = a[rows], e[rows], r[rows], a64[rows], [m[rows] for m in mc]
        err = lambda x: (x.double() - r).abs().max().item() if r.numel() else 0.0  # noqa: E731
        out[name] = {"ref_max": r.abs().max().item() if r.numel() else 0.0, "eager32_err": err(e),
                     "rounded_eager_err": max(map(err, mc)), "kernel32_err": err(a), "kernel64_err": err(a64)}
    return out


def build_graph(case, rng: random.Random, pool: list):
    """The case's graph: parsed from its expression, or from the project's generator / mutations."""
    if case["expr"] is not None:
        return parse(case["expr"])
    if case["source"] == "random":
        g = random_graph(rng, rng.choice((4, 8, 10, 16)))
        pool.append(g)
        return g
    g = rng.choice(pool) if pool and rng.random() < 0.7 else rng.choice(list(library.values()))
    for _ in range(rng.randint(1, 3)):
        g = mutate(g, rng, max_nodes=14)
    return g


def fuzz_graphs(n_graphs: int, seed: int, triton_every: int = 100, log_every: int = 500, batch: int = 100,
                time_limit: float = float("inf"), on_batch=None) -> dict:
    """Push ``n_graphs`` graphs through planner, C++ kernels (every graph), the Triton interpreter
    (every ``triton_every``-th) and eager; a summary with every finding.

    Hypothesis draws in batches of ``batch`` (seeded by ``seed`` and the batch number); after each,
    ``on_batch(summary)`` is called and the run stops early once ``time_limit`` seconds have passed
    (the summary says so)."""
    rng = random.Random(seed)
    pool: list[Graph] = []
    stats = Counter()
    ops, sources, sizes = Counter(), Counter(), Counter()
    findings, start = [], time.perf_counter()

    def one(case):
        if stats["checked"] >= n_graphs:
            return
        index = stats["drawn"]
        stats["drawn"] += 1
        try:
            graph = build_graph(case, rng, pool)
        except GraphError:  # a Hypothesis expression the IR rejects (e.g. over MAX_NODES)
            stats["rejected_by_ir"] += 1
            return
        if case["expr"] is not None and not validity(graph).ok:
            stats["degenerate_skipped"] += 1  # the search never evaluates these; eager may be non-finite
            return
        case = {**case, "expr": graph.to_expr()}
        backends = ["cpp"] + (["triton"] if index % triton_every == 0 else [])
        try:
            result = check(graph, case, backends)
        except Exception as e:  # noqa: BLE001 — any exception is a finding
            result = ("crash", f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=4)}")
        finally:
            os.environ.pop("AUTOBERT_BACKEND", None)
        stats["checked"] += 1
        stats[f"checked_{backends[-1]}"] += 1
        sources[case["source"]] += 1
        sizes[f"n={case['n']}"] += 1
        for op, c in graph.op_counts().items():
            ops[op] += c
        stats["masked_empty_rows"] += case["mask"] == "empty_rows"
        stats["deep_chain_ops"] = max(stats["deep_chain_ops"], graph.num_ops)
        if result is not None:
            stats[result[0]] += 1
            if result[0] != "out_of_range":
                findings.append({"kind": result[0], "message": result[1][:1500], "case": case})
        if log_every and stats["checked"] % log_every == 0:
            print(f"  {stats['checked']} graphs checked, {stats['crash']} crashes, {stats['mismatch']} mismatches, "
                  f"{time.perf_counter() - start:.0f} s", flush=True)

    def summary(stopped):
        return {"graphs_checked": stats["checked"], "stopped": stopped, "drawn": stats["drawn"], "crashes": stats["crash"],
            "mismatches": stats["mismatch"], "out_of_float32_range": stats["out_of_range"],
            "degenerate_skipped": stats["degenerate_skipped"], "rejected_by_ir": stats["rejected_by_ir"],
            "triton_checked": stats["checked_triton"], "masks_with_empty_rows": stats["masked_empty_rows"],
            "largest_graph_ops": stats["deep_chain_ops"], "sources": dict(sources), "n_sizes": dict(sizes),
            "ops": dict(sorted(ops.items())), "ops_never_drawn": sorted(set(OPS) - set(ops)),
            "findings": findings[:200]}

    rounds = 0
    while stats["checked"] < n_graphs:  # skipped draws do not count: draw until n_graphs were checked
        if time.perf_counter() - start > time_limit:
            return summary("time limit")
        run_batch = hypothesis_seed(seed * 1_000_003 + rounds)(
            settings(max_examples=batch, database=None, deadline=None, suppress_health_check=list(HealthCheck),
                     phases=[Phase.generate])(given(draws())(one)))
        run_batch()
        rounds += 1
        if on_batch is not None:
            on_batch(summary("running"))
    return summary("done")


# ---------------------------------------------------------------- malformed documents
_JUNK = "(),QKVqkv _-+*/0123456789abcxyz\t\n\"'[]{}:;.\\\x00é"


def _mutated_expr(rng: random.Random, valid: str) -> str:
    kind = rng.randrange(11)
    i = rng.randrange(len(valid) + 1)
    if kind == 0:
        return valid[:i] + valid[i + 1:]
    if kind == 1:
        return valid[:i] + rng.choice(_JUNK) + valid[i:]
    if kind == 2:
        return valid[:i]  # truncated
    if kind == 3:
        op = rng.choice(list(OPS))
        return valid.replace(op, op + "x", 1) if op in valid else "frobnicate(" + valid + ")"
    if kind == 4:  # wrong arity
        return rng.choice([f"add({valid})", f"neg({valid}, Q)", f"matmul({valid})", f"softmax({valid}, {valid})",
                           "transpose()", f"{valid}()"])
    if kind == 5:  # shapes that do not fit
        return rng.choice([f"add({valid}, transpose(K))", f"matmul({valid}, {valid})", f"transpose({valid})",
                           "matmul(Q, K)", "cosine(Q, V)", "add(matmul(Q, transpose(K)), Q)"])
    if kind == 6:  # deep nesting (no recursion limit may leak out)
        depth = rng.choice((500, 5000, 50000))
        return "neg(" * depth + "Q" + ")" * depth
    if kind == 7:
        return rng.choice(["", " ", "()", "Q Q", "Q,", "neg(Q))", "((Q)", "q", "W", "neg(Q", "1", "neg(1.5)",
                           "\x00", "Q" * 10, "neg (Q)x"])
    if kind == 8:  # swap two characters
        if len(valid) < 2:
            return valid + "("
        j = rng.randrange(len(valid) - 1)
        return valid[:j] + valid[j + 1] + valid[j] + valid[j + 2:]
    if kind == 9:  # too long
        return "add(" * 1 + "Q, " + "neg(" * 0 + "V" * 1_100_000 + ")"
    return valid.replace("Q", rng.choice(["K", "V", "Q1", "", "QK"]), 1) + rng.choice(["", ")", ","])


def _mutated_json(rng: random.Random, g: Graph):
    doc = g.to_dict()
    nodes = doc["nodes"]
    kind = rng.randrange(14)
    i = rng.randrange(len(nodes))
    if kind == 0:
        doc.pop(rng.choice(["nodes", "output", "schema_version"]))
    elif kind == 1:
        doc["schema_version"] = rng.choice([0, 2, "1", None, 1.5, True])
    elif kind == 2:
        doc["nodes"] = rng.choice(["Q", 3, None, {}, [1, 2], [None]])
    elif kind == 3:
        nodes[i]["args"] = [rng.choice([-1, len(nodes), i, 10 ** 9, "0", None, 1.5, True])] + nodes[i]["args"][1:]
    elif kind == 4:
        nodes[i]["op"] = rng.choice(["nope", "", None, 3, "Softmax", "matmul ", ["neg"]])
    elif kind == 5:
        nodes[i]["args"] = nodes[i]["args"] + [0]
    elif kind == 6:
        doc["output"] = rng.choice([-1, len(nodes), "0", None, 2.0, True, 10 ** 30])
    elif kind == 7:
        nodes[i]["extra"] = 1
    elif kind == 8:
        doc["extra"] = []
    elif kind == 9:  # a cycle: a node reading a later node (or itself)
        j = rng.randrange(i, len(nodes))
        nodes[i]["args"] = [j] * max(1, len(nodes[i]["args"]))
    elif kind == 10:
        text = json.dumps(doc)
        return text[:rng.randrange(len(text))]  # truncated text
    elif kind == 11:
        return rng.choice([b"\xff\xfe\x00garbage", bytes(rng.randrange(256) for _ in range(40)), b"",
                           "[" * 100000 + "]" * 100000, "NaN", "[]", "null", '{"nodes": [], "output": 0, '
                           '"schema_version": 1}', "{" + '"a":' * 3 + "1" + "}" * 3])
    elif kind == 12:
        doc["nodes"] = nodes * 200  # far over the node limit
    else:
        del nodes[i]["args"]
    return doc if rng.random() < 0.5 else json.dumps(doc)


def fuzz_malformed(n_docs: int, seed: int) -> dict:
    """``n_docs`` malformed expressions and JSON documents (half each) that must raise GraphError."""
    rng = random.Random(seed)
    valid = list(library.values()) + [random_graph(rng, 10) for _ in range(50)]
    stats, findings = Counter(), []
    tries = 0
    while stats["graph_error"] + stats["crash"] + stats["silent"] < n_docs and tries < 50 * n_docs:
        tries += 1
        g = rng.choice(valid)
        as_json = tries % 2 == 0
        doc = _mutated_json(rng, g) if as_json else _mutated_expr(rng, g.to_expr())
        try:
            Graph.from_json(doc) if as_json else parse(doc)
        except GraphError as e:
            if not str(e):
                stats["silent"] += 1
                findings.append({"kind": "empty message", "json": as_json, "doc": repr(doc)[:300]})
            else:
                stats["graph_error"] += 1
                stats["graph_error_json" if as_json else "graph_error_expr"] += 1
            continue
        except Exception as e:  # noqa: BLE001 — the finding this fuzzer hunts
            stats["crash"] += 1
            findings.append({"kind": f"{type(e).__name__}", "message": str(e)[:300], "json": as_json,
                             "doc": repr(doc)[:300]})
            continue
        stats["still_valid"] += 1  # the mutation happened to give a valid graph: not malformed
    return {"malformed": stats["graph_error"] + stats["crash"] + stats["silent"],
            "graph_errors": stats["graph_error"], "json_docs": stats["graph_error_json"],
            "expressions": stats["graph_error_expr"], "other_exceptions": stats["crash"],
            "empty_messages": stats["silent"], "mutants_still_valid": stats["still_valid"],
            "findings": findings[:200]}


def merge(paths: list, out: str, with_triage: bool = False) -> dict:
    """Sum the counts of shard result files (run with different seeds) into one results file;
    ``with_triage`` re-runs each mismatch in float64 (see ``triage``)."""
    docs = [json.loads(Path(p).read_text()) for p in paths]
    merged = {"shards": [{k: d[k] for k in ("seed", "command", "wall_s", "cpu_s", "load_average")} for d in docs],
              "ulps_floor": docs[0]["ulps_floor"], "torch": docs[0]["torch"], "cpus": docs[0]["cpus"],
              "wall_s": max(d["wall_s"] for d in docs), "cpu_s": sum(d["cpu_s"] for d in docs)}
    for part in ("graphs", "malformed"):
        total: dict = {}
        for d in docs:
            for k, v in d[part].items():
                if isinstance(v, bool) or k == "stopped":
                    total.setdefault(k, []).append(v)
                elif isinstance(v, (int, float)):
                    total[k] = max(total.get(k, 0), v) if k == "largest_graph_ops" else total.get(k, 0) + v
                elif isinstance(v, dict):
                    sub = total.setdefault(k, {})
                    for kk, vv in v.items():
                        sub[kk] = sub.get(kk, 0) + vv
                elif isinstance(v, list):
                    total.setdefault(k, []).extend(v)
        for f in total.get("findings", []) if part == "graphs" and with_triage else []:
            if f["kind"] == "mismatch":
                f["triage"] = triage(f["case"])
        if "ops_never_drawn" in total:
            total["ops_never_drawn"] = sorted(set(OPS) - set(total.get("ops", {})))
        merged[part] = total
    Path(out).write_text(json.dumps(merged, indent=1, sort_keys=True))
    return merged


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--graphs", type=int, default=10_000)
    p.add_argument("--malformed", type=int, default=2_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--triton-every", type=int, default=100, help="every k-th graph also runs on Triton")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=100, help="graphs per Hypothesis batch (results written after each)")
    p.add_argument("--time-limit", type=float, default=float("inf"), help="stop drawing graphs after this many s")
    p.add_argument("--out", help="results JSON (rewritten after every batch)")
    p.add_argument("--merge", nargs="+", metavar="SHARD_JSON", help="only merge these shard results into --out")
    p.add_argument("--triage", action="store_true", help="with --merge: re-run every mismatch in float64")
    args = p.parse_args(argv)
    if args.merge:
        m = merge(args.merge, args.out, args.triage)
        print(f"merged {len(args.merge)} shards: {m['graphs'].get('graphs_checked', 0)} graphs, "
              f"{m['malformed'].get('malformed', 0)} malformed documents")
        return 0
    torch.set_num_threads(args.threads)
    wall0, cpu0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    malformed = fuzz_malformed(args.malformed, args.seed)
    print(f"malformed: {malformed['graph_errors']} GraphError, {malformed['other_exceptions']} other exceptions",
          flush=True)

    def record(graphs):
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        result = {"seed": args.seed, "ulps_floor": ULPS, "torch": torch.__version__, "machine": platform.machine(),
                  "cpus": os.cpu_count(), "load_average": os.getloadavg(), "command": " ".join(sys.argv),
                  "wall_s": time.perf_counter() - wall0,
                  "cpu_s": (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime),
                  "graphs": graphs, "malformed": malformed}
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(args.out + ".tmp")
            tmp.write_text(json.dumps(result, indent=1, sort_keys=True))
            tmp.replace(args.out)
        return result

    graphs = fuzz_graphs(args.graphs, args.seed, args.triton_every, batch=args.batch, time_limit=args.time_limit,
                         on_batch=record)
    result = record(graphs)
    print(f"graphs: {graphs['graphs_checked']} checked ({graphs['triton_checked']} also on Triton), "
          f"{graphs['crashes']} crashes, {graphs['mismatches']} mismatches, "
          f"{graphs['out_of_float32_range']} out of float32 range; wall {result['wall_s']:.0f} s, "
          f"CPU {result['cpu_s']:.0f} s ({graphs['stopped']})")
    bad = graphs["crashes"] + graphs["mismatches"] + malformed["other_exceptions"] + malformed["empty_messages"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
