"""The only package that opens SQLite: the ledger database, its migrations and its hash chain."""

from app.core.store.db import open_db
from app.core.store.ledger import Ledger, VerifyResult

__all__ = ["open_db", "Ledger", "VerifyResult"]
