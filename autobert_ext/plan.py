"""Fused attention plans: plain data the planner (autobert.fusion) hands to the executor.

A plan is a list of steps over numbered values. Values 0, 1, 2 are q, k, v (B, H, N, d); each
step reads values and writes new ones; ``output`` is the result (B, H, N, d). Shapes are
symbolic per head: "Nd", "dN", "NN", "dd".

Step kinds:
  elementwise  program (n in -> m out) and its derivative program (x.., g.. -> dx..), one pass.
  softmax      row softmax over the last axis with a pre program (n in -> 1) and post program
               (1 -> 1), their derivatives, and ``masked`` (last axis is the sequence axis).
  matmul       values[0] @ values[1]; ``masked``: the contraction axis is the sequence axis
               (padded positions count as 0); ``cosine``: L2-normalise rows of the left and
               columns of the right first.
  transpose    a view with the last two axes swapped.
  rownorm      x / sqrt(sum(x^2, last axis) + 1e-12) — the cosine normalisation, for streaming.
  streaming    flash-style attention over (q', k', v') with a score program, its derivative and
               ``norm`` in {"softmax", "none"}; no (N, N) tensor is formed.
"""
from __future__ import annotations

import dataclasses
import functools
import json
from typing import Optional

from autobert_ext.program import Program, decode, encode

PLAN_VERSION = 1
STEP_KINDS = ("elementwise", "softmax", "matmul", "transpose", "rownorm", "streaming")


def worth_fusing(program: Program) -> bool:
    """A program of one instruction gains nothing from a fused kernel: torch's own kernel for that op
    (the eager reference) is as fast and cheaper to call."""
    return len(program.instrs) > 1


@dataclasses.dataclass(frozen=True)
class Step:
    kind: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    program: Optional[Program] = None  # elementwise fwd / softmax pre
    program_bwd: Optional[Program] = None
    post: Optional[Program] = None  # softmax post
    post_bwd: Optional[Program] = None
    masked: bool = False
    cosine: bool = False
    score: Optional[Program] = None  # streaming
    score_bwd: Optional[Program] = None
    norm: str = "softmax"

    def __post_init__(self):
        if self.kind not in STEP_KINDS:
            raise ValueError(f"unknown plan step kind {self.kind!r}; expected one of {STEP_KINDS}")


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
        return all(s.kind in ("matmul", "transpose", "rownorm")
                   or (s.kind == "elementwise" and not worth_fusing(s.program)) for s in self.steps)

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
            extra = []
            if s.masked:
                extra.append("masked")
            if s.cosine:
                extra.append("cosine")
            if s.kind == "streaming":
                extra.append(f"norm={s.norm}, score ops={len(s.score.instrs)}")
            if s.program is not None:
                extra.append(f"{len(s.program.instrs)} ops")
            ins = ", ".join(f"v{i}" for i in s.inputs)
            outs = ", ".join(f"v{o}:{self.shapes[o]}" for o in s.outputs)
            lines.append(f"  {outs} = {s.kind}({ins}) {' '.join(extra)}".rstrip())
        return "\n".join(lines)


_PROGRAM_FIELDS = ("program", "program_bwd", "post", "post_bwd", "score", "score_bwd")


def _plan_to_json(plan: Plan) -> str:
    steps = []
    for s in plan.steps:
        d = {"kind": s.kind, "inputs": list(s.inputs), "outputs": list(s.outputs), "masked": s.masked,
             "cosine": s.cosine, "norm": s.norm}
        for f in _PROGRAM_FIELDS:
            p = getattr(s, f)
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
            progs = {f: decode(*s[f]) for f in _PROGRAM_FIELDS if f in s}
            steps.append(Step(kind=s["kind"], inputs=tuple(s["inputs"]), outputs=tuple(s["outputs"]),
                              masked=bool(s["masked"]), cosine=bool(s["cosine"]), norm=s["norm"], **progs))
        return Plan(doc["kind"], int(doc["d"]), tuple(steps), tuple(doc["shapes"]), int(doc["output"]),
                    doc.get("fingerprint", ""))
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"malformed attention plan: {e}") from None
