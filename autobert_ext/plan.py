"""Fused attention plans: plain data the planner (autobert.fusion) hands to the executor.

A plan is a list of steps over numbered values. Values 0, 1, 2 are q, k, v (B, H, N, d); each
step reads values and writes new ones; ``output`` is the result (B, H, N, d). Shapes are
symbolic per head: "Nd", "dN", "NN", "dd". The step kinds (elementwise, softmax, matmul,
transpose, rownorm, streaming) are the classes of ``autobert_ext.plan_steps``.
"""
from __future__ import annotations

import dataclasses
import functools
import json

from autobert_ext.plan_steps import STEPS, Step, worth_fusing
from autobert_ext.program import decode, encode

PLAN_VERSION = 1
STEP_KINDS = tuple(STEPS)
__all__ = ["PLAN_VERSION", "STEP_KINDS", "Plan", "Step", "plan_from_json", "worth_fusing"]


@dataclasses.dataclass(frozen=True)
class Plan:
    """An executable plan for one graph at one head dimension ``d`` (programs embed 1/sqrt(d))."""

    kind: str  # "streaming" | "general"
    d: int
    steps: tuple[Step, ...]
    shapes: tuple[str, ...]  # symbolic shape per value id
    output: int
    graph_fingerprint: str = ""

    @property
    def n_values(self) -> int:
        return len(self.shapes)

    @functools.cached_property
    def fuses_nothing(self) -> bool:
        """No step does more than one torch op would (no softmax or streaming step, no elementwise
        program that ``worth_fusing``): the plan's ops then run directly under torch autograd,
        since fused kernels and a hand-written backward could only add per-call overhead."""
        return not any(s.fuses for s in self.steps)

    @functools.cached_property
    def saved_layout(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(ids of the values a backward reads that are fresh tensors: not inputs, not views, not the
        output; the number of tensors each step saves), from the steps' own ``saves``."""
        ids = tuple(o for s in self.steps if s.saves_outputs for o in s.outputs if o != self.output)
        counts = tuple(len(s.saves([(1, 1, 1, 1)] * len(s.inputs), None)) for s in self.steps)
        return ids, counts

    def to_json(self) -> str:
        return self.json

    @functools.cached_property
    def json(self) -> str:
        """Compact JSON (computed once: the custom op takes the plan as a string on every call)."""
        return _plan_to_json(self)

    @staticmethod
    def from_json(text: str) -> "Plan":
        return plan_from_json(text)

    def describe(self) -> str:
        lines = [f"{self.kind} plan for d={self.d} ({len(self.steps)} steps, output v{self.output})"]
        for s in self.steps:
            ins = ", ".join(f"v{i}" for i in s.inputs)
            outs = ", ".join(f"v{o}:{self.shapes[o]}" for o in s.outputs)
            lines.append(f"  {outs} = {s.kind}({ins}) {s.describe()}".rstrip())
        return "\n".join(lines)


_PROGRAM_FIELDS = ("program", "program_bwd", "post", "post_bwd", "score", "score_bwd")


def _plan_to_json(plan: Plan) -> str:
    steps = []
    for s in plan.steps:
        d = {"kind": s.kind, "inputs": list(s.inputs), "outputs": list(s.outputs),
             "masked": getattr(s, "masked", False), "cosine": getattr(s, "cosine", False),
             "norm": getattr(s, "norm", "softmax")}
        for f in _PROGRAM_FIELDS:
            p = getattr(s, f, None)
            if p is not None:
                d[f] = list(encode(p))
        steps.append(d)
    return json.dumps({"version": PLAN_VERSION, "kind": plan.kind, "d": plan.d, "shapes": list(plan.shapes),
                       "output": plan.output, "fingerprint": plan.graph_fingerprint, "steps": steps},
                      separators=(",", ":"))


@functools.lru_cache(maxsize=4096)
def plan_from_json(text: str) -> Plan:
    """Decode (cached: the custom op receives the plan as a string on every call)."""
    try:
        doc = json.loads(text)
        if doc.get("version") != PLAN_VERSION:
            raise ValueError(f"plan version {doc.get('version')!r}, expected {PLAN_VERSION}")
        steps = []
        for s in doc["steps"]:
            if s["kind"] not in STEPS:
                raise ValueError(f"unknown plan step kind {s['kind']!r}; expected one of {STEP_KINDS}")
            cls = STEPS[s["kind"]]
            names = {f.name for f in dataclasses.fields(cls)}
            extra = {f: decode(*s[f]) for f in _PROGRAM_FIELDS if f in s and f in names}
            extra.update({f: cast(s[f]) for f, cast in (("masked", bool), ("cosine", bool), ("norm", str))
                          if f in names})
            steps.append(cls(tuple(s["inputs"]), tuple(s["outputs"]), **extra))
        return Plan(doc["kind"], int(doc["d"]), tuple(steps), tuple(doc["shapes"]), int(doc["output"]),
                    doc.get("fingerprint", ""))
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"malformed attention plan: {e}") from None
