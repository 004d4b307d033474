"""The dependency direction of DESIGN.md §1, read from the source's import statements (ast).

cli -> (search, rank, train, glue, report, hf, experiments) -> supernet -> model -> fusion -> graph;
``autobert_ext`` never imports ``autobert``; ``graph`` imports nothing above it (nor the device layer).
Imports inside functions count: a lazy import is still a dependency.
"""
from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXT = ROOT / "autobert_ext"
PKG = ROOT / "python" / "autobert"

# Higher may import lower. The middle layer is one level: its packages may import each other.
LEVEL = {"graph": 0, "data": 0, "fusion": 1, "model": 2, "supernet": 3,
         "search": 4, "rank": 4, "train": 4, "glue": 4, "report": 4, "hf": 4, "experiments": 4,
         "cli": 5, "__init__": 5}


def _module_name(path: pathlib.Path, base: pathlib.Path, prefix: str) -> str:
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([prefix, *parts])


def _imports(path: pathlib.Path, module: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path`` (relative imports resolved)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module
            # `from autobert import fusion` imports autobert.fusion: name each imported attribute too
            found += [(node.lineno, name)] + [(node.lineno, f"{name}.{a.name}") for a in node.names]
    return found


def _files(base: pathlib.Path, prefix: str):
    for path in sorted(base.rglob("*.py")):
        yield path, _module_name(path, base, prefix)


def _package(module: str) -> str:
    """autobert.<package>... -> package ('__init__' for the root module, 'cli' for autobert.cli)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _is_autobert(name: str) -> bool:
    return name == "autobert" or name.startswith("autobert.")


def test_every_package_has_a_level():
    packages = {p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    packages |= {p.stem for p in PKG.glob("*.py")}
    assert packages <= set(LEVEL), f"packages without a place in DESIGN.md §1: {sorted(packages - set(LEVEL))}"


def test_device_layer_never_imports_autobert():
    bad = [f"{path.relative_to(ROOT)}:{line} imports {name}"
           for path, module in _files(EXT, "autobert_ext") for line, name in _imports(path, module)
           if _is_autobert(name)]
    assert not bad, "autobert_ext must receive plain data, never import autobert:\n" + "\n".join(bad)


def test_graph_imports_nothing_above_it():
    bad = [f"{path.relative_to(ROOT)}:{line} imports {name}"
           for path, module in _files(PKG / "graph", "autobert.graph") for line, name in _imports(path, module)
           if (_is_autobert(name) and name != "autobert" and _package(name) != "graph")
           or name.startswith("autobert_ext")]
    assert not bad, "autobert.graph is the bottom of the stack:\n" + "\n".join(bad)


def _edges():
    for path, module in _files(PKG, "autobert"):
        src = _package(module)
        for line, name in _imports(path, module):
            if _is_autobert(name) and name != "autobert" and _package(name) != src:
                yield path, line, src, _package(name), name


def test_dependency_direction():
    bad = [f"{path.relative_to(ROOT)}:{line} ({src}) imports {name} ({dst})"
           for path, line, src, dst, name in _edges()
           if dst in LEVEL and src in LEVEL and LEVEL[dst] > LEVEL[src]
           or dst in LEVEL and src in LEVEL and LEVEL[dst] == LEVEL[src] and LEVEL[src] != 4]
    assert not bad, "imports against DESIGN.md §1's direction:\n" + "\n".join(bad)


def test_supernet_never_imports_search():
    bad = [f"{path.relative_to(ROOT)}:{line} imports {name}"
           for path, line, src, dst, name in _edges() if src == "supernet" and dst == "search"]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("source, expected", [
    ("from . import x", ["autobert.glue", "autobert.glue.x"]),
    ("from .tasks import get_config", ["autobert.glue.tasks", "autobert.glue.tasks.get_config"]),
    ("from ..graph import Graph", ["autobert.graph", "autobert.graph.Graph"]),
    ("import autobert.fusion.planner as P", ["autobert.fusion.planner"]),
    ("from autobert import fusion", ["autobert", "autobert.fusion"]),
])
def test_import_reader(tmp_path, source, expected):
    """The reader resolves relative imports (a rule it cannot see is a rule it cannot check)."""
    path = tmp_path / "loaders.py"
    path.write_text(f"def f():\n    {source}\n")
    got = sorted(name for _, name in _imports(path, "autobert.glue.loaders"))
    assert got == sorted(expected)
