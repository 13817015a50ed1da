"""Qt adapters: run core generators and the model on threads, re-emit what they yield as signals."""

from app.workers.pyside_fixes import install as _install_pyside_fixes

_install_pyside_fixes()
