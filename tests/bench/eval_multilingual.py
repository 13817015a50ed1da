"""The audit in seven languages: per-language prompt-level F1 beside English, with prompts routed by
language as the audit routes them (app/core/audit/routing.py), and each model alone for comparison.

The multilingual set (tests/bench/eval_sets_multilingual.py): forty of the library's own prompts
translated by the project into es, de, fr, zh, ru and ar (eval/translated/library_exemplars.yaml),
which are removed from the library before the scorers are fitted, together with any translated
exemplars of theirs (resources/patterns/translations/exemplars.yaml holds translations of other
library prompts only; this script checks that), so neither the English originals nor any
translation of them is ever compared with itself; and public multilingual sets
(eval/public/SOURCES.md, ../shared/eval/public/SOURCES.md). Nothing here tunes the scorer.

Per language: macro F1 over the labels present in that language, and its ratio to English's
(target: every non-English language >= 0.8 of English). Also the language detector's accuracy on
the set, and a per-language confusion of labels for the routed audit.

    python tests/bench/eval_multilingual.py [--mode routed|minilm|e5 ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.core.audit.language import detect_language  # noqa: E402
from app.core.audit.patterns import PatternLibrary, load_library  # noqa: E402
from tests.bench.eval_routing import MODES, RoutedScorers  # noqa: E402
from tests.bench.eval_patterns import macro_f1  # noqa: E402
from tests.bench.eval_sets_multilingual import LANGUAGES, held_out_texts, load_multilingual  # noqa: E402

TARGET_RATIO = 0.8


def without(library: PatternLibrary, texts: set[str]) -> PatternLibrary:
    """The library with the prompts in `texts` removed from every pattern's exemplars and look-alikes
    (their translations go with them: multilingual_view adds only those of prompts still there)."""
    patterns = {pid: dataclasses.replace(p, exemplars=tuple(t for t in p.exemplars if t not in texts),
                                         benign_exemplars=tuple(t for t in p.benign_exemplars if t not in texts))
                for pid, p in library.patterns.items()}
    return dataclasses.replace(library, patterns=patterns)


def check_disjoint(library: PatternLibrary) -> None:
    """The library's translated exemplars must not be translations of the evaluation's prompts."""
    held = held_out_texts()
    overlap = [t.en for t in library.translations if t.en in held]
    translated = {text for t in library.translations for _, text in t.texts}
    from tests.bench.eval_sets_multilingual import translated_items
    same = [text for item in translated_items() for lang in LANGUAGES if (text := item.get(lang)) in translated]
    if overlap or same:
        raise SystemExit(f"translated exemplars overlap the evaluation set: {(overlap + same)[:3]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", action="append", choices=MODES, help="repeatable; default: all three")
    args = parser.parse_args()
    full = load_library()
    check_disjoint(full)
    library = without(full, held_out_texts())
    sets = load_multilingual()
    scorers = RoutedScorers(library)
    detected = {(lang, name): [detect_language(p) for p in prompts] for (lang, name), (_, prompts) in sets.items()}
    for language in LANGUAGES:
        found = Counter(d for (lang, _), ds in detected.items() if lang == language for d in ds)
        total = sum(found.values())
        print(f"detector {language}: {found[language]}/{total} ({found[language] / total:.3f}); "
              + ", ".join(f"{k} {v}" for k, v in found.most_common() if k != language))
    for mode in args.mode or MODES:
        start = time.perf_counter()
        results: dict[str, float] = {}
        print(f"\n== {mode}: library {full.version}, {len(full.translations)} translated exemplar items")
        print(f"{'language':<9} {'prompts':>7} {'macro F1':>9}  per label (recall)")
        for language in LANGUAGES:
            truth: list[str] = []
            predicted: list[str] = []
            confusion: Counter[tuple[str, str]] = Counter()
            for key, (label, prompts) in sets.items():
                if key[0] != language:
                    continue
                for got in scorers.labels(prompts, mode):
                    predicted.append(got)
                    truth.append(label)
                    if predicted[-1] != label:
                        confusion[(label, predicted[-1])] += 1
            results[language] = macro_f1(truth, predicted)
            recalls = ", ".join(f"{lab} {sum(1 for t, p in zip(truth, predicted) if t == p == lab)}/{truth.count(lab)}"
                                for lab in sorted(set(truth)))
            print(f"{language:<9} {len(truth):7d} {results[language]:9.3f}  {recalls}")
            if mode == "routed" and confusion:
                print(f"{'':<19}confused: " + ", ".join(f"{t}->{p} {n}" for (t, p), n in confusion.most_common(6)))
        english = results["en"]
        ratios = {lang: (f1 / english if english else 0.0) for lang, f1 in results.items() if lang != "en"}
        print("ratio to English: " + ", ".join(f"{lang} {ratio:.2f}" for lang, ratio in ratios.items())
              + f"  (target >= {TARGET_RATIO}; worst {min(ratios.values()):.2f}); {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
