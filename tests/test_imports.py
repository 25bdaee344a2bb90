"""Imports run one way (records up to the CLI) and stay light: no cycles among the package's
modules, and the CLI's start-up loads none of the heavy libraries a command may need later."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import critique_synth

PACKAGE = Path(critique_synth.__file__).parent
HEAVY = ("sympy", "math_verify", "datasets", "pyarrow", "torch", "transformers", "huggingface_hub")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> list[str]:
    """The critique_synth modules a module-level `from ... import ...` loads."""
    if node.level == 0:
        base = node.module or ""
        if not base.startswith("critique_synth"):
            return []
    else:
        anchor = module.split(".") if is_package else module.split(".")[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join([*anchor, *([node.module] if node.module else [])])
    names = [f"{base}.{alias.name}" for alias in node.names]
    return [base, *names]


def import_graph() -> dict[str, set[str]]:
    """Edges of top-level imports (not those inside functions or under TYPE_CHECKING)."""
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in paths}
    for name, path in paths.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            found: list[str] = []
            for sub in ast.walk(node) if isinstance(node, (ast.If, ast.Try)) else [node]:
                if isinstance(sub, ast.ImportFrom):
                    found += _resolve(name, path.name == "__init__.py", sub)
                elif isinstance(sub, ast.Import):
                    found += [alias.name for alias in sub.names]
            graph[name] |= {target for target in found if target in paths and target != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle among the modules, parent packages aside: importing a submodule runs its package's
    __init__ first, so an edge into a package's own parent is not a cycle of its making."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if node.startswith(target + "."):
                continue
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_sees_relative_imports() -> None:
    graph = import_graph()
    assert "critique_synth.records" in graph["critique_synth.stats"]
    assert "critique_synth.errors" in graph["critique_synth.trainer.models"]
    assert "critique_synth.trainer" not in graph["critique_synth.cli"]  # imported inside commands


def _loaded_after(statement: str) -> set[str]:
    code = f"import json, sys; {statement}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {name.split(".")[0] for name in json.loads(out.stdout)}


def test_cli_start_up_loads_no_heavy_library() -> None:
    loaded = _loaded_after("import critique_synth.cli")
    assert not loaded & set(HEAVY), f"importing the CLI loads {sorted(loaded & set(HEAVY))}"


def test_package_names_load_on_use() -> None:
    loaded = _loaded_after("import critique_synth; critique_synth.export")
    assert "pyarrow" in loaded  # the check above would see a heavy import
    assert "torch" not in _loaded_after("from critique_synth import *")


def test_public_names() -> None:
    namespace: dict[str, object] = {}
    exec("from critique_synth import *", namespace)
    assert set(critique_synth.__all__) <= set(namespace)
    for name in ("train", "evaluate", "export", "audit", "push_to_hub", "generate", "agenerate"):
        assert callable(namespace[name]) and not isinstance(namespace[name], type(critique_synth)), name
    for module in ("critique_synth.audit", "critique_synth.export", "critique_synth.trainer.evaluate"):
        importlib.import_module(module)  # the module loads; the package's name stays the function
    assert critique_synth.export is namespace["export"]
    assert critique_synth.audit is namespace["audit"]
    assert critique_synth.evaluate is namespace["evaluate"]
    assert critique_synth.__version__ == importlib.import_module("critique_synth.version").__version__
