"""The layout holds: no import cycle, the pure core imports no Azure module and does no
I/O at import, and each folder imports only the layers below it (DESIGN.md §5)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
SHARED = PROJECT / "shared"
PURE = ("shared.analysis", "shared.alerts", "shared.report")
# What each folder may import from the project (besides itself). The pure core sits at the
# bottom; adapters above it; the app's wiring above them; local tooling on top.
ALLOWED = {
    "shared.settings": set(),
    "shared.analysis": {"shared.alerts"},  # classification reads the rules (pure)
    "shared.alerts": set(),
    "shared.report": {"shared.alerts"},  # the fleet report reads the rules and states (pure)
    "shared.channels": {"shared.alerts", "shared.settings"},
    "shared.storage": {"shared.analysis", "shared.alerts", "shared.settings"},
    # The live readers (adapters): the pure parsers and the settings, nothing of the app.
    "shared.readers": {"shared.analysis", "shared.settings"},
    "shared.app": {
        "shared.analysis",
        "shared.alerts",
        "shared.channels",
        "shared.storage",
        "shared.report",
        "shared.settings",
        "shared.readers",
    },
    "shared.local": {
        "shared.analysis",
        "shared.alerts",
        "shared.channels",
        "shared.storage",
        "shared.report",
        "shared.settings",
        "shared.app",
        "function_app",  # the local runner drives the registered functions
    },
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PROJECT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    found = {module_name(p): p for p in SHARED.rglob("*.py")}
    found["function_app"] = PROJECT / "function_app.py"
    return found


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every project module ``path`` imports, at the top or inside a function (a lazy
    import is still a dependency)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                if child in modules:
                    found.add(child)
                elif node.module in modules:
                    found.add(node.module)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(path, modules) - {name} for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path (first == last), or None."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def folder(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle() -> None:
    assert find_cycle(import_graph()) is None


def test_each_folder_imports_only_the_layers_below_it() -> None:
    wrong = [
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        if module.startswith("shared.")
        for target in targets
        if folder(target) != folder(module) and folder(target) not in ALLOWED[folder(module)]
    ]
    assert wrong == []


def test_the_function_app_imports_only_the_wiring() -> None:
    assert {folder(t) for t in import_graph()["function_app"]} == {"shared.app"}


def test_the_pure_core_imports_no_azure_module_and_does_no_io() -> None:
    """In a fresh interpreter: import every pure module, then look at sys.modules and at
    the audit events (files opened other than code, sockets) the imports caused."""
    names = sorted(m for m in project_modules() if m.startswith(PURE))
    script = f"""
import json, sys
events = []
def hook(event, args):
    if event == "open":
        path = str(args[0])
        if not path.endswith((".py", ".pyc", ".so", ".pth")) and "__pycache__" not in path:
            events.append(path)
    elif event.startswith(("socket.", "subprocess.", "os.system")):
        events.append(event)
sys.addaudithook(hook)
import importlib
for name in {names!r}:
    importlib.import_module(name)
print(json.dumps({{"azure": sorted(m for m in sys.modules if m.split(".")[0] == "azure"),
                  "io": events}}))
"""
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(names) >= 10
    assert seen == {"azure": [], "io": []}
