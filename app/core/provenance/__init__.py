"""Provenance of a released dataset: read the dataset file, match its rows to the ledger, and
write a statement about where it came from (dataset card, Croissant, signed in-toto statement).

Qt-free. `detect_shape` / `iter_rows` read a dataset (dataset.py); the generator `match_dataset`
traces each row to the ledger as traced-exact, traced-near or untraced (match.py).
`build_statement` collects what the statement says (statement.py); `write_provenance` writes the
dataset card, the Croissant file and the signed in-toto statement (write.py, card.py,
croissant.py, signing.py); `verify_statement` checks them offline (verify.py).
"""

from app.core.provenance.dataset import (
    DatasetError,
    DatasetRow,
    DatasetShape,
    RowProblem,
    ShapeUnknownError,
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
from app.core.provenance.signing import key_fingerprint, load_or_create_key, public_key_pem
from app.core.provenance.statement import Declared, StatementError, build_statement, iter_statement
from app.core.provenance.verify import VerifyResult, verify_statement
from app.core.provenance.write import ProvenanceWriteError, iter_provenance, write_provenance

__all__ = [
    "DatasetError", "DatasetRow", "DatasetShape", "MatchCancelled", "MatchProgress", "MatchReport",
    "RowProblem", "ShapeUnknownError", "TRACED_EXACT", "TRACED_NEAR", "UNTRACED", "detect_shape", "export_untraced",
    "file_sha256", "iter_rows", "match_dataset", "run_match",
    "Declared", "ProvenanceWriteError", "StatementError", "VerifyResult", "build_statement",
    "iter_provenance", "iter_statement", "key_fingerprint", "load_or_create_key", "public_key_pem",
    "verify_statement", "write_provenance",
]
