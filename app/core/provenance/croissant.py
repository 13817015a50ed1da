"""The dataset's Croissant 1.1 description (JSON-LD), with the RAI vocabulary and PROV-O.

The data file is a FileObject with its sha256; a RecordSet names its fields. A nested column (a
ShareGPT `conversations` list or OpenAI `messages`) becomes an array field whose sub-fields are
the keys seen in the first rows (role/content, from/value). `mlcroissant validate` accepts the
result and `mlcroissant load` reads its records, offline.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from app.core.provenance.statement import NOT_DECLARED, UNKNOWN, method_text, model_label

CROISSANT_VERSION = "http://mlcommons.org/croissant/1.1"
ENCODINGS = {"jsonl": "application/jsonlines", "json": "application/json", "csv": "text/csv",
             "parquet": "application/x-parquet", "markdown": "text/markdown"}
DATA_TYPES = {"text": "sc:Text", "integer": "sc:Integer", "float": "sc:Float", "boolean": "sc:Boolean",
              "json": "sc:Text"}
TSV = "text/tab-separated-values"
SAMPLE_ROWS = 200
FILE_ID = "data-file"
RECORD_SET = "records"

CONTEXT: dict[str, Any] = {
    "@language": "en", "@vocab": "https://schema.org/", "sc": "https://schema.org/",
    "cr": "http://mlcommons.org/croissant/", "rai": "http://mlcommons.org/croissant/RAI/",
    "dct": "http://purl.org/dc/terms/", "prov": "http://www.w3.org/ns/prov#",
    "arrayShape": "cr:arrayShape", "citeAs": "cr:citeAs", "column": "cr:column", "conformsTo": "dct:conformsTo",
    "containedIn": "cr:containedIn", "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"}, "description": {"@container": "@language"},
    "equivalentProperty": "cr:equivalentProperty", "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract", "field": "cr:field", "fileProperty": "cr:fileProperty", "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet", "format": "cr:format", "includes": "cr:includes", "isArray": "cr:isArray",
    "isLiveDataset": "cr:isLiveDataset", "jsonPath": "cr:jsonPath", "key": "cr:key", "md5": "cr:md5",
    "name": {"@container": "@language"}, "parentField": "cr:parentField", "path": "cr:path",
    "recordSet": "cr:recordSet", "references": "cr:references", "regex": "cr:regex", "repeated": "cr:repeated",
    "replace": "cr:replace", "samplingRate": "cr:samplingRate", "separator": "cr:separator", "source": "cr:source",
    "subField": "cr:subField", "transform": "cr:transform",
}


def _model_key(model: dict[str, Any]) -> str:
    """A short id for a model entry: its sha256's start, or a digest of how a proxied engine named it."""
    identity = model.get("identity")
    if isinstance(identity, dict):
        return hashlib.sha256(f"{identity.get('method')}:{identity.get('value')}".encode()).hexdigest()[:16]
    return str(model["sha256"])[:16]


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "field"


def nested_keys(dataset_path: Path, file_format: str, columns: list[str]) -> dict[str, tuple[bool, list[str]]]:
    """For each column holding objects: (is a list of objects, the keys seen in the first rows)."""
    from app.core.provenance.dataset import DatasetError, sample_records  # noqa: PLC0415

    try:  # the dataset reader's bounds: nesting depth, Parquet sizes, record size
        samples = [item for item in sample_records(dataset_path, SAMPLE_ROWS) if isinstance(item, dict)]
    except DatasetError:
        samples = []
    found: dict[str, tuple[bool, list[str]]] = {}
    for column in columns:
        keys: dict[str, None] = {}
        is_list = None
        for item in samples:
            value = item.get(column)
            if isinstance(value, list):
                objects = [v for v in value if isinstance(v, dict)]
                if objects:
                    is_list = True if is_list is None else is_list
                for obj in objects:
                    keys.update(dict.fromkeys(k for k in obj if isinstance(k, str)))
            elif isinstance(value, dict):
                is_list = False if is_list is None else is_list
                keys.update(dict.fromkeys(k for k in value if isinstance(k, str)))
        if keys and is_list is not None:
            found[column] = (is_list, list(keys))
    return found


def _source(column: str, file_format: str, transform: str | None = None) -> dict[str, Any]:
    extract = {"jsonPath": f"$[*].{column}"} if file_format == "json" else {"column": column}
    source: dict[str, Any] = {"fileObject": {"@id": FILE_ID}, "extract": extract}
    if transform:
        source["transform"] = {"jsonPath": transform}
    return source


def record_fields(statement: dict[str, Any], dataset_path: Path) -> list[dict[str, Any]]:
    """The RecordSet's fields: one per column; nested columns with sub-fields."""
    dataset = statement["dataset"]
    columns, types, file_format = list(dataset["columns"]), dataset["column_types"], dataset["format"]
    nested = nested_keys(dataset_path, file_format, [c for c in columns if types.get(c) == "json"])
    fields = []
    for column in columns:
        field_id = f"{RECORD_SET}/{_slug(column)}"
        if column in nested and file_format != "json":
            is_list, keys = nested[column]
            field: dict[str, Any] = {"@type": "cr:Field", "@id": field_id, "name": column,
                                     "description": f"the {column} of each row, one entry per message"
                                     if is_list else f"the {column} object of each row",
                                     "subField": [{"@type": "cr:Field", "@id": f"{field_id}/{_slug(key)}", "name": key,
                                                   "dataType": "sc:Text",
                                                   "source": _source(column, file_format, key)} for key in keys]}
            if is_list:
                field["isArray"], field["arrayShape"] = True, "-1"
            fields.append(field)
            continue
        fields.append({"@type": "cr:Field", "@id": field_id, "name": column,
                       "dataType": DATA_TYPES.get(types.get(column, "text"), "sc:Text"),
                       "source": _source(column, file_format)})
    return fields


