"""The repository stands on its own: every fact its code and docs cite is inside it.

Two rules over every tracked text file:
- no citation of documents that live outside the repository (the team's design and protocol notes, or a
  ``shared`` folder beside the clone);
- every ``docs/….md`` path, and every relative link in a Markdown file, names a file that exists, and its
  ``#anchor``, if any, names a heading (or an explicit ``<a id>``) of that file, as GitHub renders anchors.
"""

from __future__ import annotations

import re
import subprocess
import unicodedata
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
THIS_FILE = Path(__file__).resolve().relative_to(REPO).as_posix()
_TEXT_SUFFIXES = {".py", ".md", ".txt", ".toml", ".cfg", ".ini", ".json", ".yml", ".yaml", ".sh", ".html", ".csv"}
_TEXT_NAMES = {"Makefile", "run", "Dockerfile"}
_SKIP_DIRS = {".git", ".venv", "build", "cdk.out", "node_modules", "__pycache__", ".mypy_cache", ".pytest_cache",
              ".ruff_cache", ".local"}

# Names assembled from parts so that this file does not match its own patterns.
_OUTSIDE_DOCS = "|".join(("DES" + "IGN", "PROTO" + "COLS", "STY" + "LE"))
OUTSIDE_CITATIONS = (
    # "<NAME>.md", "<NAME> §3", "<NAME> 1.8": the team's notes beside the repository.
    re.compile(rf"\b(?:{_OUTSIDE_DOCS})(?:\.md\b|\s*(?:'s\b|§|\d))"),
    # A folder next to the clone, by relative path or by path arithmetic in code.
    re.compile(r"\.\./shared\b|/work/shared\b|parent\s*/\s*[\"']shared[\"']"),
    # Bare section signs are how those notes were cited; the repository's own docs use links with anchors.
    # A public standard's section ("RFC 3339 §5.6") is not such a citation.
    re.compile("(?<!\\d )(?<!\\d)\u00a7"),
)
DOCS_PATH = re.compile(r"(?<![\w./-])(docs/[\w./-]+?\.md)(#[\w-]+)?")
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")


def tracked_files() -> list[Path]:
    """``git ls-files`` when the repository is a clone; otherwise every file outside tool and build folders."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, check=True, capture_output=True).stdout
        names = [name for name in listed.decode().split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        names = [path.relative_to(REPO).as_posix() for path in REPO.rglob("*")
                 if path.is_file() and not _SKIP_DIRS.intersection(path.relative_to(REPO).parts)]
    return [REPO / name for name in sorted(names) if (REPO / name).is_file()]


def text_files() -> list[Path]:
    return [path for path in tracked_files() if path.suffix in _TEXT_SUFFIXES or path.name in _TEXT_NAMES]


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return
    yield from enumerate(text.splitlines(), start=1)


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped (letters of any script, digits, ``_``
    and ``-`` kept), each space a hyphen."""
    kept = []
    for char in heading.strip().lower():
        if char in " -_" or char.isalnum() or unicodedata.category(char).startswith("M"):
            kept.append(char)
    return "".join(kept).replace(" ", "-")


