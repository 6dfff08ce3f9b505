"""Winoground (Thrush et al., 2022): two images, two captions with the same words in a different order.

Local format, as released: ``examples.jsonl`` (one JSON object per line with ``id,
image_0, image_1, caption_0, caption_1, collapsed_tag, ...``) and ``images/<image_k>.png``.
The hub release (``facebook/winoground``, gated) has the same columns with decoded
images; see ``hub.load_winoground_from_hub``. Text, image and group scores are
reported over all 400 examples (micro) and per ``collapsed_tag`` (Object, Relation, Both).
"""

from __future__ import annotations

import json
from pathlib import Path

from . import rules
from .items import Benchmark, Item, first, image_file, require_file

WINOGROUND_HINT = "examples.jsonl and images/ come from the Winoground release (facebook/winoground on the " \
                  "Hugging Face Hub, gated: accept its terms there and download it once)"


def winoground_item(row: dict, images: tuple) -> Item:
    return Item(str(row["id"]), (row["caption_0"], row["caption_1"]), images)


def group_by_tag(rows_and_items: list[tuple[dict, Item]]) -> dict[str, list[Item]]:
    data: dict[str, list[Item]] = {}
    for row, item in rows_and_items:
        data.setdefault(row.get("collapsed_tag") or "all", []).append(item)
    return data


def winoground_benchmark(data: dict[str, list[Item]]) -> Benchmark:
    return Benchmark("winoground", data, rules.winoground, averaging="micro", primary_metric="group",
                     description="Winoground: text, image and group scores")


def load_winoground(folder: str | Path, image_root: str | Path | None = None, limit: int | None = None) -> Benchmark:
    """Winoground from ``folder/examples.jsonl``; images from ``image_root`` (default ``folder/images``)."""
    path = require_file(Path(folder) / "examples.jsonl", "annotation file", WINOGROUND_HINT)
    with open(path, encoding="utf-8") as f:
        rows = first([json.loads(line) for line in f if line.strip()], limit)
    image_root = Path(image_root) if image_root is not None else Path(folder) / "images"
    pairs = [(row, winoground_item(row, tuple(
        image_file(image_root, f"{row[k]}.png", "Winoground image", WINOGROUND_HINT) for k in ("image_0", "image_1"))))
        for row in rows]
    return winoground_benchmark(group_by_tag(pairs))
