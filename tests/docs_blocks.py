"""The fenced code blocks of the README and docs/*.md, and which of them the docs test runs.

A ``bash``/``sh``/``python`` block runs unless the line right above its fence is
``<!-- docs-test: skip (reason) -->``; blocks in other languages (``text``, ``bibtex``, ...) are
not code to run. Shared by ``test_docs_code.py`` (runs them) and ``test_docs_links.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUNNABLE = {"bash", "sh", "shell", "python"}
SKIP = re.compile(r"^<!-- docs-test: skip \((?P<reason>[^)]+)\) -->$")
FENCE = re.compile(r"^```(?P<lang>[\w+-]*)\s*$")


@dataclass
class Block:
    file: Path
    line: int          # 1-based line of the opening fence
    lang: str
    code: str
    skip_reason: str | None

    @property
    def where(self) -> str:
        return f"{self.file.relative_to(REPO)}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.lang in RUNNABLE and self.skip_reason is None


def doc_files() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def blocks(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").split("\n")
    found, i = [], 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), None)
        if end is None:
            raise AssertionError(f"{path}:{i + 1}: code fence never closed")
        skip = SKIP.match(lines[i - 1]) if i else None
        found.append(Block(path, i + 1, fence["lang"], "\n".join(lines[i + 1:end]),
                           skip["reason"] if skip else None))
        i = end + 1
    return found


def prose_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of every line outside fenced code blocks."""
    inside, kept = False, []
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
        if line.startswith("```"):
            inside = not inside
            continue
        if not inside:
            kept.append((number, line))
    return kept
