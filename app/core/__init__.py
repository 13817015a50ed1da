"""Qt-free domain code. Nothing under app.core may import PySide6 or pyqtgraph."""
