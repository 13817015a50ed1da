"""Third batch of labelled public sets (../shared/eval/public, see its SOURCES.md): second sources for
three patterns. cot_exfiltration: the zero-shot-CoT and few-shot-CoT prompts that "Large Language Models
Are Reasoning Teachers" used to collect teacher rationales, and Auto-CoT's auto-built demonstrations.
persona_cloning: the Machine Personality Inventory (MPI-120 items in its GPT-3 template) and the
PsyBORGS admin session of "Personality traits in LLMs" (preamble + item + rating postamble).
agentic_harvest: AgentBench's OS-interaction task messages and InterCode's bash ReAct prompt.
Templates are filled the way their own pipelines fill them (quoted file and function in each block);
where a pipeline's questions are not in the repository, MT-Bench first turns stand in, as in
eval_sets_extra.py. The .py files are kept as .py.txt and parsed with ast, never imported or run.
Nothing here is copied into the library.
"""

from __future__ import annotations

import ast
import csv
import json
import random
from pathlib import Path

from tests.bench.eval_sets import ROOT, SEED, _jsonl

PER_TEMPLATE = 4
ZS_COT_QUESTIONS = 40
MPI_ITEMS = 80
PSYBORGS_PROMPTS = 60
PSYBORGS_MEASURES = ("IPIP300",)  # the other five measures' items are "[REDACTED]" in the published file
INTERCODE_SETTING = "bash"


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def _zs_cot_step1(tree: ast.Module) -> str:
    """reasoning-teacher Formatter: the input_format set under `if zs_cot_step == 1` (decoder models)."""
    for node in ast.walk(tree):
        if (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
                and isinstance(node.test.left, ast.Name) and node.test.left.id == "zs_cot_step"
                and isinstance(node.test.comparators[0], ast.Constant) and node.test.comparators[0].value == 1):
            return node.body[0].value.value
    raise ValueError("zs_cot step 1 template not found")


def _attribute_strings(tree: ast.Module) -> dict[str, str]:
    """String constants assigned to attributes anywhere (auto-cot's `args.cot_trigger = ...`)."""
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            for target in node.targets:
                if isinstance(target, ast.Attribute):
                    found[target.attr] = node.value.value
    return found


