"""Score the labelled public prompt sets with the audit: per-label precision/recall and macro F1 at
the prompt level, and each set as one workflow (its own pattern's level, and the highest level of
any other pattern). Skips with a message when ../shared/eval/public is absent.

Each set is split in two halves with a fixed seed (eval_sets.tuning_half): the scorer's calibrated
constants were chosen on the tuning halves only, so the held-out halves are the honest number. The
prompt-level tables are printed for all prompts, the tuning halves and the held-out halves.

    python tests/bench/eval_patterns.py
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.core.audit.embeddings import Encoder  # noqa: E402
from app.core.audit.levels import LEVELS, judge  # noqa: E402
from app.core.audit.patterns import load_library  # noqa: E402
from app.core.audit.scorer import C_REGULARIZATION, CUE_SCALE, HIT_THRESHOLD, KNN_K, Scorer  # noqa: E402
from app.core.audit.templates import induce_grid
from app.core.audit.signals import generation_flags, template_signatures, workflow_signals  # noqa: E402
from tests.bench.eval_sets import ROOT, load_sets, tuning_half  # noqa: E402

SPACING_S = 30


def fit(encoder: Encoder) -> Scorer:
    library = load_library()
    texts = sorted({t for p in library.patterns.values() for t in (*p.exemplars, *p.benign_exemplars)})
    return Scorer.fit(library, dict(zip(texts, encoder.encode(texts))))


def main() -> int:
    if not ROOT.exists():
        print(f"skipped: the public evaluation sets are not at {ROOT}")
        return 0
    encoder = Encoder()
    scorer = fit(encoder)
    library = scorer.library
    ids = list(scorer.pattern_ids)
    sets = load_sets()
    truth: list[str] = []
    predicted: list[str] = []
    tuning: list[bool] = []
    print(f"library {library.version} ({library.content_hash[:12]}), hit threshold {HIT_THRESHOLD}, "
          f"cue scale {CUE_SCALE}, C {C_REGULARIZATION}, k {KNN_K}\n")
    print(f"{'set':<36} {'label':<18} {'n':>4}  own level  highest other")
    for name, (label, prompts) in sets.items():
        vectors = encoder.encode(prompts)
        scores, _ = scorer.score(vectors, prompts, [{} for _ in prompts], with_evidence=False)
        gold = label if label in ids else "benign"
        tuning.extend(tuning_half(len(prompts)))
        for row in scores:
            best = int(np.argmax(row))
            truth.append(gold)
            predicted.append(ids[best] if row[best] >= HIT_THRESHOLD else "benign")
        start = datetime(2026, 3, 1, tzinfo=timezone.utc)
        times = [(start + timedelta(seconds=i * SPACING_S)).isoformat() for i in range(len(prompts))]
        rows = [{"prompt": p, "response": ""} for p in prompts]
        flags = [generation_flags(library, r, p, {}) for r, p in zip(rows, prompts)]
        signatures = [template_signatures(p) for p in prompts]
        signals = workflow_signals(times, flags, [s[0] for s in signatures], [s[1] for s in signatures],
                                   [s[2] for s in signatures], vectors, induce_grid(prompts))
        verdicts = {pid: judge(library.patterns[pid], scores[:, i], list(range(len(prompts))), signals, {})
                    for i, pid in enumerate(ids)}
        own = verdicts[label].level if label in verdicts else "-"
        others = [(LEVELS.index(v.level), pid) for pid, v in verdicts.items() if pid != label]
        worst = max(others)
        print(f"{name:<36} {label:<18} {len(prompts):>4}  {own:<9}  {LEVELS[worst[0]]} ({worst[1]})")
    macro = {}
    for part, keep in (("all prompts", [True] * len(truth)), ("tuning half", tuning),
                       ("held-out half", [not t for t in tuning])):
        pairs = [(t, p) for t, p, k in zip(truth, predicted, keep) if k]
        macro[part] = _table(part, [t for t, _ in pairs], [p for _, p in pairs])
    print(f"\nprompt-level macro F1: {macro['all prompts']:.3f} (target >= 0.8); tuning half "
          f"{macro['tuning half']:.3f}, held-out half {macro['held-out half']:.3f}")
    return 0


def _table(title: str, truth: list[str], predicted: list[str]) -> float:
    """Print per-label precision, recall and F1; return the macro F1."""
    print(f"\n{title}: {len(truth)} prompts")
    print(f"{'label':<18} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8}")
    f1s = []
    for label in sorted(set(truth)):
        tp = sum(1 for t, p in zip(truth, predicted) if t == label and p == label)
        fp = sum(1 for t, p in zip(truth, predicted) if t != label and p == label)
        fn = sum(1 for t, p in zip(truth, predicted) if t == label and p != label)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        f1s.append(f1)
        print(f"{label:<18} {precision:9.3f} {recall:7.3f} {f1:6.3f} {truth.count(label):8d}")
    print(f"macro F1 {np.mean(f1s):.3f}")
    return float(np.mean(f1s))


if __name__ == "__main__":
    sys.exit(main())
