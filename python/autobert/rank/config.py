"""``RankConfig``: the settings of one ``autobert rank`` run, saved as ``config.json`` in its folder."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, Optional

from autobert.rank.construction import CONSTRUCTIONS


def _check(cond: bool, field: str, expected: str, value: Any) -> None:
    if not cond:
        raise ValueError(f"RankConfig.{field} must be {expected}, got {value!r}")


def _is_int(value: Any, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


@dataclasses.dataclass(frozen=True)
class RankConfig:
    construction: str = "as-trained"       # which model an encoding stands for (see autobert.rank.construction)
    limit: Optional[int] = None            # only the first N benchmark entries (None: all)
    batch_size: int = 16                   # sequences in the probe batch
    seq_len: int = 64                      # tokens per sequence, [CLS] and [SEP] included
    seed: int = 0                          # model initialisation, batch draw and masking
    mask_prob: float = 0.15                # MLM masking rate of the probe batch
    sample_tokens: int = 256               # token rows the activation / Jacobian proxies compare
    pca_eta: float = 0.99                  # variance fraction of W-PCA
    proxies: Optional[tuple[str, ...]] = None  # proxy names (None: every registered proxy)
    ndcg_k: int = 10                       # k of NDCG@k
    top_fraction: float = 0.1              # precision in the top fraction
    n_boot: int = 1000                     # bootstrap resamples for the CIs (0: no CIs)
    anchor: str = "depth_params"           # the label-free rule every proxy is compared with (paired bootstrap)

    def __post_init__(self):
        _check(self.construction in CONSTRUCTIONS, "construction", f"one of {sorted(CONSTRUCTIONS)}",
               self.construction)
        _check(self.limit is None or _is_int(self.limit, 2), "limit", "None or an int >= 2", self.limit)
        for name, minimum in (("batch_size", 2), ("seq_len", 3), ("seed", 0), ("sample_tokens", 2), ("ndcg_k", 1),
                              ("n_boot", 0)):
            _check(_is_int(getattr(self, name), minimum), name, f"an int >= {minimum}", getattr(self, name))
        for name in ("mask_prob", "pca_eta", "top_fraction"):
            value = getattr(self, name)
            _check(isinstance(value, (int, float)) and 0 < value <= 1, name, "a number in (0, 1]", value)
        if self.proxies is not None:
            _check(not isinstance(self.proxies, str) and len(self.proxies) > 0 and
                   all(isinstance(p, str) for p in self.proxies), "proxies", "None or a list of names", self.proxies)
            object.__setattr__(self, "proxies", tuple(self.proxies))
        _check(isinstance(self.anchor, str), "anchor", "a proxy name", self.anchor)

    def probe_key(self) -> str:
        """Hash of the settings a proxy value depends on (cached values are reused only under the same key)."""
        fields = ("batch_size", "seq_len", "seed", "mask_prob", "sample_tokens", "pca_eta")
        text = json.dumps({f: getattr(self, f) for f in fields}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        doc = dataclasses.asdict(self)
        doc["proxies"] = None if self.proxies is None else list(self.proxies)
        return doc

    @classmethod
    def from_dict(cls, doc: Any) -> "RankConfig":
        if not isinstance(doc, dict):
            raise ValueError(f"RankConfig must be a JSON object, got {type(doc).__name__}")
        unknown = set(doc) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"RankConfig: unknown fields {sorted(unknown)}")
        return cls(**doc)
