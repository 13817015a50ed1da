"""`stillroom` / `python -m app`: the desktop app with no arguments, the CLI with arguments."""

from __future__ import annotations

import sys


def main() -> None:
    """Entry point of the `stillroom` console script."""
    from app.core.privacy import apply_offline_env

    apply_offline_env()  # before any library that could go online is imported
    if len(sys.argv) > 1:
        from app.cli.main import cli

        cli(prog_name="stillroom")
        return
    from app.core.qt_platform import EXIT_GUI_UNAVAILABLE, gui_start_problem

    problem = gui_start_problem()  # before Qt loads its platform plugin (it would abort)
    if problem:
        print(problem, file=sys.stderr)
        sys.exit(EXIT_GUI_UNAVAILABLE)
    try:
        from app.ui.application import run_gui
    except ImportError:
        # No desktop window yet: fall back to the terminal chat.
        from app.cli.main import cli

        cli(["chat"], prog_name="stillroom")
        return
    sys.exit(run_gui())


if __name__ == "__main__":
    main()
