"""GGUF metadata, the registry, chat-format choice, and every bad-model case."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.errors import ModelFileError, NotFoundError
from app.core.models.chat_format import PLAIN, TEMPLATE, choose_chat_format, render_chat
from app.core.models.gguf_info import read_gguf_info
from app.core.models.memory import check_fits, estimate_bytes
from app.core.hashing import sha256_file
from app.core.models.registry import ModelRecord, find_model, list_models, register_model
from app.core.models.runner import LoadOptions, Runner
from app.core.store import Ledger
from tests.core.gguf_files import write_corrupt_header, write_huge_sparse_gguf, write_truncated

GEMMA_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"


def test_default_model_metadata(default_model: ModelRecord) -> None:
    info = default_model.info
    assert default_model.sha256 == GEMMA_SHA256
    assert info.architecture == "gemma3"
    assert info.quantization == "Q4_K_M"
    assert info.size_label == "270M"
    assert info.license == "gemma"
    assert info.context_length == 32768
    assert not info.has_chat_template
    assert info.size_bytes == info.tensor_bytes == Path(info.path).stat().st_size
    assert info.vocab_size == 262144


def test_register_caches_the_hash(ledger: Ledger, default_model: ModelRecord, monkeypatch: pytest.MonkeyPatch) -> None:
    path = Path(default_model.info.path)
    first = register_model(ledger.db, path)
    assert first.sha256 == sha256_file(path) == GEMMA_SHA256

    def fail(_: Path) -> str:
        raise AssertionError("hashed twice")

    monkeypatch.setattr("app.core.models.registry.sha256_file", fail)
    assert register_model(ledger.db, path).sha256 == GEMMA_SHA256
    listed = list_models(ledger.db)
    assert len(listed) == 1 and listed[0]["present"] and listed[0]["quantization"] == "Q4_K_M"
    assert find_model(ledger.db, GEMMA_SHA256[:8])["name"] == "Gemma 3 270m"
    with pytest.raises(NotFoundError):
        find_model(ledger.db, "ffffffff")


def test_chat_format_choice() -> None:
    assert choose_chat_format("gemma3", False) == "gemma"
    assert choose_chat_format("gemma3", True) == TEMPLATE
    assert choose_chat_format("qwen2", False) == "chatml"
    assert choose_chat_format("mysterynet", False) == PLAIN
    assert choose_chat_format("gemma3", False, "chatml") == "chatml"
    with pytest.raises(ValueError, match="unknown chat format"):
        choose_chat_format("gemma3", False, "nonsense")


def test_gemma_rendering_keeps_the_system_prompt() -> None:
    rendered = render_chat("gemma", [{"role": "system", "content": "Answer in French."},
                                     {"role": "user", "content": "Hello"}])
    assert rendered.prompt.startswith("<start_of_turn>user\nAnswer in French.\n\nHello<end_of_turn>")
    assert rendered.prompt.endswith("<start_of_turn>model\n")
    plain = render_chat(PLAIN, [{"role": "user", "content": "Hi"}])
    assert plain.prompt.endswith("User: Hi\nAssistant:") and "\nUser:" in plain.stop


def test_not_a_gguf(tmp_path: Path) -> None:
    bad = tmp_path / "notes.gguf"
    bad.write_text("just some text, not a model\n" * 50)
    with pytest.raises(ModelFileError, match="not a GGUF model file") as info:
        read_gguf_info(bad)
    assert str(bad) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="file not found"):
        read_gguf_info(tmp_path / "absent.gguf")


@pytest.mark.parametrize("keep", [10, 3_000, 5_000_000, 253_000_000])
def test_truncated_gguf(tmp_path: Path, default_model: ModelRecord, keep: int) -> None:
    cut = write_truncated(Path(default_model.info.path), tmp_path / "cut.gguf", keep)
    with pytest.raises(ModelFileError, match="truncated") as info:
        read_gguf_info(cut)
    assert str(cut) in str(info.value)


def test_corrupt_gguf(tmp_path: Path, default_model: ModelRecord) -> None:
    broken = write_corrupt_header(Path(default_model.info.path), tmp_path / "broken.gguf")
    with pytest.raises(ModelFileError, match="corrupt|truncated") as info:
        read_gguf_info(broken)
    assert str(broken) in str(info.value)


def test_model_too_large_for_memory(tmp_path: Path) -> None:
    huge = write_huge_sparse_gguf(tmp_path / "huge.gguf", 2 * 1024**4)  # 2 TiB, sparse
    info = read_gguf_info(huge)
    assert info.tensor_bytes >= 2 * 1024**4
    assert estimate_bytes(info, 4096, 0) > 2 * 1024**4
    with pytest.raises(ModelFileError, match="too large for this machine's memory") as raised:
        Runner().load("0" * 64, info, LoadOptions())
    assert str(huge) in str(raised.value)
    # With every layer on a GPU the host no longer needs the weights.
    check_fits(info, 4096, -1, available=64 * 1024**3)


def test_fast_scan_agrees_with_the_gguf_reader(default_model: ModelRecord) -> None:
    """The header scanner reads exactly what gguf.GGUFReader reads (metadata and tensor table)."""
    from gguf import GGUFReader

    from app.core.models.gguf_scan import scan_gguf

    path = Path(default_model.info.path)
    header = scan_gguf(path)
    reader = GGUFReader(str(path))
    for key, reader_field in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        value = reader_field.contents()
        if isinstance(value, list) and len(value) > 64:
            assert header.array_lengths[key] == len(value)
        elif isinstance(value, float):
            assert header.fields[key] == pytest.approx(value)
        else:
            assert header.fields[key] == value, key
    assert [(t.name, t.offset, t.n_bytes) for t in header.tensors] == [
        (t.name, int(t.data_offset) - header.data_start, int(t.n_bytes)) for t in reader.tensors
    ]
