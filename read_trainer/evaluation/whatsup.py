"""What'sUp (Kamath et al., 2023): spatial relations, from the official annotation files.

Six files, the correct caption always first:

- Controlled A / B (``controlled_images_dataset.json``, ``controlled_clevr_dataset.json``):
  a list of ``{"image_path": "data/controlled_images/<x>.jpeg", "caption_options": [4 captions]}``;
- COCO-QA one / two objects (``coco_qa_{one,two}_obj.json``): a list of
  ``[coco_image_id, true_caption, false_caption]``, images ``val2017/<id:012d>.jpg``;
- VG-QA one / two objects (``vg_qa_{one,two}_obj.json``): the same, images ``vg_images/<id>.jpg``.

The image root is What'sUp's ``data/`` folder: the controlled paths in the JSON are
written relative to the repository root (``data/...``), so that leading ``data/`` is
dropped. The headline is the mean of three groups (controlled, COCO, VG), each the
mean of its two subsets; under the READ harness's protocol (``protocol.py``) each group
instead pools the rows of its two files (``pooled_groups``), as the paper's evaluator did.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

from . import rules
from .items import Benchmark, Item, first, image_file, require_file

WHATSUP_FILES = {
    "controlled_a": "controlled_images_dataset.json",
    "controlled_b": "controlled_clevr_dataset.json",
    "coco_qa_one": "coco_qa_one_obj.json",
    "coco_qa_two": "coco_qa_two_obj.json",
    "vg_qa_one": "vg_qa_one_obj.json",
    "vg_qa_two": "vg_qa_two_obj.json",
}
WHATSUP_GROUPS = {
    "controlled": ["controlled_a", "controlled_b"],
    "coco": ["coco_qa_one", "coco_qa_two"],
    "vg": ["vg_qa_one", "vg_qa_two"],
}
WHATSUP_HINT = "annotations and images come from the What'sUp project (amitakamath/whatsup_vlms on GitHub; " \
               "its data/ folder, with val2017/ from MS-COCO and vg_images/ from Visual Genome)"


def _relative_to_data(image_path: str) -> PurePosixPath:
    parts = PurePosixPath(image_path).parts
    return PurePosixPath(*parts[1:]) if parts and parts[0] == "data" else PurePosixPath(image_path)


def _items(subset: str, rows: list, image_root: Path) -> list[Item]:
    if subset.startswith("controlled"):
        return [Item(f"{subset}/{i}", tuple(row["caption_options"]),
                     (image_file(image_root, _relative_to_data(row["image_path"]), "What'sUp image", WHATSUP_HINT),))
                for i, row in enumerate(rows)]
    folder, name = ("val2017", "{:012d}.jpg") if subset.startswith("coco") else ("vg_images", "{}.jpg")
    return [Item(f"{subset}/{i}", (row[1], row[2]),
                 (image_file(image_root / folder, name.format(int(row[0])), "What'sUp image", WHATSUP_HINT),))
            for i, row in enumerate(rows)]


def load_whatsup(annotation_dir: str | Path, image_root: str | Path,
                 subsets: tuple[str, ...] = tuple(WHATSUP_FILES), limit: int | None = None) -> Benchmark:
    """What'sUp: the true caption beats every other option; total = mean of the three group means."""
    data = {}
    for subset in subsets:
        path = require_file(Path(annotation_dir) / WHATSUP_FILES[subset], "annotation file", WHATSUP_HINT)
        with open(path, encoding="utf-8") as f:
            data[subset] = _items(subset, first(json.load(f), limit), Path(image_root))
    groups = {g: [s for s in names if s in data] for g, names in WHATSUP_GROUPS.items()}
    groups = {g: names for g, names in groups.items() if names}
    return Benchmark("whatsup", data, rules.positive_beats_all, averaging="macro_of_groups", groups=groups,
                     description="What'sUp: spatial prepositions, controlled + COCO + VG subsets")
