"""Fourth batch of labelled public sets (../shared/eval/public, see its SOURCES.md): sources for three
patterns that had too few. cot_critique: Self-Refine's GSM feedback prompt (critique a generated PAL
solution block by block) over the solutions its own run logged, and Reflexion's CoT self-reflection prompt
(diagnose a failed reasoning trial) over the failed HotpotQA trials its own run logged. templated_sweep:
CAMEL's task-generation prompts over its assistant-role x user-role and language x domain grids, and
airoboros's coding-task generator over its configured languages and related software. identity_probe:
Koala's hard-coded identity questions (name, maker, "Are you ChatGPT?", "trained on OpenAI data?").
Templates are filled the way their own pipelines fill them (quoted file and function in each block); every
source here ships its own slot values, so no MT-Bench or Alpaca stand-ins are needed. The .py files are kept
as .py.txt and parsed with ast, never imported or run. Nothing here is copied into the library.
"""

from __future__ import annotations

import ast
import random
import re
from pathlib import Path

import yaml

from tests.bench.eval_sets import ROOT, SEED

REFLEXION_TRIALS = 40
CAMEL_SOCIETY_PROMPTS = 40
CAMEL_CODE_PROMPTS = 24
AIROBOROS_PROMPTS = 30


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def _module_strings(tree: ast.Module) -> dict[str, str]:
    return {t.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
            for t in node.targets if isinstance(t, ast.Name)}


def _self_instruction(tree: ast.Module) -> str:
    """Self-Refine GSMFeedback.__init__: `self.instruction = "<full>" if "naive" not in ... else "<naive>"`."""
    for node in ast.walk(tree):
        if (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Attribute)
                and node.targets[0].attr == "instruction" and isinstance(node.value, ast.IfExp)):
            return node.value.body.value
    raise ValueError("GSMFeedback instruction not found")


def _class_prompts(tree: ast.Module, cls: str) -> dict[str, str]:
    """CAMEL prompt dicts: class attributes `NAME = TextPrompt(<string literal>)`, annotated or not."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == cls:
            for item in node.body:
                target = value = None
                if isinstance(item, ast.Assign) and isinstance(item.targets[0], ast.Name):
                    target, value = item.targets[0].id, item.value
                elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    target, value = item.target.id, item.value
                if (isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
                        and value.func.id == "TextPrompt" and isinstance(value.args[0], ast.Constant)):
                    found[target] = value.args[0].value
            return found
    raise KeyError(cls)


def _camel_names(path: Path) -> list[str]:
    """camel/generators.py RoleNameGenerator / SingleTxtGenerator: drop the "N." numbering of each line."""
    return [" ".join(name.split(" ")[1:]) for name in path.read_text(encoding="utf-8").splitlines()]


def _koala_questions(tree: ast.Module) -> list[str]:
    """Koala process_hard_coded_data.py generate_hardcoded(): the three `questions = [...]` lists, in order."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "generate_hardcoded":
            return [q for sub in node.body if isinstance(sub, ast.Assign) and isinstance(sub.targets[0], ast.Name)
                    and sub.targets[0].id == "questions" for q in ast.literal_eval(sub.value)]
    raise ValueError("generate_hardcoded not found")


