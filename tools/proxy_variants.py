"""How well does the BIWS proxy rank backbones whose stand-alone loss is known?

    python tools/proxy_variants.py --compare CMP_DIR --run RUN_DIR [--inherit 0.5] [--child-steps 100]
        [--child-lr 1e-3] [--extra NAME=K,K,K,K:LOSS ...] [--out FILE]

Scores every model of an ``autobert compare`` folder (its comparison.json: architectures and mean
held-out losses) with RUN_DIR's warmed-up supernet under the given child settings, plus uniform conv
stacks given with ``--extra`` (kernel sizes and their stand-alone loss), and prints each proxy value
beside the stand-alone loss with Kendall tau (bootstrap CI). Candidates are scored at the run's own
sizes; the compare models' FFN widths (matched to BERT's parameters) are not used.
"""
import argparse
import dataclasses
import json
import sys
from pathlib import Path

import torch

from autobert.model.config import ArchConfig, ConvLayer
from autobert.search.config import SearchConfig
from autobert.search.rankcorr import rank_correlation
from autobert.search.runner import SUPERNET_FILE, _biws_evaluator


def _extra(spec: str) -> tuple[str, tuple[int, ...], float]:
    try:
        name, rest = spec.split("=")
        kernels, loss = rest.split(":")
        return name, tuple(int(k) for k in kernels.split(",")), float(loss)
    except ValueError:
        raise SystemExit(f"--extra {spec!r}: expected NAME=K,K,...:LOSS (e.g. conv3333=3,3,3,3:5.834)") from None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--compare", required=True, help="an autobert compare output folder")
    ap.add_argument("--run", required=True, help="a search run folder with a warmed-up supernet")
    ap.add_argument("--inherit", type=float, default=None, help="BIWSConfig.inherit (default: the run's)")
    ap.add_argument("--child-steps", type=int, default=None)
    ap.add_argument("--child-lr", type=float, default=None)
    ap.add_argument("--extra", action="append", default=[], help="NAME=K,K,...:LOSS, a uniform conv stack")
    ap.add_argument("--out", help="write the table as JSON here")
    args = ap.parse_args(argv)
    doc = json.loads((Path(args.compare) / "comparison.json").read_text())
    archs = {k: ArchConfig.from_dict(v) for k, v in doc["models_arch"].items()}
    truth = {k: v["loss"]["mean"] for k, v in doc["models"].items()}
    for name, kernels, loss in map(_extra, args.extra):
        archs[name], truth[name] = archs["bert"].replace(layers=tuple(ConvLayer(k) for k in kernels)), loss
    run = Path(args.run)
    config = SearchConfig.load(run / "config.json")
    changes = {k: v for k, v in (("inherit", args.inherit), ("child_steps", args.child_steps),
                                 ("child_lr", args.child_lr)) if v is not None}
    config = config.replace(biws=changes)
    torch.set_num_threads(1)
    evaluator = _biws_evaluator(config)
    evaluator.load(run / SUPERNET_FILE)
    proxy = {}
    for name, arch in archs.items():
        proxy[name], _ = evaluator(evaluator.base.replace(layers=arch.layers))
        print(f"{name:24s} proxy {proxy[name]:.4f}  stand-alone {truth[name]:.4f}", flush=True)
    names = sorted(proxy)
    stats = rank_correlation([proxy[n] for n in names], [truth[n] for n in names], k=3)
    print(f"Kendall tau {stats['kendall_tau']:.3f} {stats['kendall_tau_ci']}; proxy's first: {min(proxy, key=proxy.get)}")
    if args.out:
        Path(args.out).write_text(json.dumps({"run": str(run), "biws": dataclasses.asdict(config.biws),
                                              "proxy": proxy, "truth": truth, "stats": stats}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
