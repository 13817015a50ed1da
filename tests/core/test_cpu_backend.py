"""The CPU path decision (extra buffer types off where llama.cpp's AMX code would run) and its record."""

from __future__ import annotations

from pathlib import Path

from app.core.models import cpu_backend
from app.core.models.cpu_backend import decide

# llama_print_system_info() of a native build on a Sapphire Rapids CPU, and of Stillroom's builds.
AMX_BUILD = ("CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | AVX512 = 1 | "
             "AVX512_VBMI = 1 | AVX512_VNNI = 1 | AVX512_BF16 = 1 | AMX_INT8 = 1 | LLAMAFILE = 1 | OPENMP = 1 | "
             "REPACK = 1 |")
NO_AMX_BUILD = "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | REPACK = 1 |"
SAPPHIRE_RAPIDS = frozenset("sse4_2 avx avx2 fma f16c avx512f avx512_vnni avx512_bf16 amx_tile amx_int8 amx_bf16".split())
ZEN4 = frozenset("sse4_2 avx avx2 fma f16c avx512f avx512_vnni avx512_bf16".split())


def test_amx_build_on_amx_cpu_turns_extra_buffers_off() -> None:
    chosen = decide(AMX_BUILD, SAPPHIRE_RAPIDS)
    assert chosen.amx_in_build and chosen.amx_cpu
    assert chosen.use_extra_bufts is False and chosen.amx_path_avoided
    assert "AMX" in chosen.reason and "off" in chosen.summary()


def test_builds_without_amx_or_cpus_without_amx_keep_repacking() -> None:
    for system_info, flags in ((NO_AMX_BUILD, SAPPHIRE_RAPIDS), (AMX_BUILD, ZEN4), (NO_AMX_BUILD, ZEN4)):
        chosen = decide(system_info, flags)
        assert chosen.use_extra_bufts is True and chosen.amx_path_avoided, (system_info, sorted(flags))


def test_override_is_obeyed_and_an_unsafe_one_is_reported() -> None:
    forced_on = decide(AMX_BUILD, SAPPHIRE_RAPIDS, "1")
    assert forced_on.use_extra_bufts and not forced_on.amx_path_avoided
    assert cpu_backend.EXTRA_BUFFERS_ENV in forced_on.reason
    assert decide(NO_AMX_BUILD, ZEN4, "0").use_extra_bufts is False


def test_build_features_parse_llama_system_info() -> None:
    assert cpu_backend.build_features(NO_AMX_BUILD) == ("SSE3", "SSSE3", "AVX", "AVX2", "F16C", "FMA", "BMI2", "REPACK")
    assert decide(AMX_BUILD, ZEN4).row_fields()["isa"] == "AMX_INT8"
    assert decide(NO_AMX_BUILD, ZEN4).row_fields()["isa"] == "AVX2"


def test_cpuinfo_is_read_for_flags_and_model(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8488C\n"
                    "flags\t\t: fpu sse4_2 avx2 amx_tile amx_int8 amx_bf16\n\nprocessor\t: 1\n"
                    "flags\t\t: fpu\n", encoding="utf-8")
    flags, model = cpu_backend.cpu_flags_and_model(info)
    assert "amx_int8" in flags and "Xeon" in model
    assert cpu_backend.cpu_flags_and_model(tmp_path / "missing")[0] == frozenset()


def test_this_machine_never_runs_the_amx_path() -> None:
    here = cpu_backend.current()
    assert here.amx_path_avoided, here
    assert here.build_features, "llama.cpp reported no CPU features"
