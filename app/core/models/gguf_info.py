"""Read and check a GGUF file's metadata (see gguf_scan), without loading the weights."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from app.core.errors import ModelFileError
from app.core.models.gguf_scan import GGUFScanError, scan_gguf

GGUF_MAGIC = b"GGUF"
MIN_HEADER_BYTES = 24
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


def _quantization_name(file_type: Any) -> str | None:
    if file_type is None:
        return None
    from gguf.constants import LlamaFileType

    try:
        return LlamaFileType(int(file_type)).name.removeprefix("MOSTLY_")
    except ValueError:
        return f"file_type {file_type}"


def read_gguf_info(path: Path | str) -> GGUFInfo:
    """Scan `path`'s GGUF header; ModelFileError naming the file if it is not a usable GGUF."""
    path = Path(path).expanduser()
    size = _check_file(path)
    try:
        header = scan_gguf(path)
    except GGUFScanError as exc:
        raise ModelFileError(f"{path}: corrupt or truncated GGUF file ({exc})") from exc
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc
    if not header.tensors:
        raise ModelFileError(f"{path}: the GGUF file holds no tensors, so it is not a model")
    if header.data_end > size:
        raise ModelFileError(
            f"{path}: truncated GGUF file: its tensors need {header.data_end:,} bytes but the file has {size:,}"
        )
    meta = {key: _shorten(value) for key, value in header.fields.items() if value is not None}
    arch = str(meta.get("general.architecture") or "unknown")
    base_name = meta.get("general.base_model.0.name") or meta.get("general.base_model.0.repo_url")

    def arch_int(suffix: str) -> int | None:
        value = meta.get(f"{arch}.{suffix}")
        return int(value) if isinstance(value, (int, float)) else None

    template = header.fields.get("tokenizer.chat_template")
    vocab = header.array_lengths.get("tokenizer.ggml.tokens") or arch_int("vocab_size")
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
        tensor_bytes=header.data_end,
        block_count=arch_int("block_count"),
        embedding_length=arch_int("embedding_length"),
        head_count_kv=arch_int("attention.head_count_kv"),
        key_length=arch_int("attention.key_length"),
        value_length=arch_int("attention.value_length"),
        vocab_size=vocab,
    )


def _shorten(value: Any) -> Any:
    """Keep metadata values small enough for the models table."""
    if isinstance(value, str) and len(value) > _MAX_VALUE_CHARS:
        return value[:_MAX_VALUE_CHARS] + "…"
    return value