@cache
def anchors_of(path: Path) -> frozenset[str]:
    """Every anchor a Markdown file offers: its headings (outside code fences, duplicates numbered as GitHub
    does) and explicit ``<a id="…">`` / ``<a name="…">`` targets."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    fenced = False
    for _, line in _lines(path):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if fenced:
            continue
        found.update(re.findall(r"<a\s+(?:id|name)=\"([^\"]+)\"", line))
        heading = re.match(r"^#{1,6}\s+(.+?)\s*#*\s*$", line)
        if heading:
            anchor = github_anchor(heading.group(1))
            count = seen.get(anchor, 0)
            seen[anchor] = count + 1
            found.add(anchor if count == 0 else f"{anchor}-{count}")
    return frozenset(found)


def _name(path: Path) -> str:
    return path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else str(path)


def check_target(target: Path, anchor: str | None) -> str | None:
    """None when ``target`` (and ``#anchor``) exists, else what is wrong."""
    if not target.exists():
        return f"{_name(target)} does not exist"
    if anchor and target.suffix == ".md" and anchor not in anchors_of(target):
        return f"{_name(target)} has no anchor #{anchor}"
    return None


def outside_citations(files: list[Path]) -> list[str]:
    problems = []
    for path in files:
        name = _name(path)
        if name == THIS_FILE:
            continue
        for number, line in _lines(path):
            if any(pattern.search(line) for pattern in OUTSIDE_CITATIONS):
                problems.append(f"{name}:{number}: {line.strip()[:120]}")
    return problems


def broken_doc_references(files: list[Path]) -> list[str]:
    problems = []
    for path in files:
        name = _name(path)
        for number, line in _lines(path):
            for match in DOCS_PATH.finditer(line):
                if name == THIS_FILE:
                    continue
                problem = check_target(REPO / match.group(1), (match.group(2) or "#")[1:] or None)
                if problem:
                    problems.append(f"{name}:{number}: {problem}")
            if path.suffix != ".md":
                continue
            for match in MARKDOWN_LINK.finditer(line):
                link = match.group(1)
                if re.match(r"^[a-z][a-z0-9+.-]*:", link) or link.startswith("<"):
                    continue  # http:, https:, mailto: …
                file_part, _, anchor = link.partition("#")
                target = (path.parent / file_part).resolve() if file_part else path
                problem = check_target(target, anchor or None)
                if problem:
                    problems.append(f"{name}:{number}: link {link}: {problem}")
    return problems


def test_no_tracked_file_cites_documents_outside_the_repository():
    problems = outside_citations(text_files())
    assert not problems, "cite docs/ instead of documents outside the repository:\n" + "\n".join(problems)


def test_every_cited_docs_page_and_anchor_exists():
    problems = broken_doc_references(text_files())
    assert not problems, "references to docs that do not exist:\n" + "\n".join(problems)


def test_the_design_and_every_channel_have_a_page():
    from chalicelib.channels.registry import ADAPTERS

    assert (REPO / "docs" / "design.md").exists()
    missing = [channel for channel in ADAPTERS if not (REPO / "docs" / "channels" / f"{channel}.md").exists()]
    assert not missing, f"channels without a page under docs/channels/: {missing}"


# --- the checks themselves catch what they are meant to catch --------------------------------------------------


@pytest.mark.parametrize("heading, anchor", [
    ("How callbacks are verified (`POST /callbacks/alipay/{account_id}`)",
     "how-callbacks-are-verified-post-callbacksalipayaccount_id"),
    ("Statements (T+1 reconciliation)", "statements-t1-reconciliation"),
    ("Digital RMB (e-CNY, 数字人民币): `ecny.wallet`", "digital-rmb-e-cny-数字人民币-ecnywallet"),
    ("SM2 variant (national cryptography)", "sm2-variant-national-cryptography"),
])
def test_anchors_are_computed_as_github_renders_them(heading, anchor):
    assert github_anchor(heading) == anchor


@pytest.mark.parametrize("line", [
    "see " + "DES" + "IGN.md for why",
    "# rule from " + "PROTO" + "COLS \u00a72.4",
    "(" + "PROTO" + "COLS 1.8 documents it)",
    "path = ROOT.parent / \"shared\" / \"vectors\"",
    "open('../" + "shared/x.json')",
    "the \u00a73.5 ranges",
])
def test_outside_citations_are_caught(tmp_path, line):
    sample = tmp_path / "probe.md"
    sample.write_text(line + "\n", encoding="utf-8")
    assert outside_citations([sample])


@pytest.mark.parametrize("line", ["timestamps per RFC 3339 \u00a75.6", "see docs/design.md#state-machine",
                                  "a DESIGNER's note", "PROTOCOL buffers"])
def test_ordinary_text_is_not_taken_for_an_outside_citation(tmp_path, line):
    sample = tmp_path / "probe.md"
    sample.write_text(line + "\n", encoding="utf-8")
    assert not outside_citations([sample])


def test_missing_pages_and_anchors_are_caught(tmp_path):
    stripe_page = REPO / "docs" / "channels" / "stripe.md"
    sample = tmp_path / "probe.md"
    sample.write_text(
        "# Probe\n"
        "code cites docs/channels/nowhere.md and docs/design.md#no-such-section, docs/design.md#state-machine;\n"
        f"[a]({stripe_page}#no-such-anchor) [b](missing.md) [ok](#probe) [good]({stripe_page}#idempotency-keys)\n"
        "[web](https://example.com/x.md) [self](#no-such-heading)\n",
        encoding="utf-8")
    problems = broken_doc_references([sample])
    assert len(problems) == 5, problems
    assert any("docs/channels/nowhere.md does not exist" in p for p in problems)
    assert any("docs/design.md has no anchor #no-such-section" in p for p in problems)
    assert any("stripe.md has no anchor #no-such-anchor" in p for p in problems)
    assert any("missing.md does not exist" in p for p in problems)
    assert any("probe.md has no anchor #no-such-heading" in p for p in problems)
