"""Screening a large dataset file: the whole screen's rows/s against bare encoding of the same
prompts (the screen should be bound by embedding: ratio >= 0.9), the style attribution of every
response alone (target < 30 s for 100,000), and peak memory (target < 2 GB).

Bare encoding is timed twice: with the screen's own encoder (its default back end) and with
sentence-transformers on PyTorch. The screen includes the likelihood part: the two bundled models
are registered and stand for the style model's two families, so each screen scores
likelihood.SCREEN_ROWS sampled responses under both (a fixed cost; the likelihood model's weights
here are fitted on made-up numbers, since only the time is measured).

The file is made from the public evaluation prompts (../shared/eval/public), cycled with a row
number so no two prompts are the same; each row's response is another public prompt. The style
model is trained on two public sets (labelled by their source). Measured side by side in one run:
bare encoding first (the model warm-up is excluded from both), then the screen.

    python tests/bench/bench_screen.py [--rows 100000] [--screen-rows N]

The attribution part runs first (its peak memory is read before the embedding model loads); the
whole screen can run at a smaller size where embedding 100,000 prompts twice takes too long.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.core.audit.embeddings import EMBED_CHUNK, Encoder  # noqa: E402
from app.core.audit.patterns import load_library  # noqa: E402
from app.core.progress import drive  # noqa: E402
from app.core.screen.attribution import TrainingSet, train_style_model  # noqa: E402
from app.core.screen.likelihood import SCREEN_ROWS, family_models, train_likelihood  # noqa: E402
from app.core.screen.run import screen_file  # noqa: E402
from app.core.store import Ledger  # noqa: E402
from tests.core.style_corpus import MT_BENCH, SELF_INSTRUCT, WIZARDLM, _jsonl  # noqa: E402


def public_texts() -> tuple[list[str], list[str]]:
    """(texts, source labels) of three public prompt sets."""
    texts, labels = [], []
    for name, path, key in (("wizardlm", WIZARDLM, "Instruction"), ("self-instruct", SELF_INSTRUCT, "instruction")):
        for row in _jsonl(path):
            texts.append(row[key])
            labels.append(name)
    texts += [row["turns"][0] for row in _jsonl(MT_BENCH)]
    labels += ["mt-bench"] * 80
    return texts, labels


def with_likelihood(texts: list[str], ledger: Ledger):  # noqa: ANN201
    """A style model of two families, the two bundled models (registered in the bench's ledger), with
    a likelihood part; the public texts stand for their answers and the likelihood weights come from
    made-up numbers (only the cost is measured)."""
    import numpy as np

    from app.core.models.bundled import BUNDLED, register_bundled_model
    from app.core.screen.training import family_name

    records = [register_bundled_model(ledger.db, bundled) for bundled in BUNDLED if bundled.alias in ("default", "chat")]
    families = sorted(family_name(record.info.name) for record in records)
    found = family_models(ledger.db, families)
    model = train_style_model(texts, [families[i % 2] for i in range(len(texts))],
                              TrainingSet("public prompt sets", "0" * 64, len(texts)))
    rng = np.random.default_rng(0)
    y = np.array([0, 1] * 60)
    features = rng.normal(-2.0, 0.5, (120, 4)) + np.where(y[:, None] == 0, [1, 0, -1, 0], [-1, 0, 1, 0])
    model.likelihood = train_likelihood(features, y, families, [found[f] for f in families], {}, 0)
    return model


def likelihood_cost(model, ledger: Ledger, prompts: list[str], responses: list[str]):  # noqa: ANN001, ANN201
    """Seconds the likelihood part alone takes on SCREEN_ROWS (prompt, response) pairs (a generator
    for drive())."""
    from app.core.screen.likelihood import likelihood_features

    started = time.perf_counter()
    yield from likelihood_features(ledger.db, model.likelihood.models, list(zip(prompts, responses))[:SCREEN_ROWS])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000, help="responses attributed (features + prediction)")
    parser.add_argument("--screen-rows", type=int, default=None,
                        help="rows of the whole screen and of bare encoding (default: --rows)")
    parser.add_argument("--torch-rows", type=int, default=None,
                        help="rows of bare sentence-transformers (PyTorch) encoding, a rate (default: --screen-rows)")
    args = parser.parse_args()
    screen_rows = args.screen_rows or args.rows
    folder = Path(tempfile.mkdtemp(prefix="stillroom-bench-screen-"))
    texts, labels = public_texts()
    model = train_style_model(texts, labels, TrainingSet("public prompt sets", "0" * 64, len(texts)))
    model.predict(texts[:100])  # warm-up
    responses = [texts[(i * 7 + 3) % len(texts)] + f" ({i})" for i in range(args.rows)]
    started, cpu = time.perf_counter(), time.process_time()
    labels_out = model.predict(responses).labels()
    attribution, attribution_cpu = time.perf_counter() - started, time.process_time() - cpu
    attribution_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert len(labels_out) == args.rows
    print(f"attribution rows: {args.rows:,}")
    print(f"attribution features + prediction alone: {attribution:.1f} s wall, {attribution_cpu:.1f} s of CPU "
          f"(one thread; target < 30 s at 100,000)")
    print(f"peak RSS after attribution: {attribution_peak_mb:.0f} MB (target < 2048 MB)")
    if screen_rows <= 0:
        return
    path = folder / "big.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for i in range(screen_rows):
            handle.write(json.dumps({"prompt": f"{texts[i % len(texts)]} (item {i})",
                                     "response": texts[(i * 7 + 3) % len(texts)]}) + "\n")
    prompts = [f"{texts[i % len(texts)]} (item {i})" for i in range(screen_rows)]
    encoder, library = Encoder(), load_library()
    ledger = Ledger.open(folder / "ledger.db")
    model = with_likelihood(texts, ledger)
    encoder.encode(prompts[:256])  # warm-up: load the model, first batches
    small = folder / "small.jsonl"
    small.write_text("".join(json.dumps({"prompt": p, "response": r}) + "\n"
                             for p, r in zip(prompts[:200], responses)), encoding="utf-8")
    drive(screen_file(small, ledger.db, encoder, library, model))  # fits and caches the scorer
    started = time.perf_counter()
    for start in range(0, len(prompts), EMBED_CHUNK):
        encoder.encode(prompts[start:start + EMBED_CHUNK])
    bare = time.perf_counter() - started
    started = time.perf_counter()
    result = drive(screen_file(path, ledger.db, encoder, library, model))
    screen = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the PyTorch encoder loads
    assert result is not None and result.screened == screen_rows
    likelihood_part = drive(likelihood_cost(model, ledger, prompts, responses))
    torch_encoder = Encoder(backend="pytorch")
    torch_encoder.encode(prompts[:256])
    started = time.perf_counter()
    torch_prompts = prompts[:args.torch_rows or screen_rows]
    for start in range(0, len(torch_prompts), EMBED_CHUNK):
        torch_encoder.encode(torch_prompts[start:start + EMBED_CHUNK])
    bare_torch = (time.perf_counter() - started) * screen_rows / len(torch_prompts)

    print(f"screen rows: {screen_rows:,}")
    print(f"bare encode, the screen's encoder ({encoder.backend}): {bare:.1f} s ({screen_rows / bare:.0f} rows/s)")
    print(f"bare encode, sentence-transformers on PyTorch: {screen_rows / bare_torch:.0f} rows/s on "
          f"{len(torch_prompts):,} rows ({bare_torch:.1f} s at {screen_rows:,})")
    print(f"whole screen: {screen:.1f} s ({screen_rows / screen:.0f} rows/s), including the likelihood part on "
          f"{result.attribution.likelihood_rows} sampled responses x 2 models (alone: {likelihood_part:.1f} s)")
    print(f"ratio screen/bare rows/s, same encoder: {bare / screen:.2f} (target >= 0.9)")
    print(f"ratio screen/bare rows/s, against sentence-transformers on PyTorch: {bare_torch / screen:.2f}")
    print(f"peak RSS: {peak_mb:.0f} MB (target < 2048 MB)")
    ledger.close()


if __name__ == "__main__":
    main()
