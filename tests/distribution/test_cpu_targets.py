"""The package ships a llama.cpp that any x86-64 CPU with AVX2 runs: the check reads machine code.

Libraries compiled here with gcc for AVX2, AVX-512 and AMX show that the check tells them apart;
then the check is run on the llama.cpp the package would bundle.
"""

from __future__ import annotations

import importlib.util
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(platform.machine() != "x86_64" or not shutil.which("gcc") or not shutil.which("objdump"),
                                reason="needs an x86-64 machine with gcc and objdump")

KERNEL = """
#include <immintrin.h>
void scale(float *x, int n) { for (int i = 0; i < n; i++) x[i] = x[i] * 3.0f + 1.0f; }
"""
AMX_KERNEL = """
#include <immintrin.h>
void tile(void *a, void *b, void *c) {
    _tile_loadd(1, a, 64); _tile_loadd(2, b, 64); _tile_dpbssd(0, 1, 2); _tile_stored(0, c, 64);
}
"""


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / "packaging" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules.setdefault(name, module)  # bundle.py imports cpu_targets by name: one module, one error class
    return module


@pytest.fixture(scope="module")
def cpu_targets() -> ModuleType:
    return _load("cpu_targets")


def _compile(tmp: Path, name: str, source: str, *flags: str) -> Path:
    c_file, lib = tmp / f"{name}.c", tmp / f"lib{name}.so"
    c_file.write_text(source, encoding="utf-8")
    subprocess.run(["gcc", "-O3", "-shared", "-fPIC", *flags, "-o", str(lib), str(c_file)], check=True,
                   capture_output=True)
    return lib


def test_avx2_code_passes_avx512_and_amx_code_are_named(cpu_targets: ModuleType, tmp_path: Path) -> None:
    avx2 = _compile(tmp_path, "avx2", KERNEL, "-mavx2", "-mfma")
    avx512 = _compile(tmp_path, "avx512", KERNEL, "-mavx512f", "-mprefer-vector-width=512")
    amx = _compile(tmp_path, "amx", AMX_KERNEL, "-mamx-tile", "-mamx-int8")
    assert cpu_targets.instruction_sets(avx2) == set()
    assert cpu_targets.instruction_sets(avx512) == {"AVX-512"}
    assert "AMX" in cpu_targets.instruction_sets(amx)
    cpu_targets.check_portable([avx2])
    with pytest.raises(cpu_targets.NotPortableError, match=r"libavx512\.so: AVX-512.*LLAMA_BUILD=portable"):
        cpu_targets.check_portable([avx2, avx512])


def test_bundle_refuses_a_llama_cpp_built_beyond_the_baseline(cpu_targets: ModuleType,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """What `make package` would bundle from this environment: accepted only if it needs AVX2 at most."""
    bundle = _load("bundle")
    libs = sorted({Path(source).resolve() for source, _ in bundle.binaries(check_portable=False)})
    beyond = {lib.name: sets for lib in libs if (sets := cpu_targets.instruction_sets(lib))}
    monkeypatch.delenv(bundle.NATIVE_PACKAGE_ENV, raising=False)
    if beyond:
        with pytest.raises(cpu_targets.NotPortableError, match="built for this machine's CPU"):
            bundle.binaries()
        monkeypatch.setenv(bundle.NATIVE_PACKAGE_ENV, "1")
    assert bundle.binaries()


def test_the_portable_build_needs_avx2_at_most(cpu_targets: ModuleType, tmp_path: Path) -> None:
    """The wheel `make package` installs before bundling (LLAMA_BUILD=portable), read library by library."""
    import zipfile

    folder = Path(subprocess.run(["make", "-s", "--no-print-directory", "llama-wheel-dir", "LLAMA_BUILD=portable"],
                                 cwd=REPO, capture_output=True, text=True, check=True).stdout.strip())
    wheels = sorted(folder.glob("llama_cpp_python-*.whl"))
    if not wheels:
        pytest.skip("the portable llama.cpp wheel is not built here yet (make llama-wheel LLAMA_BUILD=portable)")
    with zipfile.ZipFile(wheels[-1]) as wheel:
        names = [n for n in wheel.namelist() if n.startswith("llama_cpp/lib/") and ".so" in n]
        wheel.extractall(tmp_path, names)
    libs = [tmp_path / n for n in names]
    assert any(lib.name.startswith("libggml-cpu") for lib in libs), names
    cpu_targets.check_portable(libs)
