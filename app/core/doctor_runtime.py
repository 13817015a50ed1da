"""The doctor's checks of the runtime: the CPU path llama.cpp takes, a real generation in a child
process, and whether Qt's platform plugin can load.

Qt-free; used by app/core/doctor.py. The generation runs in a child (app/core/generation_probe.py)
so that a crash in llama.cpp is reported with its signal and fix instead of killing the doctor.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from app.core.doctor_check import FAIL, INFO, OK, WARN, Check
from app.core.generation_probe import PROBE_TIMEOUT_S, ProbeOutcome, run_probe
from app.core.models.cpu_backend import EXTRA_BUFFERS_ENV
from app.core.qt_platform import check_qt_platform, install_commands

REBUILD_WITHOUT_AMX = (f"rebuild llama.cpp without AMX: make clean-venv setup, or set {EXTRA_BUFFERS_ENV}=0 "
                       "(keeps weights out of llama.cpp's AMX and repacked buffers)")
REBUILD_FOR_THIS_CPU = ("this llama.cpp was compiled for another CPU (it uses instructions this one lacks): "
                        "rebuild it here with make clean-venv setup; a packaged app must use the portable "
                        "build (make package does)")


def cpu_path_check() -> Check:
    """The CPU's features, the llama.cpp code it runs (build features, extra buffer types) and
    whether the AMX path that crashes on some CPUs is avoided."""
    from app.core.models import cpu_backend

    try:
        backend = cpu_backend.current()
    except (ImportError, OSError, AttributeError) as exc:
        return Check("CPU path", INFO, f"not known: llama.cpp cannot be loaded ({exc})")
    cpu = backend.cpu_model or backend.machine or "this CPU"
    flags = " ".join(backend.cpu_flags) or "no flags reported"
    amx = ("AMX path avoided" if backend.amx_path_avoided else "AMX path NOT avoided")
    detail = (f"{cpu} ({flags}); {backend.summary()}; {amx}"
              + (f"; built with {backend.build_flags}" if backend.build_flags else ""))
    if not backend.amx_path_avoided:
        return Check("CPU path", FAIL, detail, f"unset {EXTRA_BUFFERS_ENV} (or set it to 0), or "
                     + REBUILD_WITHOUT_AMX, backend.as_dict())
    status = WARN if backend.amx_cpu and backend.amx_in_build else OK
    fix = REBUILD_WITHOUT_AMX if status == WARN else None
    return Check("CPU path", status, detail, fix, backend.as_dict())


def generation_check(folder: Path, command: list[str] | None = None,
                     timeout: float = PROBE_TIMEOUT_S) -> Check:
    """Generate a few tokens with the default model in a child process (`command` replaces the
    probe's own command). Blocks for the child's run: about 2 to 5 s here."""
    from app.core.models.default_model import assembled_default_model

    model = assembled_default_model(folder) if command is None else None
    outcome = run_probe(command, model=model, timeout=timeout)
    data = {"command": outcome.command, "returncode": outcome.returncode, "signal": outcome.signal_name,
            "seconds": round(outcome.seconds, 2), "timed_out": outcome.timed_out, "result": outcome.result}
    if outcome.ok:
        result = outcome.result
        rate = f", {result['tokens_per_s']:.1f} tokens/s" if result.get("tokens_per_s") else ""
        return Check("Generation", OK, f"the default model generated {result.get('completion_tokens')} tokens "
                     f"in a child process ({outcome.seconds:.1f} s in all{rate}): {result.get('text', '')!r}",
                     data=data)
    return Check("Generation", FAIL, _failure_detail(outcome), _failure_fix(outcome), data)


def _failure_detail(outcome: ProbeOutcome) -> str:
    tail = outcome.stderr_tail.splitlines()[-1] if outcome.stderr_tail else ""
    said = f" (last words: {tail})" if tail else ""
    if outcome.timed_out:
        return f"a generation of a few tokens did not finish in {outcome.seconds:.0f} s{said}"
    if outcome.signal_name:
        return (f"a generation of a few tokens crashed: the process was killed by {outcome.signal_name}"
                f"{said}; every generation on this machine would crash the same way")
    if outcome.returncode == 0:
        error = outcome.result.get("error") or "no result was printed"
        return f"a generation of a few tokens failed: {error}"
    return f"a generation of a few tokens failed with exit status {outcome.returncode}{said}"


def _failure_fix(outcome: ProbeOutcome) -> str:
    if outcome.signal_name == "SIGILL":
        return REBUILD_FOR_THIS_CPU
    if outcome.signal_name:
        return REBUILD_WITHOUT_AMX
    if outcome.timed_out:
        return "check the load on this machine (other jobs) and try `stillroom generate --max-tokens 4 'Hello'`"
    return "run `stillroom generate --max-tokens 4 'Hello'` to see the whole error"


def desktop_check(env: Mapping[str, str] | None = None) -> Check:
    """Whether the window can open: PySide6, a display, and Qt's platform plugin with every system
    library it needs (the same check that runs before the window starts)."""
    import os

    env = os.environ if env is None else env
    found = check_qt_platform(env)
    data = found.as_dict()
    if found.problem == "no-pyside":
        return Check("Desktop", WARN, "PySide6 is not installed; only the command line works",
                     "pip install PySide6-Essentials", data)
    if found.problem == "no-display":
        # Say now what the window would lack once there is a display.
        later = check_qt_platform({**env, "DISPLAY": env.get("DISPLAY") or ":0", "QT_QPA_PLATFORM": "xcb"})
        data["xcb_missing"] = list(later.missing)
        if later.problem == "missing-libraries":
            return Check("Desktop", WARN, "no display here, and Qt's X11 plugin also lacks "
                         f"{', '.join(later.missing)}", "; ".join(install_commands(list(later.debian),
                                                                                   list(later.fedora)))
                         or later.message, data)
        return Check("Desktop", INFO, found.message.split(". ")[0] + "; the command line works",
                     "run it from a desktop session, or under xvfb-run", data)
    if found.problem == "missing-libraries":
        fix = " ".join(line.strip() for line in found.message.splitlines()[1:])
        return Check("Desktop", FAIL, f"Qt's {found.platform} platform plugin cannot load: missing "
                     f"{', '.join(found.missing)}; the window will not open", fix, data)
    if found.problem:
        return Check("Desktop", FAIL, found.message, found.message, data)
    return Check("Desktop", OK, found.message + (f" (checked with {found.method})" if found.method else ""),
                 data=data)
