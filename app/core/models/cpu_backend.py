"""Which CPU code path llama.cpp runs here, chosen before the first decode and recorded with every row.

llama.cpp's AMX matrix code (`ggml_backend_amx_mul_mat`) segfaults on the first decode on some
Sapphire-Rapids-class CPUs (llama.cpp issue 20824). Stillroom's own builds leave that code out
(see the Makefile); a llama.cpp built elsewhere may carry it. When the loaded build has AMX code and
the CPU has AMX, models are loaded with llama.cpp's extra buffer types off (`use_extra_bufts`), which
keeps weights out of the AMX (and repacked) buffers, so the crashing path is never entered.

Pure functions over llama.cpp's system-info string and the CPU's feature flags, so the decision can
be tested without the hardware; `current()` reads both on this machine.
"""

from __future__ import annotations

import os
import platform
import re
import sys
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

# Set to 0 or 1 to force llama.cpp's extra buffer types off or on (default: off only where AMX is at risk).
EXTRA_BUFFERS_ENV = "STILLROOM_LLAMA_EXTRA_BUFFERS"
# Written by `make setup` beside the virtual environment: the CMake flags llama.cpp was built with.
BUILD_FLAGS_FILE = ".llama-cmake-args"
# CPU flags worth reporting (Linux /proc/cpuinfo names); the rest of the list is noise for this purpose.
REPORTED_FLAGS = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "bmi2", "avx_vnni", "avx512f", "avx512bw", "avx512vl",
    "avx512_vnni", "avx512vbmi", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16", "asimd", "sve", "i8mm",
)
AMX_CPU_FLAGS = ("amx_tile", "amx_int8")
_FEATURE = re.compile(r"([A-Z0-9_]+)\s*=\s*1")


@dataclass(frozen=True)
class CpuBackend:
    """The CPU path in use: what the build carries, what the CPU offers, and the setting chosen."""

    machine: str
    cpu_model: str
    cpu_flags: tuple[str, ...]
    build_features: tuple[str, ...]
    build_flags: str | None
    amx_cpu: bool
    amx_in_build: bool
    use_extra_bufts: bool
    amx_path_avoided: bool
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (lists for tuples), as stored in a row's runtime."""
        data = asdict(self)
        data["cpu_flags"] = list(self.cpu_flags)
        data["build_features"] = list(self.build_features)
        return data

    def row_fields(self) -> dict[str, Any]:
        """The compact form each ledger row keeps under runtime.cpu_backend."""
        return {
            "isa": _best_isa(self.build_features), "build_features": " ".join(self.build_features),
            "build_flags": self.build_flags, "cpu": self.cpu_model, "cpu_flags": " ".join(self.cpu_flags),
            "use_extra_bufts": self.use_extra_bufts, "amx_path_avoided": self.amx_path_avoided,
        }

    def summary(self) -> str:
        """One line for people: the variant in use and whether the AMX path is avoided."""
        isa = _best_isa(self.build_features)
        extra = "on" if self.use_extra_bufts else "off"
        return f"llama.cpp CPU code {isa}, extra buffer types {extra}; {self.reason}"


def build_features(system_info: str) -> tuple[str, ...]:
    """The CPU features a llama.cpp build uses, from `llama_print_system_info()` ("AVX2 = 1 | ...")."""
    return tuple(dict.fromkeys(_FEATURE.findall(system_info)))


def decide(system_info: str, cpu_flags: frozenset[str], override: str | None = None, *,
           machine: str = "", cpu_model: str = "", build_flags: str | None = None) -> CpuBackend:
    """Choose whether llama.cpp may use its extra buffer types (AMX, repacked weights) on this CPU.

    Off when the build carries AMX code and the CPU has AMX; on otherwise (repacking is faster).
    `override` ("0"/"1", from STILLROOM_LLAMA_EXTRA_BUFFERS) wins, and the reason says so.
    """
    features = build_features(system_info)
    amx_in_build = any(f.startswith("AMX") for f in features)
    amx_cpu = all(flag in cpu_flags for flag in AMX_CPU_FLAGS)
    if override in ("0", "1"):
        use_extra = override == "1"
        reason = f"extra buffer types forced {'on' if use_extra else 'off'} by {EXTRA_BUFFERS_ENV}"
    elif amx_in_build and amx_cpu:
        use_extra = False
        reason = "this llama.cpp build has AMX code and the CPU has AMX: extra buffer types off to avoid its crash"
    elif amx_in_build:
        use_extra = True
        reason = "this llama.cpp build has AMX code, but the CPU has no AMX, so it is never used"
    else:
        use_extra = True
        reason = "this llama.cpp build has no AMX code"
    avoided = not (amx_in_build and amx_cpu and use_extra)
    reported = tuple(flag for flag in REPORTED_FLAGS if flag in cpu_flags)
    return CpuBackend(machine, cpu_model, reported, features, build_flags, amx_cpu, amx_in_build,
                      use_extra, avoided, reason)


def cpu_flags_and_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> tuple[frozenset[str], str]:
    """The CPU's feature flags and model name (Linux /proc/cpuinfo; empty elsewhere)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset(), platform.processor()
    flags: set[str] = set()
    model = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("flags", "Features") and not flags:
            flags = set(value.split())
        elif key in ("model name", "Model") and not model:
            model = value.strip()
    return frozenset(flags), model


def installed_build_flags() -> str | None:
    """The CMake flags `make setup` built llama.cpp with, if it left a note beside the environment."""
    try:
        return (Path(sys.prefix) / BUILD_FLAGS_FILE).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def llama_system_info() -> str:
    """llama.cpp's own summary of this build: backends and the CPU features it uses."""
    import llama_cpp

    return " ".join(llama_cpp.llama_print_system_info().decode("utf-8", errors="replace").split())


@cache
def current() -> CpuBackend:
    """The decision for this machine and the installed llama.cpp (imports llama_cpp)."""
    flags, model = cpu_flags_and_model()
    return decide(llama_system_info(), flags, os.environ.get(EXTRA_BUFFERS_ENV),
                  machine=platform.machine(), cpu_model=model, build_flags=installed_build_flags())


def _best_isa(features: tuple[str, ...]) -> str:
    for name in ("AMX_INT8", "AVX512", "AVX2", "AVX", "SSE3", "NEON", "SVE"):
        if name in features:
            return name
    return "baseline"
