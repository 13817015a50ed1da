"""Batch job specs: a prompt template with named slots, inputs, samples, sampling parameters, output.

A job file is YAML:

    name: capitals
    workflow: capitals-v1          # ledger workflow (default: the name)
    mode: completion               # or chat
    system: "Answer briefly."      # chat only
    template: "Q: What is the capital of {country}?\\nA:"
    inputs: countries.csv          # CSV or JSONL file (relative to the YAML), or an inline list
    samples: 2                     # generations per input
    params: {temperature: 0.7, max_tokens: 64, seed: 1}
    output: capitals.jsonl         # relative to the YAML

A job file may come from someone else, so its output stays in the job file's folder: an absolute
path, `~`, or a path that leaves the folder (`../`, a symbolic link out of it) is refused with
OutputOutsideError unless the caller confirmed it (`allow_outside`), and an existing file is never
replaced without confirmation (`check_output_free` raises OutputExistsError).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import string
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from app.core.errors import StillroomError
from app.core.models.sampling import SamplingParams

MAX_SAMPLES = 1000
DEFAULT_SLOT = "input"


class BatchSpecError(StillroomError):
    """A job file or its inputs cannot be used; the message names the file and the problem."""


class OutputOutsideError(BatchSpecError):
    """The output path is absolute, starts with ~ or leaves the job's folder, and was not confirmed."""

    def __init__(self, message: str, path: Path, base: Path) -> None:
        super().__init__(message)
        self.path, self.base = path, base


class OutputExistsError(BatchSpecError):
    """The output file exists already and replacing it was not confirmed."""

    def __init__(self, message: str, path: Path) -> None:
        super().__init__(message)
        self.path = path


@dataclass
class BatchSpec:
    """A validated job: everything needed to run (and resume) it, inputs included."""

    name: str
    workflow: str
    mode: str
    template: str
    items: list[dict[str, str]]
    samples: int = 1
    system: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    output: str = ""
    model: str | None = None

    @property
    def slots(self) -> list[str]:
        """The slot names used in the template, in order of first use."""
        return template_slots(self.template)

    @property
    def total(self) -> int:
        """How many generations the job makes."""
        return len(self.items) * self.samples

    def render(self, item: dict[str, str]) -> str:
        """The prompt for one input."""
        return self.template.format_map(item)

    def sampling(self, index: int, sample: int) -> SamplingParams:
        """Sampling parameters for one generation; a base seed gives each generation its own seed."""
        params = dict(self.params)
        if params.get("seed") is not None:
            params["seed"] = (int(params["seed"]) + index * self.samples + sample) % 2**32
        return SamplingParams(**params)

    def to_json(self) -> str:
        """Canonical JSON of the spec (stored with the job)."""
        return json.dumps(asdict(self), sort_keys=True, ensure_ascii=False)

    def sha256(self) -> str:
        """Hash of the canonical spec."""
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()

    @classmethod
    def from_json(cls, text: str) -> BatchSpec:
        """The spec stored with a job."""
        return cls(**json.loads(text))


def template_slots(template: str) -> list[str]:
    """Slot names of a `{name}` template; raises BatchSpecError for positional or malformed slots."""
    slots: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise BatchSpecError(f"the template is malformed: {exc} (write a literal brace as {{{{ or }}}})") from exc
    for _, name, _, _ in parsed:
        if name is None:
            continue
        if not name.isidentifier():
            raise BatchSpecError(f"the template slot {{{name}}} must be a name such as {{topic}}")
        if name not in slots:
            slots.append(name)
    return slots


def read_inputs(source: Any, base: Path) -> list[dict[str, str]]:
    """Inputs from an inline list (of strings or mappings) or a CSV / JSONL file."""
    if isinstance(source, list):
        return [_item(value, f"inputs[{i}]") for i, value in enumerate(source)]
    if not isinstance(source, str):
        raise BatchSpecError("'inputs' must be a file name or a list")
    path = (base / source).expanduser()
    if not path.exists():
        raise BatchSpecError(f"{path}: input file not found")
    try:
        if path.suffix.lower() == ".csv":
            with path.open(newline="", encoding="utf-8") as handle:
                return [_item(row, f"{path.name} row {i + 2}") for i, row in enumerate(csv.DictReader(handle))]
        items = []
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        items.append(_item(json.loads(line), f"{path.name} line {number}"))
                    except json.JSONDecodeError as exc:
                        raise BatchSpecError(f"{path} line {number}: not valid JSON ({exc.msg})") from exc
        return items
    except UnicodeDecodeError as exc:
        raise BatchSpecError(f"{path}: not UTF-8 text ({exc.reason})") from exc