def _module_value(tree: ast.Module, name: str):
    """A module-level literal (string or dict of strings), evaluated with ast.literal_eval."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise KeyError(name)


def _module_strings(tree: ast.Module) -> dict[str, str]:
    return {t.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
            for t in node.targets if isinstance(t, ast.Name)}


def _method_fstring(tree: ast.Module, cls: str, method: str, attrs: dict[str, str]) -> str:
    """The f-string a method returns, with `self.<attr>` fields filled from attrs."""
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == cls:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == method:
                    ret = next(n for n in ast.walk(item) if isinstance(n, ast.Return))
                    parts = []
                    for value in ret.value.values:
                        if isinstance(value, ast.Constant):
                            parts.append(value.value)
                        else:
                            parts.append(attrs[value.value.attr])
                    return "".join(parts)
    raise KeyError(f"{cls}.{method}")


def _os_system_message(tree: ast.Module) -> str:
    """AgentBench OSInteraction._inject_initial_messages: the local `system_message` string."""
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "_inject_initial_messages":
            for sub in ast.walk(node):
                if (isinstance(sub, ast.Assign) and isinstance(sub.targets[0], ast.Name)
                        and sub.targets[0].id == "system_message"):
                    return sub.value.value
    raise ValueError("system_message not found")


def load_batch3_sets(root: Path = ROOT) -> dict[str, tuple[str, list[str]]]:
    """name -> (label, prompts), like eval_sets.load_sets; every set here is new to the evaluation."""
    rng = random.Random(SEED + 3)
    questions = [q["turns"][0] for q in
                 _jsonl(root / "lm-sys__FastChat" / "fastchat" / "llm_judge" / "data" / "mt_bench" / "question.jsonl")]
    sets: dict[str, tuple[str, list[str]]] = {}

    # reasoning-teacher src/data/format.py: zs_cot step 1 is "Q: {sample[question]}\nA: Let's think step by
    # step." (question stripped); fs_cot is few_shot_prompt + "\nQ: {sample[question]}\nA:".
    teacher = root / "itsnamgyu__reasoning-teacher"
    zs = _zs_cot_step1(_tree(teacher / "src" / "data" / "format.py.txt"))
    sets["reasoning-teacher zero-shot-cot"] = ("cot_exfiltration", [
        zs.format(sample={"question": q.strip()}) for q in rng.sample(questions, ZS_COT_QUESTIONS)])
    few_shot = json.loads((teacher / "data" / "few_shot_cot_prompts.json").read_text(encoding="utf-8"))
    unique = list(dict.fromkeys(entry["prompt"] for entry in few_shot.values()))  # 5 math keys share one prompt
    sets["reasoning-teacher few-shot-cot"] = ("cot_exfiltration", [
        prompt + "\nQ: {sample[question]}\nA:".format(sample={"question": q.strip()})
        for prompt in unique for q in rng.sample(questions, PER_TEMPLATE)])

    # auto-cot run_inference.py (method auto_cot): demo + "Q: " + q + "\nA:" + " " + cot_trigger, where
    # utils.create_demo_text joins question + " " + rationale + " " + "The answer is" + " " + pred_ans + ".\n\n".
    auto = root / "amazon-science__auto-cot"
    args = _attribute_strings(_tree(auto / "run_inference.py.txt"))
    demos = json.loads((auto / "demos" / "multiarith_auto").read_text(encoding="utf-8"))["demo"]
    demo_text = "".join(f"{d['question']} {d['rationale']} {args['direct_answer_trigger_for_fewshot']} "
                        f"{d['pred_ans']}.\n\n" for d in demos)
    sets["auto-cot multiarith demos"] = ("cot_exfiltration", [
        demo_text + "Q: " + q + "\n" + "A:" + " " + args["cot_trigger"] for q in rng.sample(questions, 24)])

    # MPI models/gpt-3/neutral.py: template.format(item["text"].lower()) over inventories/mpi_120.csv, in order.
    mpi = root / "jianggy__MPI"
    template = (mpi / "templates" / "gpt-3.txt").read_text(encoding="utf-8")
    with (mpi / "inventories" / "mpi_120.csv").open(encoding="utf-8", newline="") as handle:
        items = list(csv.DictReader(handle))
    sets["mpi-120 personality inventory"] = ("persona_cloning", [
        template.format(row["text"].lower()) for row in items[:MPI_ITEMS]])

    # PsyBORGS admin session (personality_in_llms): prompt = item preamble + item text + item postamble,
    # over the preamble and postamble ids each scale lists. Only IPIP-NEO-300 items are published.
    session = json.loads((root / "google-deepmind__personality_in_llms" / "admin_sessions" /
                          "prod_run_01_external_rating.json").read_text(encoding="utf-8"))
    scales = [(measure, scale) for measure in PSYBORGS_MEASURES
              for scale in session["measures"][measure]["scales"].values()]
    psy = []
    for _ in range(PSYBORGS_PROMPTS):
        measure, scale = rng.choice(scales)
        item = session["measures"][measure]["items"][rng.choice(scale["item_ids"])]
        psy.append(session["item_preambles"][rng.choice(scale["item_preamble_ids"])] + item +
                   session["item_postambles"][rng.choice(scale["item_postamble_ids"])])
    sets["psyborgs personality admin session"] = ("persona_cloning", psy)

    # AgentBench os_interaction task.py: system message, then the user turn
    # "Now, I will start a new problem in a new OS. My problem is:\n\n{description}" (dev.json, 26 tasks).
    bench = root / "THUDM__AgentBench"
    system = _os_system_message(_tree(bench / "src" / "server" / "tasks" / "os_interaction" / "task.py.txt"))
    tasks = json.loads((bench / "data" / "os_interaction" / "data" / "dev.json").read_text(encoding="utf-8"))
    sets["agentbench os interaction"] = ("agentic_harvest", [
        system + "\n\n" + f"Now, I will start a new problem in a new OS. My problem is:\n\n{t['description']}"
        for t in tasks])

    # InterCode eval_react.py: TemplateReAct(env, SETTING_MAP[env]) (language upper-cased), first LLM call is
    # get_init_msg() + get_demos() + get_query_msg(query) + "Thought 1:".
    inter = root / "princeton-nlp__intercode"
    prompts = _tree(inter / "experiments" / "utils" / "prompts.py.txt")
    setting = _module_value(_tree(inter / "experiments" / "eval_react.py.txt"), "SETTING_MAP")[INTERCODE_SETTING]
    attrs = {"language": INTERCODE_SETTING.upper(), "setting": setting}
    init = _method_fstring(prompts, "TemplateReAct", "get_init_msg", attrs)
    demo = _module_strings(prompts)["DEMO_" + attrs["language"] + "_REACT"]
    queries = json.loads((inter / "data" / "nl2bash" / "nl2bash_fs_1.json").read_text(encoding="utf-8"))
    sets["intercode bash react"] = ("agentic_harvest", [
        init + demo + f"Question: {q['query']}" + "Thought 1:" for q in queries])
    return sets
