"""A screened file's prompts as a layer on the audit map: the same regions (the library's
exemplars) and the same PCA projection as the Audit view when it has fitted one, with the file's
rows placed by its transform. When no projection was fitted yet, PCA is fitted on the exemplars
alone, for this map only (nothing is saved). At most MAP_POINTS rows are drawn (an even sample).
"""

from __future__ import annotations

from collections.abc import Generator

import numpy as np
from sqlite_utils import Database

from app.core.audit.embeddings import Encoder, embed_missing, load_vectors, text_key
from app.core.audit.map_data import MapData
from app.core.audit.patterns import PatternLibrary
from app.core.audit.projection import FittedProjection, PcaModel, ProjectionStore
from app.core.audit.run import embedding_stage
from app.core.cancel import NEVER, CancelToken
from app.core.progress import Progress
from app.core.screen.run import ScreenResult

MAP_POINTS = 20_000
METHOD = "pca"


def screen_map(db: Database, encoder: Encoder, library: PatternLibrary, store: ProjectionStore, result: ScreenResult,
               cancel: CancelToken = NEVER) -> Generator[Progress, None, MapData | None]:
    """The map of the library's regions with the file's rows as points (workflow = the file's name,
    model = the row's attribution); yields Progress, returns MapData (None if cancelled)."""
    ids = library.pattern_ids
    texts = [t for pid in ids for t in library.patterns[pid].exemplars]
    patterns = [pid for pid in ids for _ in library.patterns[pid].exemplars]
    yield from embedding_stage("map", embed_missing(db, encoder, texts, cancel))
    if cancel.cancelled:
        return None
    exemplar_vectors = load_vectors(db, [text_key(t) for t in texts], encoder.name)
    projection = store.get(library.content_hash, METHOD)
    if projection is None or projection.model is None:
        projection = FittedProjection(METHOD, PcaModel.fit(exemplar_vectors))
    n = result.screened
    pick = np.arange(n) if n <= MAP_POINTS else np.linspace(0, n - 1, MAP_POINTS).astype(np.int64)
    yield Progress("placing", 0, len(pick))
    points = projection.transform(result.vectors[pick])
    scores = result.scores[pick].astype(np.float32)
    top = scores.argmax(axis=1) if len(pick) else np.zeros(0, dtype=int)
    levels = {v.id: v.level for v in result.verdicts}
    attributions = result.attributions or ["unknown"] * n
    return MapData(
        generation_ids=[int(result.rows[i]) + 1 for i in pick], workflows=[result.file_name] * len(pick),
        top_patterns=[ids[t] for t in top], top_scores=scores[np.arange(len(pick)), top].astype(np.float64),
        excerpts=[result.excerpts[i] for i in pick], points=points,
        exemplar_points=projection.transform(exemplar_vectors), exemplar_patterns=patterns,
        pattern_names={pid: library.patterns[pid].name for pid in ids},
        models=[attributions[i] for i in pick], started=np.zeros(len(pick)), scores=scores,
        levels=[levels.get(ids[t], "none") for t in top], method=METHOD)
