"""The ``autobert`` command. Each subcommand parses its arguments here and calls the library."""
from __future__ import annotations

import argparse
import json
import sys


def _graph_show(args) -> int:
    from autobert.graph import GraphError, parse
    from autobert.graph.describe import describe, format_description
    from autobert.graph.library import library
    try:
        graph = library[args.expr] if args.expr in library else parse(args.expr)
    except GraphError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    info = describe(graph, n=args.n, d=args.d, seed=args.seed)
    print(json.dumps(info, indent=2) if args.json else format_description(info))
    return 0


def _graph_list(args) -> int:
    from autobert.graph.library import library
    width = max(map(len, library))
    for name, g in library.items():
        print(f"{name:<{width}}  {g.fingerprint()}  {g.to_expr()}")
    return 0


def _info(args) -> int:
    import torch

    import autobert
    import autobert_ext
    print(f"autobert {autobert.__version__}, torch {torch.__version__}")
    if autobert_ext.available():
        from autobert_ext._loader import get_C
        print(f"compiled extension: yes (CUDA kernels: {autobert_ext.with_cuda()}); {get_C().build_info()}")
    else:
        print(f"compiled extension: no ({autobert_ext.load_error()}); eager fallback in use")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="autobert", description="Evolve BERT backbones from primitive math ops.")
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("graph", help="inspect attention graphs").add_subparsers(dest="graph_command", required=True)
    show = g.add_parser("show", help="parse, validate and summarise an attention graph")
    show.add_argument("expr", help="an expression such as 'matmul(softmax(scale(matmul(Q, transpose(K)))), V)' "
                                   "or a library name such as 'standard'")
    show.add_argument("--n", type=int, default=128, help="sequence length for FLOPs and the sample run")
    show.add_argument("--d", type=int, default=64, help="head dimension for FLOPs and the sample run")
    show.add_argument("--seed", type=int, default=0, help="seed of the random sample inputs")
    show.add_argument("--json", action="store_true", help="print the summary as JSON")
    show.set_defaults(func=_graph_show)
    g.add_parser("list", help="list the graph library").set_defaults(func=_graph_list)
    sub.add_parser("info", help="show versions and which kernels are built").set_defaults(func=_info)
    from autobert.train.cli import add_commands as add_train_commands  # pretrain, finetune, glue
    add_train_commands(sub)
    from autobert.search.cli import add_commands as add_search_commands  # search, rankcorr, report
    add_search_commands(sub)
    from autobert.rank.cli import add_commands as add_rank_commands  # rank nas-bench-bert, bench-search
    add_rank_commands(sub)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
