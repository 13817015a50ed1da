"""The documentation keeps up with the code: every command the CLI really builds is documented, the
README stays a front door, links lead somewhere, and the architecture page names only what exists."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from app.cli.main import cli

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCS = REPO / "docs"
ARCHITECTURE = DOCS / "architecture.md"
README_MAX_BYTES = 16_000
SOURCE_DIRS = ("app", "resources", "tests")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]+`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.MULTILINE)
IDENTIFIER = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
FILE_SUFFIXES = (".py", ".md", ".yaml", ".svg", ".png", ".sh", ".spec", ".ini", ".json", ".jsonl")


def doc_pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command and subcommand under `group`, as the words a user types after `stillroom`.
    A hidden subcommand (`provenance DATASET` runs the hidden `write`) is documented as its group."""
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        if command.hidden:
            continue
        path = (*prefix, name)
        yield path
        if isinstance(command, click.Group):
            yield from command_paths(command, path)


def test_the_cli_walk_sees_nested_commands() -> None:
    paths = set(command_paths(cli))
    assert {("generate",), ("log", "verify"), ("log", "prove"), ("provenance", "key"), ("keys", "revoke")} <= paths


@pytest.mark.parametrize("path", sorted(command_paths(cli)), ids=" ".join)
def test_every_command_is_documented(path: tuple[str, ...]) -> None:
    text = "\n".join(page.read_text(encoding="utf-8") for page in doc_pages())
    words = r"\s+".join(re.escape(word) for word in ("stillroom", *path))
    assert re.search(words + r"(?![\w-])", text), f"`stillroom {' '.join(path)}` is in no page of README.md or docs/"


def test_readme_stays_a_front_door() -> None:
    size = len(README.read_bytes())
    assert size < README_MAX_BYTES, f"README.md is {size} bytes; move reference material to docs/"


def slug(heading: str) -> str:
    """The anchor a Markdown renderer (GitHub's rules) gives a heading."""
    text = INLINE_CODE.sub(lambda found: found.group(0).strip("`"), heading).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(title) for title in HEADING.findall(FENCE.sub("", page.read_text(encoding="utf-8")))}


def relative_links(page: Path) -> Iterator[str]:
    prose = INLINE_CODE.sub("", FENCE.sub("", page.read_text(encoding="utf-8")))
    for target in LINK.findall(prose):
        if not re.match(r"[a-z]+:", target):
            yield target


def test_slug_follows_the_renderers_rules() -> None:
    assert slug("Tamper evidence: what is and is not detected") == "tamper-evidence-what-is-and-is-not-detected"
    assert slug("The CPU code llama.cpp runs") == "the-cpu-code-llamacpp-runs"
    assert slug("Backing up, and opening the ledger in other tools") == "backing-up-and-opening-the-ledger-in-other-tools"


@pytest.mark.parametrize("page", doc_pages(), ids=lambda page: page.name)
def test_relative_links_lead_to_files_and_headings_that_exist(page: Path) -> None:
    broken = []
    for target in relative_links(page):
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page
        if not linked.exists():
            broken.append(target)
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(target)
    assert not broken, f"{page.name}: links to nothing: {broken}"


def source_texts() -> dict[Path, str]:
    """The code a name may live in (this file left out: it quotes names that must not exist)."""
    here = Path(__file__).resolve()
    return {path: path.read_text(encoding="utf-8") for folder in SOURCE_DIRS
            for path in (REPO / folder).rglob("*")
            if path.suffix in (".py", ".yaml") and path.is_file() and path != here}


def defines(text: str, name: str) -> bool:
    """Whether Python source `text` defines `name`: a function, a class, or an assignment."""
    return re.search(rf"^\s*(?:(?:async\s+)?def|class)\s+{name}\b|^\s*{name}\s*[:=]", text, re.MULTILINE) is not None


def missing_name(token: str, sources: dict[Path, str]) -> str | None:
    """Why `token` (a backticked name on the architecture page) names nothing, or None if it exists."""
    token = re.sub(r"\(.*\)$", "", token.removeprefix("@"))  # a call names its function
    if "<" in token or " " in token:
        return None  # a placeholder or a phrase, not a name
    if re.fullmatch(r"[a-z]+(-[a-z]+)+", token):  # a thread's name
        return None if any(f'"{token}"' in text for text in sources.values()) else "found nowhere in the code"
    if token.endswith("/"):  # a folder, from the root or by its name inside a package
        found = (REPO / token).is_dir() or any(path.parent.name == token[:-1] for path in sources)
        return None if found else "no such folder"
    if "/" in token or token.endswith(FILE_SUFFIXES):
        found = (REPO / token).exists() or any(path.name == token for path in sources)
        return None if found else "no such file"
    if not IDENTIFIER.fullmatch(token):
        return None
    parts = token.split(".")
    if parts[0] == "app":
        module = REPO.joinpath(*parts)
        if module.with_suffix(".py").exists() or (module / "__init__.py").exists():
            return None
        owner = REPO.joinpath(*parts[:-1]).with_suffix(".py")
        return None if owner.exists() and defines(owner.read_text(encoding="utf-8"), parts[-1]) else "no such module or name"
    if len(parts) == 2:  # Class.member, or module.name
        owner, member = parts
        for path, text in sources.items():
            if (re.search(rf"^class\s+{owner}\b", text, re.MULTILINE) or path.stem == owner) and defines(text, member):
                return None
        return "no class or module with that member"
    if any(defines(text, token) for text in sources.values()):
        return None
    word = re.compile(rf"(?<![\w-]){re.escape(token)}(?![\w-])")
    return None if any(word.search(text) for text in sources.values()) else "found nowhere in the code"


def test_the_architecture_page_names_only_what_exists() -> None:
    sources = source_texts()
    text = FENCE.sub("", ARCHITECTURE.read_text(encoding="utf-8"))
    tokens = sorted({found.group(0).strip("`") for found in INLINE_CODE.finditer(text)})
    problems = {token: why for token in tokens if (why := missing_name(token, sources))}
    assert not problems, problems


def test_the_name_check_catches_what_does_not_exist() -> None:
    sources = source_texts()
    assert missing_name("Ledger.append_many", sources) is None
    assert missing_name("app/core/store/migrations.py", sources) is None
    assert missing_name("Ledger.append_all", sources) == "no class or module with that member"
    assert missing_name("app/core/store/writer.py", sources) == "no such file"
    assert missing_name("relay_result()", sources) == "found nowhere in the code"
    assert missing_name("submit(job, on_done, on_error)", sources) is None
    assert missing_name("stillroom-model", sources) is None
    assert missing_name("stillroom-writer", sources) == "found nowhere in the code"
