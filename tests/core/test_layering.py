"""The architecture's rules, over every module under app/: the layers import only downwards
(core <- workers <- ui; cli -> core), core never imports Qt, and no app modules import each other
in a cycle. Imports inside functions count too: they run sooner or later, and a cycle hidden in a
function is still a cycle a newcomer has to untangle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "app"
QT = ("PySide6", "pyqtgraph", "shiboken6")
# What each layer must never import (a name and everything below it).
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "app.core": (*QT, "app.workers", "app.ui", "app.cli"),
    "app.workers": ("app.ui", "app.cli"),
    "app.ui": ("app.cli",),
    "app.cli": (*QT, "app.ui", "app.workers"),
}


def module_name(path: Path) -> str:
    """The dotted name of a file under the repository (a package is named by its folder)."""
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def app_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(APP.rglob("*.py"))}


def imported_names(module: str, path: Path) -> set[str]:
    """Every name `module` imports, anywhere in the file: `import a.b` gives a.b, `from a import b`
    gives a.b (a module, or a name defined in a); relative imports are resolved."""
    names: set[str] = set()
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package[:len(package) - node.level + 1], *([node.module] if node.module else [])])
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the app modules it imports: each imported name mapped to the longest app module
    that it is or lies in (`from app.core.store import Ledger` is an edge to the package
    app.core.store, `from app.core.store import db` one to the module app.core.store.db)."""

    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    return {module: {target for name in imported_names(module, path)
                     if (target := owner(name)) is not None and target != module}
            for module, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                return [*path[path.index(target):], target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (found := visit(module)):
            return found
    return None


def layer_violations(modules: dict[str, Path]) -> dict[str, list[str]]:
    offenders: dict[str, list[str]] = {}
    for module, path in modules.items():
        for layer, banned in FORBIDDEN.items():
            if module == layer or module.startswith(layer + "."):
                bad = sorted(name for name in imported_names(module, path)
                             if any(name == b or name.startswith(b + ".") for b in banned))
                if bad:
                    offenders[module] = bad
    return offenders


def test_every_layer_imports_only_what_it_may() -> None:
    modules = app_modules()
    assert {"app.core", "app.workers", "app.ui", "app.cli"} <= set(modules)
    assert layer_violations(modules) == {}


def test_no_import_cycles_between_app_modules() -> None:
    cycle = find_cycle(import_graph(app_modules()))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_checks_see_what_they_are_meant_to(tmp_path: Path) -> None:
    """The rules catch a breach: a function-level import of the CLI from a view, a cycle through
    a relative import inside a function, and Qt in core."""
    files = {
        "app/ui/view.py": "def f():\n    from app.cli.main import cli\n",
        "app/core/a.py": "from app.core.b import x\n",
        "app/core/b.py": "def g():\n    from .a import y\n",
        "app/core/c.py": "from PySide6 import QtCore\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    modules = {".".join(Path(name).with_suffix("").parts): tmp_path / name for name in files}
    assert layer_violations(modules) == {"app.ui.view": ["app.cli.main.cli"], "app.core.c": ["PySide6.QtCore"]}
    assert find_cycle(import_graph(modules)) == ["app.core.a", "app.core.b", "app.core.a"]


def test_core_and_cli_load_without_qt_torch_or_llama() -> None:
    code = ("import sys, pkgutil, importlib, app.core, app.cli.main\n"
            "for m in pkgutil.walk_packages(app.core.__path__, 'app.core.'): importlib.import_module(m.name)\n"
            "print(' '.join(sorted(n for n in ('PySide6', 'torch', 'llama_cpp', 'sentence_transformers') "
            "if n in sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""  # heavy libraries are imported on first use only
