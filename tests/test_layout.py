"""The house's shape, checked: imports run one way (no cycles, no layer importing a layer above it) and no
module grows past ~400 lines. Lazy imports inside functions count: they are dependencies too."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 400
# Each layer may import itself and the layers listed after it; the package root's leaves (settings, logs,
# argtypes) are open to all.
LAYERS = {"data": set(), "model": {"data"}, "chat": {"model", "data"}, "training": {"model", "data"},
          "evaluation": {"chat", "training", "model", "data"}, "api": {"chat", "model", "data"}}
LEAVES = {"assistant.settings", "assistant.logs", "assistant.argtypes", "assistant"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((ROOT / "assistant").rglob("*.py")):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    deps = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                deps.add(name)
    return deps


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYERS) else None


def test_no_import_cycles():
    graph = _graph()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                cycles.append(" -> ".join(path[path.index(dep):] + [node, dep]) if dep in path else f"{node} -> {dep}")
            elif dep not in state:
                visit(dep, path + [node])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    wrong = []
    for module, deps in graph.items():
        layer = _layer(module)
        if layer is None:
            continue  # the package root: commands and leaves
        for dep in deps:
            other = _layer(dep)
            if dep in LEAVES:
                continue
            if other is None:
                wrong.append(f"{module} imports the root command module {dep}")
            elif other != layer and other not in LAYERS[layer]:
                wrong.append(f"{module} ({layer}) imports {dep} ({other})")
    return sorted(wrong)


def test_layers_import_one_way():
    wrong = layer_violations(_graph())
    assert not wrong, "\n".join(wrong)


def test_the_layer_rule_would_see_an_upward_import():
    assert layer_violations({"assistant.data.store": {"assistant.chat.memory", "assistant.settings"},
                             "assistant.model.llm": {"assistant.cli"}}) == [
        "assistant.data.store (data) imports assistant.chat.memory (chat)",
        "assistant.model.llm imports the root command module assistant.cli"]


@pytest.mark.parametrize("folder", ["assistant", "ui"])
def test_no_module_is_too_long(folder):
    long = [f"{p.relative_to(ROOT)}: {n} lines" for p in sorted((ROOT / folder).rglob("*.py"))
            if (n := p.read_text().count("\n")) > MAX_LINES]
    assert not long, "split these by job:\n" + "\n".join(long)


def test_the_checks_would_see_a_cycle(tmp_path):
    """The cycle finder is not vacuous: two modules importing each other are caught."""
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("from assistant.x import b\n")
    b.write_text("import assistant.x.a\n")
    modules = {"assistant.x.a": a, "assistant.x.b": b}
    assert _imports(a, modules) == {"assistant.x.b"} and _imports(b, modules) == {"assistant.x.a"}
