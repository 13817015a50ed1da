"""Score the labelled public prompt sets with the audit: per-label precision/recall and macro F1 at
the prompt level, and each set as one workflow (its own pattern's level, and the highest level of
any other pattern). Skips with a message when ../shared/eval/public is absent. The sets of
eval_sets.py come first; those of eval_sets_extra.py, eval_sets_batch3.py and eval_sets_batch4.py
are marked "new", and their held-out recall is reported apart.

Each set is split in two halves with a fixed seed (eval_sets.tuning_half): the scorer's calibrated
constants were chosen on the tuning halves only, so the held-out halves are the honest number. The
prompt-level tables are printed for all prompts, the tuning halves and the held-out halves.

    python tests/bench/eval_patterns.py [--mode routed|minilm|e5]

`routed` (the default) scores each prompt as the audit does: by the model its language is routed to
(app/core/audit/routing.py); `minilm` and `e5` score every prompt with one model, for comparison.
The workflow signals use all-MiniLM-L6-v2's vectors in every mode, as the audit does.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench.eval_cache import cached_encode  # noqa: E402
from app.core.audit.levels import LEVELS, judge  # noqa: E402
from app.core.audit.patterns import load_library  # noqa: E402
from app.core.audit.scorer import C_REGULARIZATION, CUE_SCALE, HIT_THRESHOLD, KNN_K  # noqa: E402
from app.core.audit.templates import induce_grid  # noqa: E402
from app.core.audit.signals import generation_flags, template_signatures, workflow_signals  # noqa: E402
from tests.bench.eval_sets import ROOT, load_sets, tuning_half  # noqa: E402
from tests.bench.eval_sets_extra import load_extra_sets  # noqa: E402
from tests.bench.eval_sets_batch3 import load_batch3_sets  # noqa: E402
from tests.bench.eval_sets_batch4 import load_batch4_sets  # noqa: E402
from tests.bench.eval_routing import MODES, RoutedScorers  # noqa: E402

SPACING_S = 30


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", default="routed", choices=MODES)
    args = parser.parse_args()
    if not ROOT.exists():
        print(f"skipped: the public evaluation sets are not at {ROOT}")
        return 0
    library = load_library()
    scorers = RoutedScorers(library)
    encoder = scorers.encoders["minilm"]
    ids = list(scorers.pattern_ids)
    sets = load_sets()
    extra = load_extra_sets()
    extra.update(load_batch3_sets())
    extra.update(load_batch4_sets())
    sets.update(extra)
    truth: list[str] = []
    predicted: list[str] = []
    tuning: list[bool] = []
    new_set: list[bool] = []
    print(f"mode {args.mode}; library {library.version} ({library.content_hash[:12]}), hit threshold {HIT_THRESHOLD}, "
          f"cue scale {CUE_SCALE}, C {C_REGULARIZATION}, k {KNN_K}\n")
    print(f"{'set':<36} {'label':<18} {'n':>4}  own level  highest other")
    for name, (label, prompts) in sets.items():
        vectors = cached_encode(encoder, prompts)
        scores = scorers.scores(prompts, args.mode)
        gold = label if label in ids else "benign"
        tuning.extend(tuning_half(len(prompts)))
        new_set.extend([name in extra] * len(prompts))
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
        recall = np.mean([p == gold for p in predicted[-len(prompts):]])
        print(f"{name:<36} {label:<18} {len(prompts):>4}  {own:<9}  {LEVELS[worst[0]]:<6} ({worst[1]})"
              f"{'  new' if name in extra else ''}  prompt-level {'recall' if gold != 'benign' else 'benign kept'}"
              f" {recall:.2f}")
    macro = {}
    for part, keep in (("all prompts", [True] * len(truth)), ("tuning half", tuning),
                       ("held-out half", [not t for t in tuning])):
        pairs = [(t, p) for t, p, k in zip(truth, predicted, keep) if k]
        macro[part] = _table(part, [t for t, _ in pairs], [p for _, p in pairs])
    held_new = [(t, p) for t, p, k, n in zip(truth, predicted, tuning, new_set) if n and not k and t != "benign"]
    new_recall = np.mean([t == p for t, p in held_new]) if held_new else 0.0
    print(f"\nprompt-level macro F1: {macro['all prompts']:.3f} (target >= 0.8); tuning half "
          f"{macro['tuning half']:.3f}, held-out half {macro['held-out half']:.3f} (target >= 0.85)")
    print(f"recall on the new sets' pattern prompts, held-out half: {new_recall:.3f} over {len(held_new)} "
          f"prompts (target >= 0.8)")
    return 0


def per_label(truth: list[str], predicted: list[str]) -> dict[str, tuple[float, float, float]]:
    """Per-label precision, recall and F1."""
    table = {}
    for label in sorted(set(truth)):
        tp = sum(1 for t, p in zip(truth, predicted) if t == label and p == label)
        fp = sum(1 for t, p in zip(truth, predicted) if t != label and p == label)
        fn = sum(1 for t, p in zip(truth, predicted) if t == label and p != label)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        table[label] = (precision, recall, f1)
    return table


def macro_f1(truth: list[str], predicted: list[str]) -> float:
    """The mean of the per-label F1 over the labels in `truth`."""
    table = per_label(truth, predicted)
    return float(np.mean([f1 for _, _, f1 in table.values()])) if table else 0.0


def _table(title: str, truth: list[str], predicted: list[str]) -> float:
    """Print per-label precision, recall and F1; return the macro F1."""
    print(f"\n{title}: {len(truth)} prompts")
    print(f"{'label':<18} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8}")
    for label, (precision, recall, f1) in per_label(truth, predicted).items():
        print(f"{label:<18} {precision:9.3f} {recall:7.3f} {f1:6.3f} {truth.count(label):8d}")
    macro = macro_f1(truth, predicted)
    print(f"macro F1 {macro:.3f}")
    return macro


if __name__ == "__main__":
    sys.exit(main())
