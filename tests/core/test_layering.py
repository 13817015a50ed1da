"""The architecture's rules: app/core never imports Qt, and the CLI never imports the GUI."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
QT = ("PySide6", "pyqtgraph", "shiboken6")


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_core_never_imports_qt() -> None:
    offenders = {str(path.relative_to(REPO)): sorted(n for n in imported_modules(path) if n.split(".")[0] in QT)
                 for path in (REPO / "app" / "core").rglob("*.py")}
    assert not {k: v for k, v in offenders.items() if v}


def test_core_and_cli_load_without_qt_torch_or_llama() -> None:
    code = ("import sys, pkgutil, importlib, app.core, app.cli.main\n"
            "for m in pkgutil.walk_packages(app.core.__path__, 'app.core.'): importlib.import_module(m.name)\n"
            "print(' '.join(sorted(n for n in ('PySide6', 'torch', 'llama_cpp', 'sentence_transformers') "
            "if n in sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""  # heavy libraries are imported on first use only
