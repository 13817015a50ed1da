"""What CPU a compiled library needs: finds AVX-512 and AMX instructions in its machine code.

`make package` must ship a llama.cpp that runs on any x86-64 CPU with AVX2 (the documented baseline,
see packaging/README.md). A build made with native flags on the build machine may use AVX-512 (SIGILL
on older CPUs) or AMX (the segfault of llama.cpp issue 20824); bundle.binaries() refuses those.
Reads `objdump -d` output (binutils); no compiler flags are trusted, only the instructions present.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

# Instruction sets beyond the baseline, each recognised by operands or mnemonics only it has.
BEYOND_BASELINE = {
    "AVX-512": re.compile(r"%zmm\d|%k[1-7]\b"),
    "AMX": re.compile(r"\b(tdpb[su][su]d|tdpbf16ps|tileloadd|tileloaddt1|tilestored|ldtilecfg|tilezero)\b"),
}
OBJDUMP_TIMEOUT_S = 300


class NotPortableError(RuntimeError):
    """A library uses instructions beyond the documented baseline."""


def instruction_sets(library: Path) -> set[str]:
    """Which of BEYOND_BASELINE the library's code uses (empty: AVX2 or less)."""
    objdump = shutil.which("objdump")
    if objdump is None:
        raise NotPortableError("objdump (binutils) is needed to check what CPU llama.cpp's libraries need")
    found: set[str] = set()
    with subprocess.Popen([objdump, "-d", "--no-show-raw-insn", str(library)], stdout=subprocess.PIPE,
                          text=True, errors="replace") as process:
        assert process.stdout is not None
        for line in process.stdout:
            for name, pattern in BEYOND_BASELINE.items():
                if name not in found and pattern.search(line):
                    found.add(name)
        process.wait(timeout=OBJDUMP_TIMEOUT_S)
    if process.returncode != 0:
        raise NotPortableError(f"objdump could not read {library} (exit {process.returncode})")
    return found


def check_portable(libraries: list[Path]) -> None:
    """Raise NotPortableError naming each x86-64 library that needs more than AVX2."""
    problems = [f"{lib.name}: {', '.join(sorted(sets))}" for lib in libraries
                if _is_x86_64_elf(lib) and (sets := instruction_sets(lib))]
    if problems:
        raise NotPortableError(
            "llama.cpp was built for this machine's CPU, not for any x86-64 CPU with AVX2 ("
            + "; ".join(problems) + "). Build the portable one: make llama-wheel LLAMA_BUILD=portable "
            "(make package does this), or set STILLROOM_PACKAGE_NATIVE=1 to ship a build for this CPU only.")


def _is_x86_64_elf(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            header = handle.read(20)
    except OSError:
        return False
    return header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == 0x3E
