"""The multilingual evaluation set, as (language, set name) -> (label, prompts).

- The library's own prompts translated by the project (eval/translated/library_exemplars.yaml), in
  en (the originals), es, de, fr, zh, ru and ar: every pattern but logprob_harvest, and benign.
- Public sets (eval/public/SOURCES.md and ../shared/eval/public/SOURCES.md): MGSM word problems
  (benign; en es de fr ru zh), XSafety's unsafe-instruction requests (refusal_probe) and safety
  commonsense questions (benign) in all seven, MultiJail's harmful requests (refusal_probe; en zh ar)
  and LLaMA-Factory's identity questions (identity_probe; en zh).

Each public set contributes at most PER_SET prompts per language, the first ones of its file.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import yaml

from tests.bench.eval_sets import ROOT as SHARED

REPO = Path(__file__).resolve().parents[2]
PUBLIC = REPO / "eval" / "public"
TRANSLATED = REPO / "eval" / "translated" / "library_exemplars.yaml"
LANGUAGES = ("en", "es", "de", "fr", "zh", "ru", "ar")
PER_SET = 40
XSAFETY = PUBLIC / "Jarviswang94__Multilingual_safety_benchmark"
# XSafety names its Spanish folder "sp" and its English files with a suffix.
XSAFETY_DIRS = {"en": "en", "es": "sp", "de": "de", "fr": "fr", "zh": "zh", "ru": "ru", "ar": "ar"}
# LLaMA-Factory identity.json: the identity_probe indices (../shared/eval/public/SOURCES.md, Notes).
IDENTITY_PROBE = [*range(2, 15), *range(19, 24), *range(26, 29), 31, 33, *range(39, 63), *range(87, 91)]


def translated_items() -> list[dict[str, str]]:
    """The translated library prompts: dicts with `label` and one text per language."""
    return yaml.safe_load(TRANSLATED.read_text(encoding="utf-8"))["items"]


def held_out_texts() -> set[str]:
    """The library prompts that were translated (removed from the library during this evaluation)."""
    return {item["en"] for item in translated_items()}


def _lines(path: Path) -> list[str]:
    """One prompt per line (XSafety's files), quotes and a byte-order mark stripped, blanks dropped."""
    text = path.read_text(encoding="utf-8-sig")
    return [row[0].strip() for row in csv.reader(text.splitlines()) if row and row[0].strip()]


def load_multilingual() -> dict[tuple[str, str], tuple[str, list[str]]]:
    """(language, set name) -> (label, prompts)."""
    sets: dict[tuple[str, str], tuple[str, list[str]]] = {}
    items = translated_items()
    for language in LANGUAGES:
        for label in sorted({item["label"] for item in items}):
            sets[(language, f"library translated: {label}")] = (
                label, [item[language] for item in items if item["label"] == label])
        folder = XSAFETY / XSAFETY_DIRS[language]
        unsafe = sorted(folder.glob("Unsafe_Instruction_Topic*.csv"))[0]
        sets[(language, "xsafety unsafe instructions")] = ("refusal_probe", _lines(unsafe)[:PER_SET])
        sets[(language, "xsafety commonsense")] = ("benign", _lines(folder / "commonsense.csv")[:PER_SET])
        mgsm = (SHARED / "google-research__url-nlp" / "mgsm" / "mgsm_zh.tsv" if language == "zh"
                else PUBLIC / "google-research__url-nlp" / "mgsm" / f"mgsm_{language}.tsv")
        if mgsm.exists():
            rows = [line.split("\t")[0] for line in mgsm.read_text(encoding="utf-8").splitlines() if line.strip()]
            sets[(language, "mgsm word problems")] = ("benign", rows[:PER_SET])
    multijail = SHARED / "DAMO-NLP-SG__multilingual-safety-for-LLMs" / "data" / "MultiJail.csv"
    if multijail.exists():
        with multijail.open(encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))[:PER_SET]
        for language in ("en", "zh", "ar"):
            sets[(language, "multijail")] = ("refusal_probe", [row[language] for row in rows])
    identity = SHARED / "hiyouga__LLaMA-Factory" / "data" / "identity.json"
    if identity.exists():
        items_ = json.loads(identity.read_text(encoding="utf-8"))
        probes = [items_[i]["instruction"] for i in IDENTITY_PROBE]
        sets[("en", "llama-factory identity")] = ("identity_probe", [p for p in probes if p.isascii()])
        sets[("zh", "llama-factory identity")] = ("identity_probe", [p for p in probes if not p.isascii()])
    return sets
