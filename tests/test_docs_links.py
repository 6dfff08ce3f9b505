"""Every relative link in the README and docs/*.md resolves: the file exists, and an ``#anchor``
names a heading of the target page (GitHub's slugs)."""

import re
from pathlib import Path

import pytest
from docs_blocks import REPO, doc_files, prose_lines

LINK = re.compile(r"!?\[[^\]]*\]\((?P<target>[^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (``-`` and ``_`` kept), spaces to ``-``."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for _, line in prose_lines(path):
        heading = re.match(r"^#{1,6} (.+)$", line)
        if heading:
            base = slug(heading.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def broken_links(path: Path, root: Path = REPO) -> list[str]:
    broken = []
    for number, line in prose_lines(path):
        for match in LINK.finditer(line):
            target = match["target"]
            if re.match(r"^[a-z]+:", target):  # https:, mailto: -- not checked offline
                continue
            file_part, _, anchor = target.partition("#")
            resolved = (path.parent / file_part).resolve() if file_part else path
            if not resolved.exists():
                broken.append(f"{path.name}:{number}: {target} (no such file)")
            elif root not in resolved.parents and resolved != root:
                broken.append(f"{path.name}:{number}: {target} (outside the repository)")
            elif anchor and (resolved.suffix != ".md" or anchor not in anchors(resolved)):
                broken.append(f"{path.name}:{number}: {target} (no heading with that anchor)")
    return broken


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(path):
    assert broken_links(path) == []


def test_the_pages_are_linked_and_the_checker_catches_breaks(tmp_path):
    # Every docs page is reachable from the index, and the index from the README.
    index = (REPO / "docs" / "README.md").read_text()
    pages = {p.name for p in (REPO / "docs").glob("*.md")} - {"README.md"}
    assert pages and {p for p in pages if f"]({p})" not in index} == set()
    assert "](docs/README.md)" in (REPO / "README.md").read_text()
    # The checker is not vacuous: a missing file, a missing anchor and a good anchor.
    (tmp_path / "page.md").write_text("# A page\n\n## Large batches (`embedding_chunk_size`)\n")
    doc = tmp_path / "doc.md"
    doc.write_text("[a](page.md#large-batches-embedding_chunk_size) [b](nope.md) [c](page.md#nothing)\n"
                   "```bash\n[d](ignored-in-code.md)\n```\n")
    assert [b.split(": ", 1)[1] for b in broken_links(doc, root=tmp_path)] == ["nope.md (no such file)",
                                                               "page.md#nothing (no heading with that anchor)"]