def load_batch4_sets(root: Path = ROOT) -> dict[str, tuple[str, list[str]]]:
    """name -> (label, prompts), like eval_sets.load_sets; every set here is new to the evaluation."""
    rng = random.Random(SEED + 4)
    sets: dict[str, tuple[str, list[str]]] = {}

    # Self-Refine src/gsm/feedback.py GSMFeedback.make_query: prompt + solution + "\n\n" + instruction, where
    # prompt is data/prompt/gsm/feedback.txt and solution is the PAL program from the init step. The run's
    # report file (gsm_selfref_eval.print_reports) logs each such "Previous solution:" verbatim.
    refine = root / "madaan__self-refine"
    examples = (refine / "data" / "prompt" / "gsm" / "feedback.txt").read_text(encoding="utf-8")
    instruction = _self_instruction(_tree(refine / "src" / "gsm" / "feedback.py.txt"))
    reports = (refine / "data" / "tasks" / "gsm" / "gsm_outputs.jsonl.reports.txt").read_text(encoding="utf-8")
    solutions = re.findall(r"\nPrevious solution:\n(.*?)\n\nFeedback:\n", reports, re.S)
    sets["self-refine gsm feedback"] = ("cot_critique", [
        f"{examples}{solution}\n\n{instruction}" for solution in solutions])

    # Reflexion hotpotqa_runs (notebooks/CotQA_no_context.ipynb): CoTAgent._build_reflection_prompt fills
    # cot_simple_reflect_prompt (COT_SIMPLE_REFLECT_INSTRUCTION) with examples=COT_SIMPLE_REFLECTION,
    # context='', the question and the failed trial's scratchpad ("\nThought: ...\nAction: ...\nObservation:
    # Answer is INCORRECT"). Failed trials: trial 1, "BEGIN INCORRECT AGENTS", of the CoT no-context run log.
    reflexion = root / "noahshinn__reflexion" / "hotpotqa_runs"
    template = _module_strings(_tree(reflexion / "prompts.py.txt"))["COT_SIMPLE_REFLECT_INSTRUCTION"]
    shots = _module_strings(_tree(reflexion / "fewshots.py.txt"))["COT_SIMPLE_REFLECTION"]
    log = (reflexion / "root" / "CoT" / "no_context" / "base" / "100_questions_5_trials.txt").read_text(encoding="utf-8")
    failed = log.split("BEGIN TRIAL 2")[0].split("BEGIN INCORRECT AGENTS")[1]
    trials = re.findall(r"\nQuestion: (.*?)((?:\n(?:Thought|Action|Observation): .*?)+)\nCorrect answer: ", failed)
    sets["reflexion cot self-reflection"] = ("cot_critique", [
        template.format(examples=shots, context="", question=question, scratchpad=scratchpad)
        for question, scratchpad in rng.sample(trials, REFLEXION_TRIALS)])

    # CAMEL generators.py: AISocietyTaskPromptGenerator(num_tasks=10).from_role_files() formats
    # AISocietyPromptTemplateDict.GENERATE_TASKS for every (assistant role, user role) pair (50 x 50), and
    # CodeTaskPromptGenerator(num_tasks=50) formats CodePromptTemplateDict.GENERATE_TASKS for every
    # (language, domain) pair (20 x 50); examples/*/task_generation.py send each as one user message.
    camel = root / "camel-ai__camel"

    def camel_sweep(module: str, cls: str, folder: str, slots: dict[str, str], num_tasks: int, count: int) -> list[str]:
        """GENERATE_TASKS of `cls` formatted over `count` cells of the grid of its two slot files."""
        template = _class_prompts(_tree(camel / "camel" / "prompts" / module), cls)["GENERATE_TASKS"]
        (first, first_file), (second, second_file) = slots.items()
        grid = [(a, b) for a in _camel_names(camel / "data" / folder / first_file)
                for b in _camel_names(camel / "data" / folder / second_file)]
        return [template.format(**{first: a, second: b}, num_tasks=num_tasks) for a, b in rng.sample(grid, count)]

    sets["camel ai-society task generation"] = ("templated_sweep", camel_sweep(
        "ai_society.py.txt", "AISocietyPromptTemplateDict", "ai_society",
        {"assistant_role": "assistant_roles.txt", "user_role": "user_roles.txt"}, 10, CAMEL_SOCIETY_PROMPTS))
    sets["camel code task generation"] = ("templated_sweep", camel_sweep(
        "code.py.txt", "CodePromptTemplateDict", "code",
        {"language": "languages.txt", "domain": "domains.txt"}, 50, CAMEL_CODE_PROMPTS))

    # airoboros instructors/coding.py generate(): per batch, batch_size languages drawn from coding_languages
    # (with replacement when batch_size >= len), " * task {i} should ask the user to use {lang}" lines, and
    # "One of the tasks should require interacting with {related}." when batch_size > 3; then
    # prompts/coding.txt.format(batch_size, languages, related_software, language). Values: example-config.yaml.
    airo = root / "jondurbin__airoboros"
    config = yaml.safe_load((airo / "example-config.yaml").read_text(encoding="utf-8"))
    coding = config["instructors"]["coding"]
    batch_size = int(coding.get("batch_size") or config["default_batch_size"])
    languages = coding["coding_languages"]
    template = (airo / "airoboros" / "instructors" / "prompts" / "coding.txt").read_text(encoding="utf-8")
    airoboros = []
    for _ in range(AIROBOROS_PROMPTS):
        current = (rng.sample(languages, batch_size) if batch_size < len(languages)
                   else rng.choices(languages, k=batch_size))
        languages_str = "\n".join(f" * task {i + 1} should ask the user to use {lang}" for i, lang in enumerate(current))
        related = (f"One of the tasks should require interacting with {rng.choice(coding['related_software'])}."
                   if batch_size > 3 else "")
        airoboros.append(template.format(batch_size=batch_size, languages=languages_str, related_software=related,
                                         language=coding.get("language") or config.get("language") or "English"))
    sets["airoboros coding task generation"] = ("templated_sweep", airoboros)

    # Koala process_hard_coded_data.py generate_hardcoded(): each question is the user turn
    # ("USER:" + question + "GPT:") of a hard-coded identity answer. All unique questions, in file order.
    koala = _koala_questions(_tree(root / "young-geng__koala_data_pipeline" / "process_hard_coded_data.py.txt"))
    sets["koala hard-coded identity"] = ("identity_probe", list(dict.fromkeys(koala)))
    return sets