def _item(value: Any, where: str) -> dict[str, str]:
    if isinstance(value, str):
        return {DEFAULT_SLOT: value}
    if isinstance(value, dict):
        return {str(k): "" if v is None else str(v) for k, v in value.items() if k is not None}
    raise BatchSpecError(f"{where}: an input must be a string or an object, got {type(value).__name__}")


def resolve_output(value: Any, base: Path, origin: str = "job", allow_outside: bool = False) -> Path:
    """The output file named by a job: relative to `base` (the job file's folder). An absolute path,
    one starting with ~, or one whose resolved location is not inside `base` raises
    OutputOutsideError unless `allow_outside`."""
    text = str(value).strip()
    if not text or "\x00" in text:
        raise BatchSpecError(f"{origin}: 'output' must be a file name")
    named = Path(text)
    home_relative = text.startswith("~")
    folder = base.resolve()
    path = (folder / named.expanduser()).resolve()
    if path == folder or text.endswith(("/", os.sep)):
        raise BatchSpecError(f"{origin}: 'output' names a folder ({text!r}); name a file such as out.jsonl")
    outside = named.is_absolute() or home_relative or not path.is_relative_to(folder)
    if outside and not allow_outside:
        raise OutputOutsideError(
            f"{origin}: the output {text!r} is outside the job's folder {folder} (it resolves to {path}); "
            "outputs are written beside the job file unless you confirm another place "
            "(stillroom batch run --allow-outside-output)", path, folder)
    return path


def check_output_free(path: Path | str, force: bool = False) -> None:
    """Raise OutputExistsError when something is at `path` already (a file, a folder or a symbolic
    link) and `force` is not set; a folder is never replaced."""
    target = Path(path)
    if not os.path.lexists(target):
        return
    if target.is_dir() and not target.is_symlink():
        raise BatchSpecError(f"{target}: the batch output is a folder, not a file")
    if not force:
        raise OutputExistsError(f"{target}: the batch output exists already and would be replaced; "
                                "choose another output, move the file away, or confirm with "
                                "stillroom batch run --force", target)


def load_spec(path: Path, allow_outside: bool = False) -> BatchSpec:
    """Read and validate a job file. Every input must fill every slot of the template; the output
    must stay in the job file's folder unless `allow_outside` (see resolve_output)."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BatchSpecError(f"{path}: job file not found") from exc
    except yaml.YAMLError as exc:
        raise BatchSpecError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(raw, dict):
        raise BatchSpecError(f"{path}: a job file is a YAML mapping with name, template, inputs and output")
    return build_spec(raw, path.parent, str(path), allow_outside)


def build_spec(raw: dict[str, Any], base: Path, origin: str = "job", allow_outside: bool = False) -> BatchSpec:
    """Validate a job given as a mapping (from YAML or the GUI); `base` is the folder relative paths
    are read from and the output must stay in unless `allow_outside`."""
    missing = [key for key in ("name", "template", "inputs", "output") if not raw.get(key)]
    if missing:
        raise BatchSpecError(f"{origin}: missing {', '.join(missing)}")
    mode = raw.get("mode", "completion")
    if mode not in ("completion", "chat"):
        raise BatchSpecError(f"{origin}: mode must be completion or chat, got {mode!r}")
    samples = raw.get("samples", 1)
    if not isinstance(samples, int) or not 1 <= samples <= MAX_SAMPLES:
        raise BatchSpecError(f"{origin}: samples must be a whole number from 1 to {MAX_SAMPLES}")
    params = raw.get("params") or {}
    try:
        SamplingParams(**params)
    except TypeError as exc:
        raise BatchSpecError(f"{origin}: unknown sampling parameter ({exc})") from exc
    except ValueError as exc:
        raise BatchSpecError(f"{origin}: {exc}") from exc
    template = str(raw["template"])
    slots = template_slots(template)
    items = read_inputs(raw["inputs"], base)
    if not items:
        raise BatchSpecError(f"{origin}: the inputs are empty")
    for index, item in enumerate(items):
        absent = [slot for slot in slots if slot not in item]
        if absent:
            raise BatchSpecError(f"{origin}: input {index + 1} has no value for slot(s) {', '.join(absent)} "
                                 f"(it has {', '.join(sorted(item)) or 'nothing'})")
    output = str(resolve_output(raw["output"], base, origin, allow_outside))
    return BatchSpec(name=str(raw["name"]), workflow=str(raw.get("workflow") or raw["name"]), mode=mode,
                     template=template, items=items, samples=samples, system=raw.get("system"), params=params,
                     output=output, model=raw.get("model"))
