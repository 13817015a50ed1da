"""The Provenance view: from a dataset file to its dataset card, Croissant file and signed statement."""

from app.ui.provenance.provenance_view import ProvenanceView

__all__ = ["ProvenanceView"]
