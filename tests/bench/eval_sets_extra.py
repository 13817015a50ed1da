"""More labelled public sets (../shared/eval/public, see its SOURCES.md; eval/public/SOURCES.md) beyond
the first ones in eval_sets.py: agentic trajectories (ReAct few-shot prefixes, SWE-agent's instance
template), pairwise and rubric judge prompts (Arena-Hard, Prometheus, the Japanese MT-Bench judge),
persona statements (Anthropic's persona evals), identity questions (LLaMA-Factory), harmful requests
(MultiJail, XSafety) and ordinary tool-use, Japanese and safety-commonsense questions as negatives.
Templates are filled the way their pipelines fill them, with MT-Bench questions and Alpaca seed answers
as slot values. The same tuning/held-out split applies (eval_sets.tuning_half). Nothing here is copied
into the library.
"""

from __future__ import annotations

import ast
import csv
import json
import random
import re
from pathlib import Path

from tests.bench.eval_sets import ROOT, SEED, _fill, _jsonl
from tests.bench.eval_sets_multilingual import IDENTITY_PROBE, PER_SET, XSAFETY, _lines

SLOTS = ("answer", "answer_a", "answer_b", "answer_1", "answer_2", "answer_a_1", "answer_a_2", "answer_b_1",
         "answer_b_2", "ref_answer_1", "ref_answer_2", "response", "response_A", "response_B", "orig_response",
         "reference_answer", "ANSWER_A", "ANSWER_B", "context")
REACT_AGENTIC = ("webthink_simple", "webthink_simple_3", "webthink_simple6", "webact_simple6")
REACT_COT = ("cotqa_simple", "cotqa_simple6")
PER_TEMPLATE = 8


def _strings(path: Path) -> dict[str, str]:
    """The module-level string constants of a Python file kept as data (parsed, never run)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = {}
    for node in tree.body:
        if not isinstance(node, ast.Assign):
            continue
        value = node.value
        stripped = isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr == "strip"
        if stripped:
            value = value.func.value  # "...".strip()
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = value.value.strip() if stripped else value.value
    return found


def _slot_values(rng: random.Random, question: str, answers: list[str]) -> dict[str, str]:
    values = {"question": question, "question_1": question, "question_2": question, "instruction": question,
              "QUESTION": question, "problem_statement": question, "working_dir": "/testbed"}
    values.update({key: rng.choice(answers) for key in SLOTS})
    return values


def load_extra_sets(root: Path = ROOT) -> dict[str, tuple[str, list[str]]]:
    """name -> (label, prompts), like eval_sets.load_sets; every set here is new to the evaluation."""
    rng = random.Random(SEED + 1)
    questions = [q["turns"][0] for q in
                 _jsonl(root / "lm-sys__FastChat" / "fastchat" / "llm_judge" / "data" / "mt_bench" / "question.jsonl")]
    answers = [t["instances"][0]["output"] for t in _jsonl(root / "tatsu-lab__stanford_alpaca" / "seed_tasks.jsonl")]
    sets: dict[str, tuple[str, list[str]]] = {}
    react = json.loads((root / "ysymyth__ReAct" / "prompts" / "prompts_naive.json").read_text(encoding="utf-8"))
    sets["react agent few-shot"] = ("agentic_harvest", [
        react[key] + f"Question: {q}\n" for key in REACT_AGENTIC for q in rng.sample(questions, PER_TEMPLATE)])
    sets["react cot few-shot"] = ("cot_exfiltration", [
        react[key] + f"Question: {q}\n" for key in REACT_COT for q in rng.sample(questions, PER_TEMPLATE)])
    swe = (root / "SWE-agent__SWE-agent" / "config" / "default.yaml").read_text(encoding="utf-8")
    instance = re.search(r"instance_template: \|-\n(.*?)\n    next_step_template", swe, re.S).group(1)
    instance = "\n".join(line[6:] for line in instance.splitlines())
    sets["swe-agent instances"] = ("agentic_harvest", [
        re.sub(r"\{\{(\w+)\}\}", lambda m, v=_slot_values(rng, q, answers): v.get(m.group(1), m.group(0)), instance)
        for q in rng.sample(questions, 2 * PER_TEMPLATE)])
    judges = []
    arena = _strings(root / "lmarena__arena-hard-auto" / "utils" / "judge_utils.py.txt")
    template = re.search(r'prompt_template: "(.*)"', (root / "lmarena__arena-hard-auto" / "config" /
                                                       "arena-hard-v2.0.yaml").read_text(encoding="utf-8")).group(1)
    template = template.encode().decode("unicode_escape")
    for system in sorted({v for v in arena.values() if "Assistant A" in v}):
        for q in rng.sample(questions, PER_TEMPLATE):
            judges.append(system + "\n\n" + _fill(template, _slot_values(rng, q, answers)))
    sets["arena-hard pairwise judge"] = ("autograding", judges)
    prometheus = _strings(root / "prometheus-eval__prometheus-eval" / "libs" / "prometheus-eval" /
                          "prometheus_eval" / "prompts.py.txt")
    rubric = prometheus["HELPFULNESS_RUBRIC"]
    graded = []
    for name in sorted(k for k in prometheus if k.endswith("_PROMPT") or "_PROMPT_" in k):
        if "SYSTEM" in name:
            continue
        system = prometheus["REL_SYSTEM_PROMPT" if "RELATIVE" in name else "ABS_SYSTEM_PROMPT"]
        for q in rng.sample(questions, 4):
            graded.append(system + "\n\n" + _fill(prometheus[name], {**_slot_values(rng, q, answers), "rubric": rubric}))
    sets["prometheus rubric judge"] = ("autograding", graded)
    ja = root / "ku-nlp__ja-vicuna-qa-benchmark" / "data" / "jp_bench"
    ja_questions = _jsonl(ja / "question.jsonl")
    ja_texts = [q["turns"][0] for q in ja_questions]
    sets["ja mt-bench judge"] = ("autograding", [
        row["system_prompt"] + "\n\n" + _fill(row["prompt_template"], _slot_values(rng, q, answers))
        for row in _jsonl(ja / "judge_prompts.jsonl") for q in rng.sample(ja_texts, PER_TEMPLATE)])
    sets["ja vicuna questions"] = ("benign", ja_texts)
    persona = _jsonl(root / "anthropics__evals" / "persona" / "neuroticism.jsonl")
    sets["anthropic persona statements"] = ("persona_cloning", [row["question"] for row in persona[:80]])
    identity = json.loads((root / "hiyouga__LLaMA-Factory" / "data" / "identity.json").read_text(encoding="utf-8"))
    sets["llama-factory identity"] = ("identity_probe", [identity[i]["instruction"] for i in IDENTITY_PROBE])
    with (root / "DAMO-NLP-SG__multilingual-safety-for-LLMs" / "data" / "MultiJail.csv").open(encoding="utf-8-sig") as handle:
        sets["multijail english"] = ("refusal_probe", [row["en"] for row in list(csv.DictReader(handle))[:80]])
    sets["xsafety unsafe instructions (en)"] = ("refusal_probe", _lines(XSAFETY / "en" / "Unsafe_Instruction_Topic_n.csv")[:PER_SET])
    sets["xsafety commonsense (en)"] = ("benign", _lines(XSAFETY / "en" / "commonsense.csv")[:PER_SET])
    bfcl = _jsonl(root / "ShishirPatil__gorilla" / "berkeley-function-call-leaderboard" / "bfcl_eval" / "data" /
                  "BFCL_v4_live_simple.json")
    sets["bfcl tool-use questions"] = ("benign", [row["question"][0][-1]["content"] for row in bfcl[:80]])
    return sets
