"""The documentation holds together: every relative link resolves, the README stays short, and every
citation of a document in the code names a file (and section) that exists in the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCUMENTS = [README, *sorted((REPO / "docs").glob("*.md"))]
README_MAX_LINES = 300
README_MAX_CELL = 200

FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
# A citation in code: docs/NAME.md, optionally followed by a quoted section heading.
CITATION = re.compile(r"(docs/[\w.-]+\.md)(?:,?\s+\"([^\"]+)\")?")


def prose(text: str) -> str:
    """TEXT without fenced code blocks and code spans, where a bracket is not a link."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def headings(text: str) -> list[str]:
    """The headings of a Markdown document, outside code blocks."""
    return HEADING.findall(FENCE.sub("", text))


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    plain = heading.replace("`", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", plain).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor a document's headings make, with GitHub's -1, -2 suffixes for repeats."""
    seen: dict[str, int] = {}
    found = set()
    for heading in headings(path.read_text()):
        base = anchor(heading)
        count = seen.get(base, 0)
        found.add(base if count == 0 else f"{base}-{count}")
        seen[base] = count + 1
    return found


def broken_links(doc: Path) -> list[str]:
    """The relative links of DOC whose file, or anchor in a Markdown file, does not exist."""
    broken = []
    for target in LINK.findall(prose(doc.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path_part, _, fragment = target.partition("#")
        path = (doc.parent / path_part).resolve() if path_part else doc
        if not path.exists():
            broken.append(f"{target} (no such file)")
        elif fragment and path.suffix == ".md" and fragment not in anchors(path):
            broken.append(f"{target} (no such section)")
    return broken


@pytest.mark.parametrize("doc", DOCUMENTS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(doc: Path) -> None:
    assert broken_links(doc) == []


def test_the_link_check_finds_a_missing_file_and_a_missing_section(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other\n\n## A `code` heading: yes\n")
    doc = tmp_path / "doc.md"
    doc.write_text("[ok](other.md#a-code-heading-yes) [gone](gone.md) [bad](other.md#nope) "
                   "[web](https://example.org/x) `[code](skipped.md)`\n\n```\n[block](skipped.md)\n```\n")
    assert broken_links(doc) == ["gone.md (no such file)", "other.md#nope (no such section)"]


def test_readme_is_short() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail into docs/"


def test_readme_table_cells_are_short() -> None:
    rows = [line for line in prose(README.read_text()).splitlines() if line.startswith("|")]
    long = [cell.strip()[:60] for row in rows for cell in re.split(r"(?<!\\)\|", row)
            if len(cell.strip()) > README_MAX_CELL]
    assert long == []


def cited_files() -> list[tuple[Path, str]]:
    """Every source file of the project with its text: the code that may cite documents."""
    roots = [REPO / "src", REPO / "e2e", REPO / "benchmarks", REPO / "tests", REPO / "charts"]
    files = [p for root in roots for p in root.rglob("*") if p.suffix in (".py", ".yaml", ".tpl", ".txt", ".sh")
             and p != Path(__file__).resolve()]  # this file names what it looks for
    return [(p, p.read_text(errors="replace")) for p in files]


def test_code_cites_only_documents_of_the_repository() -> None:
    wrong = []
    for path, text in cited_files():
        where = path.relative_to(REPO)
        if "DESIGN.md" in text:
            wrong.append(f"{where}: DESIGN.md is not in the repository")
        for name, section in CITATION.findall(text):
            cited = REPO / name
            if not cited.exists():
                wrong.append(f"{where}: {name} does not exist")
            elif section and section not in headings(cited.read_text()):
                wrong.append(f"{where}: {name} has no section {section!r}")
    assert wrong == []
