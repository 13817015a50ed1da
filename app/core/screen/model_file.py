"""The style model on disk: `screen/style-model.npz` in the data folder.

Our own file in our own folder, still read as if it were hostile: arrays only (loaded with
allow_pickle=False) and the JSON of its metadata as bytes, with a SHA-256 over everything checked
on reading (the projection store's write_arrays / read_arrays). A file that does not check out, or
that was made with other features, is refused with a reason, never half-used.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from app.core.audit.projection import read_arrays, write_arrays
from app.core.paths import data_dir
from app.core.screen.attribution import AttributionError, FamilyMetrics, StyleModel, TrainingSet
from app.core.screen.likelihood import FEATURES_PER_FAMILY, FamilyModel, LikelihoodModel
from app.core.screen.style_features import FEATURE_DIM, FEATURE_VERSION

SCREEN_SUBDIR = "screen"
MODEL_FILE = "style-model.npz"
BASE_ARRAYS = ("coef", "intercept", "centroids", "ood_thresholds", "meta")
LIKELIHOOD_ARRAYS = ("lik_mean", "lik_scale", "lik_coef", "lik_intercept", "lik_thresholds")
ARRAYS = BASE_ARRAYS + LIKELIHOOD_ARRAYS


def default_model_path() -> Path:
    """Where the style model is kept in the data folder."""
    return data_dir() / SCREEN_SUBDIR / MODEL_FILE


def save_model(model: StyleModel, path: Path | None = None) -> Path:
    """Write `model` (atomically, owner-only); returns the path."""
    path = path or default_model_path()
    meta = json.dumps(model.as_meta(), ensure_ascii=False).encode("utf-8")
    likelihood = (model.likelihood.arrays() if model.likelihood is not None
                  else {name: np.zeros(0) for name in LIKELIHOOD_ARRAYS})
    write_arrays(path, {"coef": model.coef, "intercept": model.intercept, "centroids": model.centroids,
                        "ood_thresholds": model.ood_thresholds, "meta": np.frombuffer(meta, dtype=np.uint8),
                        **likelihood})
    return path


def _likelihood(meta: dict, arrays: dict[str, np.ndarray], families: list[str]) -> LikelihoodModel | None:
    """The likelihood model kept beside the style model, or None; ValueError/KeyError/TypeError
    when its description or arrays do not fit together."""
    saved = meta.get("likelihood")
    if not saved:
        return None
    k = len(families)
    models = [FamilyModel(str(m["family"]), str(m["sha256"]), str(m["name"]), str(m["path"])) for m in saved["models"]]
    metrics = [FamilyMetrics(str(m["family"]), int(m["examples"]), int(m["heldout"]), float(m["auc"]),
                             float(m["accuracy"])) for m in saved["metrics"]]
    width = FEATURES_PER_FAMILY * k
    if ([m.family for m in models] != families or len(metrics) != k or arrays["lik_mean"].shape != (width,)
            or arrays["lik_scale"].shape != (width,) or arrays["lik_coef"].shape not in ((1, width), (k, width))
            or arrays["lik_thresholds"].shape != (k,)):
        raise ValueError("the likelihood model's arrays do not match its families")
    return LikelihoodModel(families, models, arrays["lik_mean"].astype(np.float64), arrays["lik_scale"].astype(np.float64),
                           arrays["lik_coef"].astype(np.float64), arrays["lik_intercept"].astype(np.float64),
                           arrays["lik_thresholds"].astype(np.float64), float(saved["prob_threshold"]),
                           float(saved["accuracy"]), metrics, int(saved["rows"]))


def load_model(path: Path | None = None) -> StyleModel:
    """The saved style model; AttributionError when there is none or it does not check out."""
    path = path or default_model_path()
    if not path.is_file():
        raise AttributionError("no style model yet: train one with `stillroom screen train FILE --label-field model` "
                               "or `stillroom screen train --ledger`")
    arrays = read_arrays(path, ARRAYS)
    if arrays is None and read_arrays(path, BASE_ARRAYS) is not None:
        raise AttributionError(f"{path.name}: the saved style model was made by an earlier version of Stillroom "
                               "(no likelihood part); train it again")
    if arrays is None:
        raise AttributionError(f"{path.name}: the saved style model is damaged or incomplete; train it again")
    try:
        meta = json.loads(arrays["meta"].tobytes().decode("utf-8"))
        families = [str(f) for f in meta["families"]]
        metrics = [FamilyMetrics(str(m["family"]), int(m["examples"]), int(m["heldout"]), float(m["auc"]),
                                 float(m["accuracy"])) for m in meta["metrics"]]
        training = TrainingSet(str(meta["training_set"]["name"]), str(meta["training_set"]["sha256"]),
                               int(meta["training_set"]["rows"]))
        version = str(meta["feature_version"])
        prob_threshold, accuracy = float(meta["prob_threshold"]), float(meta["accuracy"])
        too_few = {str(k): int(v) for k, v in dict(meta.get("too_few") or {}).items()}
        likelihood = _likelihood(meta, arrays, families)
    except (ValueError, KeyError, TypeError) as exc:
        raise AttributionError(f"{path.name}: the saved style model's description cannot be read ({exc})") from exc
    k = len(families)
    shapes_ok = (arrays["coef"].shape in ((1, FEATURE_DIM), (k, FEATURE_DIM)) and arrays["centroids"].shape == (k, FEATURE_DIM)
                 and arrays["ood_thresholds"].shape == (k,) and len(metrics) == k and k >= 2)
    if version != FEATURE_VERSION or not shapes_ok:
        raise AttributionError(f"{path.name}: the saved style model was made with other features; train it again")
    return StyleModel(families, arrays["coef"].astype(np.float32), arrays["intercept"].astype(np.float64),
                      arrays["centroids"].astype(np.float32), arrays["ood_thresholds"].astype(np.float64),
                      prob_threshold, accuracy, metrics, training, too_few, str(meta.get("created_at") or ""), version,
                      likelihood, str(meta.get("likelihood_note") or ""))
