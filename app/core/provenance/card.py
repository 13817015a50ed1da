"""The dataset card (README.md) in Hugging Face's conventions, filled from a provenance statement.

YAML front matter (license, annotations_creators / language_creators: machine-generated, tags with
`synthetic`, size_categories, task_categories, configs with data_files), then the card template's
sections that concern provenance: "Data Collection and Processing", "Who are the source data
producers?", "Personal and Sensitive Information", "Bias, Risks, and Limitations". What the
publisher did not declare is written as not declared; nothing is made up.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import yaml

from app.core.provenance.statement import NOT_DECLARED, UNKNOWN, method_text
from app.core.proxy.identity import METHOD_TEXT

CARD_MARKER = "<!-- written by Stillroom: provenance dataset card -->"
SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                   (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"))
TASK_CATEGORY = "text-generation"
TAGS = ["synthetic", "stillroom", "provenance"]
LEVEL_ORDER = {"none": 0, "low": 1, "medium": 2, "high": 3}


def size_category(rows: int) -> str:
    """Hugging Face's size bucket for a number of rows."""
    for limit, label in SIZE_CATEGORIES:
        if rows < limit:
            return label
    return "n>1T"


def hf_license(declared: str) -> str:
    """The license as the card's YAML wants it: a lower-case identifier, or "unknown" when not declared."""
    if declared == NOT_DECLARED:
        return "unknown"
    return declared.strip().lower().replace(" ", "-")


def front_matter(statement: dict[str, Any], data_path: str) -> dict[str, Any]:
    """The card's YAML metadata."""
    dataset, declared = statement["dataset"], statement["declared"]
    data: dict[str, Any] = {
        "license": hf_license(declared["license"]),
        "pretty_name": declared["name"] if declared["name"] != NOT_DECLARED else PurePosixPath(dataset["name"]).stem,
        "annotations_creators": ["machine-generated"],
        "language_creators": ["machine-generated"],
        "tags": list(TAGS),
        "size_categories": [size_category(int(dataset["rows"] or 0))],
        "task_categories": [TASK_CATEGORY],
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": data_path}]}],
    }
    return data


def _pct(share: float) -> str:
    return f"{share * 100:.1f}%"


def _model_line(model: dict[str, Any]) -> str:
    identity = model.get("identity")
    if isinstance(identity, dict):  # a proxied engine's model, known by a digest, a key or a name
        how = METHOD_TEXT.get(str(identity.get("method")), str(identity.get("method")))
        return (f"- **{model['name']}** (identified by {how}: `{identity.get('value')}`, served by "
                f"{identity.get('upstream') or UNKNOWN}): {model['generations']} traced generation(s).")
    parts = [f"architecture {model['architecture']}", f"quantization {model['quantization']}",
             f"license {model['license']}", f"base model {model['base_model']}"]
    return (f"- **{model['name']}** (`{model['file_name']}`, GGUF sha256 `{model['sha256']}`): "
            f"{model['generations']} traced generation(s); " + ", ".join(parts) + ".")


def _sampling_lines(sampling: dict[str, Any]) -> list[str]:
    lines = []
    for name, entry in sampling.items():
        if "values" in entry:
            values = ", ".join(f"{item['value']} ({item['count']})" for item in entry["values"])
            lines.append(f"- `{name}`: {values}")
        elif "min" in entry:
            lines.append(f"- `{name}`: {entry['distinct']} distinct values from {entry['min']} to {entry['max']}")
        elif "most_common" in entry:
            lines.append(f"- `{name}`: {entry['distinct']} distinct values")
        else:
            lines.append(f"- {name}: {entry.get('generations', 0)} generation(s)")
    return lines


def _screening_lines(screening: dict[str, Any]) -> list[str]:
    if screening.get("status") != "run":
        return [f"The screening for distillation patterns was not run ({screening.get('reason', 'no reason given')})."]
    lines = [f"Stillroom screened the workflows these rows came from against its pattern library "
             f"{screening['library_version']} (embeddings: {screening['embedding_model']}). A level says how much a "
             "workflow resembles a publicly described distillation pattern; it is not a judgement of intent, and "
             "many such workflows are legitimate.", ""]
    for workflow in screening["workflows"]:
        notable = sorted(workflow["resemblances"], key=lambda r: -LEVEL_ORDER.get(r["level"], 0))
        if not notable:
            lines.append(f"- `{workflow['name']}` ({workflow['generations']} generations): no resemblance to any pattern.")
            continue
        found = "; ".join(f"{item['name']}: {item['level']}" for item in notable)
        lines.append(f"- `{workflow['name']}` ({workflow['generations']} generations): {found}.")
    return lines


