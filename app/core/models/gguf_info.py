"""Read and check a GGUF file's metadata with the `gguf` package, without loading the weights."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from app.core.errors import ModelFileError

GGUF_MAGIC = b"GGUF"
MIN_HEADER_BYTES = 24
# Metadata keys copied into the models table; tokenizer vocabularies are left out (megabytes).
_SKIPPED_PREFIXES = ("tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type",
                     "tokenizer.ggml.merges", "tokenizer.ggml.added_tokens")
_MAX_VALUE_CHARS = 4_000


@dataclass(frozen=True)
class GGUFInfo:
    """What Stillroom knows about a GGUF file before loading it."""

    path: str
    file_name: str
    size_bytes: int
    name: str
    architecture: str
    quantization: str | None
    size_label: str | None
    license: str | None
    base_model: str | None
    context_length: int | None
    chat_template: str | None
    metadata: dict[str, Any] = field(default_factory=dict)
    tensor_bytes: int = 0
    block_count: int | None = None
    embedding_length: int | None = None
    head_count_kv: int | None = None
    key_length: int | None = None
    value_length: int | None = None
    vocab_size: int | None = None

    @property
    def has_chat_template(self) -> bool:
        """True when the file carries its own chat template."""
        return bool(self.chat_template)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict, for JSON output."""
        data = asdict(self)
        data["has_chat_template"] = self.has_chat_template
        return data


def _check_file(path: Path) -> int:
    if not path.exists():
        raise ModelFileError(f"{path}: file not found")
    if not path.is_file():
        raise ModelFileError(f"{path}: not a file")
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(MIN_HEADER_BYTES)
    if head[:4] != GGUF_MAGIC:
        raise ModelFileError(f"{path}: not a GGUF model file (it does not start with the GGUF magic bytes)")
    if len(head) < MIN_HEADER_BYTES:
        raise ModelFileError(f"{path}: truncated GGUF file ({size} bytes, the header alone needs {MIN_HEADER_BYTES})")
    return size


def _field_value(reader_field: Any) -> Any:
    try:
        value = reader_field.contents()
    except Exception:  # noqa: BLE001 - an unreadable field is skipped, not fatal
        return None
    if isinstance(value, str) and len(value) > _MAX_VALUE_CHARS:
        return value[:_MAX_VALUE_CHARS] + "…"
    if isinstance(value, list) and len(value) > 64:
        return value[:64]
    return value


def _quantization_name(file_type: Any) -> str | None:
    if file_type is None:
        return None
    from gguf.constants import LlamaFileType

    try:
        return LlamaFileType(int(file_type)).name.removeprefix("MOSTLY_")
    except ValueError:
        return f"file_type {file_type}"


def read_gguf_info(path: Path | str) -> GGUFInfo:
    """Parse `path`'s GGUF header; ModelFileError naming the file if it is not a usable GGUF."""
    path = Path(path).expanduser()
    size = _check_file(path)
    from gguf import GGUFReader  # imported here: pulls in numpy

    try:
        reader = GGUFReader(str(path))
    except Exception as exc:  # noqa: BLE001 - the gguf reader raises many kinds on bad input
        raise ModelFileError(f"{path}: corrupt or truncated GGUF file ({type(exc).__name__}: {exc})") from exc
    try:
        data_end = max((t.data_offset + int(t.n_bytes) for t in reader.tensors), default=0)
    except Exception as exc:  # noqa: BLE001
        raise ModelFileError(f"{path}: corrupt GGUF tensor table ({exc})") from exc
    if not reader.tensors:
        raise ModelFileError(f"{path}: the GGUF file holds no tensors, so it is not a model")
    if data_end > size:
        raise ModelFileError(
            f"{path}: truncated GGUF file: its tensors need {data_end:,} bytes but the file has {size:,}"
        )
    meta: dict[str, Any] = {}
    for key, reader_field in reader.fields.items():
        if key.startswith(_SKIPPED_PREFIXES):
            continue
        meta[key] = _field_value(reader_field)
    arch = str(meta.get("general.architecture") or "unknown")
    base_name = meta.get("general.base_model.0.name") or meta.get("general.base_model.0.repo_url")

    def arch_int(suffix: str) -> int | None:
        value = meta.get(f"{arch}.{suffix}")
        return int(value) if isinstance(value, (int, float)) else None

    template = meta.get("tokenizer.chat_template")
    embeddings = next((t for t in reader.tensors if t.name == "token_embd.weight"), None)
    vocab_size = int(max(embeddings.shape)) if embeddings is not None and len(embeddings.shape) else None
    return GGUFInfo(
        path=str(path.resolve()),
        file_name=path.name,
        size_bytes=size,
        name=str(meta.get("general.name") or path.stem),
        architecture=arch,
        quantization=_quantization_name(meta.get("general.file_type")),
        size_label=meta.get("general.size_label"),
        license=meta.get("general.license"),
        base_model=str(base_name) if base_name else None,
        context_length=arch_int("context_length"),
        chat_template=template if isinstance(template, str) and template.strip() else None,
        metadata=meta,
        tensor_bytes=data_end,
        block_count=arch_int("block_count"),
        embedding_length=arch_int("embedding_length"),
        head_count_kv=arch_int("attention.head_count_kv"),
        key_length=arch_int("attention.key_length"),
        value_length=arch_int("attention.value_length"),
        vocab_size=vocab_size,
    )
