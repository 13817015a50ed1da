"""The Ledger view: a lazily fetched table over the generation log, filters, details, export, verify."""
