"""The labelled public prompt sets (../shared/eval/public, see its SOURCES.md) as prompts and as the
workflows they stand for. Templates are filled the way their pipelines fill them: the Alpaca
self-instruct prompt with three seed tasks, the Evol-Instruct templates with test instructions, the
judge templates with MT-Bench questions and answers. Nothing here is copied into the library.
"""

from __future__ import annotations

import csv
import json
import random
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3] / "shared" / "eval" / "public"
SEED = 7
SPLIT_SEED = 2026


def tuning_half(n: int, seed: int = SPLIT_SEED) -> list[bool]:
    """Which of a set's n prompts are in its tuning half (a fixed-seed shuffle, floor(n/2) of them).

    The scorer's calibrated constants (scorer.CUE_SCALE, C_REGULARIZATION, KNN_K) were chosen on the
    tuning halves only; the other halves are held out, and eval_patterns.py reports both.
    """
    order = list(range(n))
    random.Random(seed).shuffle(order)
    chosen = set(order[: n // 2])
    return [i in chosen for i in range(n)]


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _fill(template: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), template)


def load_sets(root: Path = ROOT) -> dict[str, tuple[str, list[str]]]:
    """name -> (label, prompts). Labels: a pattern id, 'benign' or 'benign_lookalike'."""
    rng = random.Random(SEED)
    sets: dict[str, tuple[str, list[str]]] = {}
    seeds = _jsonl(root / "tatsu-lab__stanford_alpaca" / "seed_tasks.jsonl")
    template = (root / "tatsu-lab__stanford_alpaca" / "prompt.txt").read_text(encoding="utf-8")
    sweep = []
    for _ in range(60):
        chosen = rng.sample(seeds, 3)
        body = "".join(f"\n###\n{i}. Instruction: {t['instruction']}\n{i}. Input:\n"
                       f"{t['instances'][0]['input'] or '<noinput>'}\n{i}. Output:\n{t['instances'][0]['output']}"
                       for i, t in enumerate(chosen, 1))
        sweep.append(template + body + "\n###\n4. Instruction:")
    sets["alpaca self-instruct generation"] = ("templated_sweep", sweep)
    wizard = [row["Instruction"] for row in _jsonl(root / "nlpxucan__WizardLM" / "WizardLM" / "data" / "WizardLM_testset.jsonl")]
    evol = []
    for name in ("depth.py.txt", "breadth.py.txt"):
        text = (root / "nlpxucan__WizardLM" / "Evol_Instruct" / name).read_text(encoding="utf-8")
        base = text.split('base_instruction = "', 1)[1].split('"\n', 1)[0]
        base = base.replace("\\r\\n", "\n").replace("\\\n", "").replace("\t", "")
        methods = re.findall(r'base_instruction\.format\("(.*?)"\)', text) or [""]
        marker = "#The Given Prompt#" if "depth" in name else "#Given Prompt#"
        out = "#Rewritten Prompt#" if "depth" in name else "#Created Prompt#"
        for instruction in rng.sample(wizard, 30):
            head = base.replace("{}", rng.choice(methods)) if "{}" in base else base
            evol.append(f"{head}{marker}: \n {instruction} \n{out}:\n")
    sets["evol-instruct rewriting"] = ("templated_sweep", evol)
    questions = _jsonl(root / "lm-sys__FastChat" / "fastchat" / "llm_judge" / "data" / "mt_bench" / "question.jsonl")
    answers = [t["instances"][0]["output"] for t in seeds]
    judges = []
    for row in _jsonl(root / "lm-sys__FastChat" / "fastchat" / "llm_judge" / "data" / "judge_prompts.jsonl"):
        for question in rng.sample(questions, 8):
            values = {"question": question["turns"][0], "question_1": question["turns"][0],
                      "question_2": question["turns"][-1]}
            for key in ("answer", "answer_a", "answer_b", "answer_1", "answer_2", "answer_a_1", "answer_a_2",
                        "answer_b_1", "answer_b_2", "ref_answer_1", "ref_answer_2"):
                values[key] = rng.choice(answers)
            judges.append(row["system_prompt"] + "\n\n" + _fill(row["prompt_template"], values))
    for path in (root / "tatsu-lab__alpaca_eval" / "src" / "alpaca_eval" / "evaluators_configs").glob("*/*.txt"):
        text = path.read_text(encoding="utf-8")
        for question in rng.sample(questions, 8):
            judges.append(_fill(text, {"instruction": question["turns"][0], "output_1": rng.choice(answers),
                                       "output_2": rng.choice(answers)}))
    sets["llm-as-judge prompts"] = ("autograding", judges)
    attacks = json.loads((root / "y0mingzhang__prompt-extraction" / "attacks" / "generated.json").read_text())
    sets["system-prompt extraction attacks"] = ("identity_probe", sorted(set(attacks)))
    with (root / "paul-rottger__exaggerated-safety" / "xstest_prompts.csv").open(encoding="utf-8") as handle:
        xstest = list(csv.DictReader(handle))
    sets["xstest unsafe"] = ("refusal_probe", [r["prompt"] for r in xstest if r["label"] == "unsafe"])
    sets["xstest safe"] = ("benign_lookalike", [r["prompt"] for r in xstest if r["label"] == "safe"])
    sets["mt-bench questions"] = ("benign", [q["turns"][0] for q in questions])
    sets["wizardlm test set"] = ("benign", wizard)
    user = _jsonl(root / "yizhongw__self-instruct" / "human_eval" / "user_oriented_instructions.jsonl")
    sets["self-instruct user tasks"] = ("benign", [
        (t["instruction"] + ("\n\n" + t["instances"][0]["input"] if t["instances"][0]["input"] else "")) for t in user])
    return sets