def encoding_format(dataset: dict[str, Any]) -> str:
    """The file's MIME type as Croissant names it (a tab-separated file is TSV)."""
    if dataset["format"] == "csv" and dataset.get("delimiter") == "\t":
        return TSV
    return ENCODINGS[dataset["format"]]


def _declared(value: str) -> str | None:
    return None if value == NOT_DECLARED else value


def croissant_document(statement: dict[str, Any], dataset_path: Path | str, content_url: str) -> dict[str, Any]:
    """The Croissant JSON-LD document for the statement's dataset (`content_url`: the file, relative
    to where croissant.json will be written)."""
    dataset_path = Path(dataset_path)
    dataset, declared, matching = statement["dataset"], statement["declared"], statement["matching"]
    shares, timeframe, screening = matching["shares"], statement["timeframe"], statement["screening"]
    title = _declared(declared["name"]) or Path(dataset["name"]).stem
    models = statement["models"]
    model_names = ", ".join(model_label(m) for m in models) or "no traced model"
    traced = shares.get("traced-exact", 0) + shares.get("traced-near", 0)
    doc: dict[str, Any] = {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": CROISSANT_VERSION,
        "name": title,
        "description": _declared(declared["description"]) or
        f"Machine-generated dataset {dataset['name']}; the publisher has not declared a description.",
        "license": _declared(declared["license"]) or NOT_DECLARED,
        "datePublished": statement["created_at"][:10],
        "version": "1.0.0",
        "citeAs": f"{title}, dataset file {dataset['name']} (sha256 {dataset['sha256']})",
        "keywords": ["synthetic", "machine-generated", "provenance"],
        "isLiveDataset": False,
        "rai:dataCollection": (
            f"Generated by language models run locally with llama.cpp and logged in a hash-chained ledger by "
            f"Stillroom {statement['generator']['version']}. Models: {model_names}. "
            f"{traced * 100:.1f}% of rows traced to the ledger ({shares.get('traced-exact', 0) * 100:.1f}% exactly, "
            f"{shares.get('traced-near', 0) * 100:.1f}% after edits)."),
        "rai:dataCollectionType": ["Software Collection"],
        "rai:dataCollectionTimeframe": [t for t in (timeframe["first_generation"], timeframe["last_generation"]) if t],
        "rai:machineAnnotationTools": [model_label(m) for m in models],
        "rai:dataManipulationProtocol": (
            f"Rows that differ from their logged generation were matched as near-duplicates "
            f"({method_text(matching.get('method'))}); {dataset['malformed_rows']} malformed row(s) in the file."),
        "rai:dataLimitations": (
            f"{shares.get('untraced', 0) * 100:.1f}% of rows could not be traced to the ledger; nothing is known "
            "here about their origin. Machine-generated text may be wrong."),
        "rai:dataBiases": (
            "Carries the biases of the generating model(s); not measured by Stillroom. " + _screening_text(screening)),
        "rai:personalSensitiveInformation": "Not assessed by Stillroom, and not declared by the publisher.",
        "rai:dataUseCases": _declared(declared["intended_use"]) or NOT_DECLARED,
        "prov:wasGeneratedBy": {
            "@type": "prov:Activity", "@id": "generation",
            "name": "local generation logged by Stillroom",
            "prov:startedAtTime": timeframe["first_generation"] or UNKNOWN,
            "prov:endedAtTime": timeframe["last_generation"] or UNKNOWN,
            "prov:wasAssociatedWith": {"@type": "prov:SoftwareAgent", "@id": "stillroom",
                                       "name": f"Stillroom {statement['generator']['version']} with llama-cpp-python "
                                               f"{statement['runtime'].get('llama_cpp_python_installed', UNKNOWN)}"},
            "prov:used": [{"@type": "prov:Entity", "@id": f"model-{_model_key(m)}", "name": m["name"],
                           "sha256": m["sha256"], "encodingFormat": "application/x-gguf",
                           "description": f"{m['architecture']}, {m['quantization']}, license {m['license']}, "
                                          f"base model {m['base_model']}"} for m in models],
        },
        "distribution": [{"@type": "cr:FileObject", "@id": FILE_ID, "name": dataset["name"],
                          "contentUrl": content_url, "contentSize": f"{dataset['size_bytes']} B",
                          "encodingFormat": encoding_format(dataset), "sha256": dataset["sha256"]}],
        "recordSet": [{"@type": "cr:RecordSet", "@id": RECORD_SET, "name": RECORD_SET,
                       "description": f"the rows of {dataset['name']}",
                       "field": record_fields(statement, dataset_path)}],
    }
    creator = _declared(declared.get("creator", NOT_DECLARED))
    if creator:
        doc["creator"] = {"@type": "sc:Person", "name": creator}
    return doc


def _screening_text(screening: dict[str, Any]) -> str:
    if screening.get("status") != "run":
        return "Distillation-pattern screening was not run."
    flagged = [f"{w['name']}: " + ", ".join(f"{r['name']} {r['level']}" for r in w["resemblances"])
               for w in screening["workflows"] if w["resemblances"]]
    head = f"Screened with Stillroom's pattern library {screening['library_version']}: "
    return head + ("; ".join(flagged) if flagged else "no resemblance to a distillation pattern") + \
        " (resemblance, not a judgement of intent)."