def render_card(statement: dict[str, Any], data_path: str) -> str:
    """The README.md text: YAML front matter and the provenance sections, from the statement."""
    dataset, declared, matching = statement["dataset"], statement["declared"], statement["matching"]
    shares, counts = matching["shares"], matching["counts"]
    ledger, runtime, timeframe = statement["ledger"], statement["runtime"], statement["timeframe"]
    title = declared["name"] if declared["name"] != NOT_DECLARED else dataset["name"]
    meta = yaml.safe_dump(front_matter(statement, data_path), sort_keys=False, allow_unicode=True)
    exact, near, untraced = (counts.get(k, 0) for k in ("traced-exact", "traced-near", "untraced"))
    lines = [f"---\n{meta}---", CARD_MARKER, "", f"# Dataset Card for {title}", "",
             "## Dataset Details", "", "### Dataset Description", "",
             declared["description"] if declared["description"] != NOT_DECLARED
             else "_The publisher has not declared a description._", "",
             f"- **Curated by:** {declared['creator']}",
             f"- **License:** {declared['license']}",
             f"- **File:** `{dataset['name']}` ({dataset['format']}, {dataset['shape']} shape), "
             f"{dataset['rows']} rows, {dataset['malformed_rows']} malformed, {dataset['size_bytes']} bytes, "
             f"sha256 `{dataset['sha256']}`", "",
             "## Uses", "", "### Direct Use", "",
             declared["intended_use"] if declared["intended_use"] != NOT_DECLARED
             else "_The publisher has not declared an intended use._", "",
             "## Dataset Structure", "",
             "Fields: " + ", ".join(f"`{c}`" for c in dataset["columns"]) + ".", "",
             "## Dataset Creation", "", "### Source Data", "", "#### Data Collection and Processing", "",
             f"The rows were generated by language models run locally with llama.cpp "
             f"(llama-cpp-python {_runtime_text(runtime)}) and logged, each generation as one row, in a "
             f"hash-chained ledger kept by Stillroom {statement['generator']['version']}. Each dataset row was "
             "matched to that ledger:", "",
             f"- traced exactly (same normalized prompt and response): {exact} rows ({_pct(shares.get('traced-exact', 0))})",
             f"- traced nearly (edited after generation): {near} rows ({_pct(shares.get('traced-near', 0))})",
             f"- untraced (not found in the ledger): {untraced} rows ({_pct(shares.get('untraced', 0))})", "",
             f"Matching: {method_text(matching.get('method'))}.", "",
             *_backend_lines(runtime),
             f"Generated between {timeframe['first_generation'] or UNKNOWN} and "
             f"{timeframe['last_generation'] or UNKNOWN}, in the workflow(s) "
             + (", ".join(f"`{w['name']}` ({w['generations']})" for w in statement["workflows"]) or "none") + ".", "",
             "Sampling parameters of the traced generations (value and number of generations):", "",
             *(_sampling_lines(statement["sampling"]) or ["- none logged"]), "",
             "#### Who are the source data producers?", "",
             "The text was produced by the following model(s), identified by the sha256 of their GGUF files"
             + ("" if all("identity" not in m for m in statement["models"]) else
                " or, for generations passed through `stillroom proxy` to another engine, as that engine "
                "identified them") + ":", "",
             *([_model_line(m) for m in statement["models"]] or ["- no generation was traced to a model"]), "",
             "The prompts were written or templated by the publisher; the untraced rows' origin is not known to "
             "Stillroom.", "",
             "### Personal and Sensitive Information", "",
             "Not assessed by Stillroom, and not declared by the publisher.", "",
             "## Bias, Risks, and Limitations", "",
             "The rows are machine-generated and carry the biases and errors of the model(s) above; they were not "
             "reviewed by Stillroom.",
             f"{untraced} row(s) ({_pct(shares.get('untraced', 0))}) could not be traced to the ledger, so this "
             "card says nothing about where they came from." if untraced else
             ("Every row was traced to the ledger." if dataset["rows"] else "The file holds no valid rows."),
             "", *_screening_lines(statement["screening"]), "",
             "## Provenance", "",
             f"A signed in-toto statement (`provenance.dsse.json`) accompanies this card. It names the file by its "
             f"sha256 and records the ledger's chain head (row {ledger['head_id']}, hash `{ledger['head_hash']}`; "
             f"the chain {'verified' if ledger['verified'] else 'did NOT verify: ' + str(ledger['verify_problem'])} "
             "when the statement was made). Check it with:", "",
             "```", f"stillroom verify provenance.dsse.json {data_path}", "```", ""]
    return "\n".join(lines)


def _backend_lines(runtime: dict[str, Any]) -> list[str]:
    """Which llama.cpp CPU code made the traced rows (logged per row), as Markdown lines."""
    backends = runtime.get("cpu_backends") or []
    if not backends:
        return []
    lines = ["llama.cpp CPU code path of the traced generations (logged with each row):", ""]
    for item in backends:
        extra = "on" if item.get("use_extra_bufts") else "off"
        avoided = "avoided" if item.get("amx_path_avoided") else "NOT avoided"
        lines.append(f"- {item.get('isa', UNKNOWN)} ({item.get('build_features', '')}), extra buffer types {extra}, "
                     f"AMX path {avoided}: {item.get('generations', 0)} generations")
    return [*lines, ""]


def _runtime_text(runtime: dict[str, Any]) -> str:
    logged = runtime.get("llama_cpp_python_logged")
    if logged:
        return ", ".join(item["version"] for item in logged)
    return f"{runtime.get('llama_cpp_python_installed', UNKNOWN)}, installed when the statement was made"


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """A card's YAML metadata and its Markdown body (for tests and the GUI's preview)."""
    if not text.startswith("---\n"):
        return {}, text
    end = text.find("\n---", 4)
    if end < 0:
        return {}, text
    return yaml.safe_load(text[4:end]) or {}, text[end + 4:].lstrip("\n")
