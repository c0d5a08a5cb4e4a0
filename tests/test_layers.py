"""The package layering: modules import downward only, read from their module-level imports, and no module
imports itself back through others. Imports inside functions are allowed only for optional heavy dependencies, so
the module-level graph is the real one."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "interprior"

# Lowest first. A module may import its own layer's packages and those below; sibling packages of one layer
# (models/algos) may use each other only downward within the layer's own order.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "files", "schema", "rotations", "config", "distributed", "report"),
    ("assets",),
    ("data",),
    ("sim",),
    ("viz",),
    ("mdp",),
    ("envs",),
    ("models",),
    ("algos",),
    ("train",),
    ("eval",),
    ("steer", "deploy"),
    ("commands",),
    ("cli",),
)
RANK = {name: i for i, group in enumerate(LAYERS) for name in group}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _top_level_imports(path: Path) -> list[str]:
    """Dotted interprior modules imported at module level (outside functions, classes and TYPE_CHECKING)."""
    out: list[str] = []
    body = list(ast.parse(path.read_text()).body)
    while body:
        node = body.pop(0)
        if isinstance(node, ast.If) and not _is_type_checking(node):
            body[:0] = node.body + node.orelse
        elif isinstance(node, ast.Try):
            body[:0] = node.body + node.orelse + node.finalbody
        elif isinstance(node, ast.Import):
            out += [a.name for a in node.names if a.name.startswith("interprior")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("interprior"):
            for alias in node.names:  # `from interprior.mdp import goals` names a submodule
                sub = f"{node.module}.{alias.name}"
                out.append(sub if _exists(sub) else node.module)
    return out


def _exists(module: str) -> bool:
    rel = Path(*module.split(".")[1:])
    return (SRC / rel).with_suffix(".py").is_file() or (SRC / rel / "__init__.py").is_file()


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "interprior"


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): set(_top_level_imports(p)) for p in sorted(SRC.rglob("*.py"))}


def test_every_package_has_a_layer():
    packages = {_layer(m) for m in _graph()} - {"interprior"}
    assert packages <= set(RANK), f"packages without a layer: {sorted(packages - set(RANK))}"


def test_imports_run_downward():
    upward = []
    for module, imports in _graph().items():
        here = _layer(module)
        if here == "interprior":
            continue
        for target in imports:
            there = _layer(target)
            if there != "interprior" and RANK[there] > RANK[here]:
                upward.append(f"{module} -> {target}")
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_no_import_cycle():
    graph = _graph()
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                return path + [module, target]
            if target in graph and state.get(target) is None:
                cycle = visit(target, path + [module])
                if cycle:
                    return cycle
        state[module] = 2
        return None

    for module in sorted(graph):
        if state.get(module) is None:
            cycle = visit(module, [])
            assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_checker_sees_imports(tmp_path):
    """The parser itself: a module-level `from interprior.x import y` counts, one inside a function does not."""
    f = tmp_path / "m.py"
    f.write_text("from interprior.mdp import goals\nimport interprior.sim.batched\n"
                 "def f():\n    from interprior.train import expert\n")
    assert _top_level_imports(f) == ["interprior.mdp.goals", "interprior.sim.batched"]


# Modules that may be imported inside functions: they pull in optional heavy dependencies (warp, GL, viser).
LAZY = ("interprior.sim.mujoco_warp", "interprior.viz.render", "interprior.steer.page")


def test_imports_at_the_top():
    hidden = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for inner in ast.walk(node):
                if (isinstance(inner, ast.ImportFrom) and inner.module and inner.module.startswith("interprior")
                        and inner.module not in LAZY):
                    hidden.append(f"{path.relative_to(SRC)}:{inner.lineno} {inner.module}")
    assert not hidden, "imports inside functions (move them to the top):\n" + "\n".join(sorted(set(hidden)))


def test_files_and_functions_stay_small():
    """No source file over 500 lines, no function over 80: a newcomer finds the room for a change in minutes."""
    big = []
    for path in sorted(SRC.rglob("*.py")):
        text = path.read_text()
        if text.count("\n") > 500:
            big.append(f"{path.relative_to(SRC)}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 80:
                big.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name}: {node.end_lineno - node.lineno + 1}")
    assert not big, "\n".join(big)
