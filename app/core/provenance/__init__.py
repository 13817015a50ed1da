"""Provenance of a released dataset: read the dataset file, match its rows to the ledger, and
write a statement about where it came from (dataset card, Croissant, signed in-toto statement).

Qt-free. `detect_shape` / `iter_rows` read a dataset (dataset.py); the generator `match_dataset`
traces each row to the ledger as traced-exact, traced-near or untraced (match.py).
"""

from app.core.provenance.dataset import (
    DatasetError,
    DatasetRow,
    DatasetShape,
    RowProblem,
    detect_shape,
    file_sha256,
    iter_rows,
)
from app.core.provenance.match import (
    TRACED_EXACT,
    TRACED_NEAR,
    UNTRACED,
    MatchCancelled,
    MatchProgress,
    MatchReport,
    export_untraced,
    match_dataset,
    run_match,
)

__all__ = [
    "DatasetError", "DatasetRow", "DatasetShape", "MatchCancelled", "MatchProgress", "MatchReport",
    "RowProblem", "TRACED_EXACT", "TRACED_NEAR", "UNTRACED", "detect_shape", "export_untraced",
    "file_sha256", "iter_rows", "match_dataset", "run_match",
]
