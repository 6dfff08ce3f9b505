"""VALSE (Parcalabescu et al., 2022) from its official JSON files.

Each of the 11 files maps a sample id to ``{dataset, image_file, caption, foil,
mturk: {caption, foil, other}, ...}``. The files hold validated and non-validated
samples; the official benchmark keeps those at least two of three annotators judged
the caption correct: ``mturk.caption >= 2``. The headline is micro accuracy over all
kept samples; per file ("instrument") and per phenomenon numbers are reported too.

Images come from six sources named by the ``dataset`` field, so the image root may
be one folder holding every file or a mapping from ``dataset`` value to folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

from . import rules
from .items import Benchmark, Item, first, image_file, require_file

# file stem -> phenomenon, in the order of the VALSE paper's table.
VALSE_PIECES = {
    "existence": "existence",
    "plurals": "plurality",
    "counting-hard": "counting",
    "counting-small-quant": "counting",
    "counting-adversarial": "counting",
    "relations": "relations",
    "action-replacement": "actions",
    "actant-swap": "actions",
    "coreference-standard": "coreference",
    "coreference-hard": "coreference",
    "foil-it": "noun phrases",
}

VALSE_HINT = "the annotation JSONs are in the VALSE project's data/ folder (Heidelberg-NLP/VALSE on GitHub)"
# Where each ``dataset`` value's images come from (VALSE's README lists the same sources).
VALSE_IMAGE_SOURCES = {
    "visual7w": "Visual7W images (Visual Genome photos, files named v7w_<id>.jpg)",
    "SWiG": "SWiG / imSitu images",
    "FOIL dataset": "MS-COCO 2014 val images (FOIL-it)",
    "VisDial_v1.0": "VisDial v1.0 images (COCO train2014 and VisualDialog_val2018)",
    "coco2017": "MS-COCO 2017 val images",
    "coco_2017": "MS-COCO 2017 val images",
}


def is_valid(sample: dict, min_votes: int = 2) -> bool:
    """The official VALSE filter: annotators validated the caption (``mturk.caption >= 2``)."""
    return sample["mturk"]["caption"] >= min_votes


def _image_folder(image_root: str | Path | Mapping[str, str | Path], dataset: str) -> Path:
    if not isinstance(image_root, Mapping):
        return Path(image_root)
    if dataset not in image_root:
        raise KeyError(f"VALSE image root has no folder for dataset {dataset!r} ({VALSE_IMAGE_SOURCES.get(dataset)}); "
                       f"it has {sorted(image_root)}")
    return Path(image_root[dataset])


def load_valse(annotation_dir: str | Path, image_root: str | Path | Mapping[str, str | Path],
               pieces: tuple[str, ...] = tuple(VALSE_PIECES), limit: int | None = None,
               min_votes: int = 2) -> Benchmark:
    """VALSE: caption beats foil; total = micro over all valid samples; groups = phenomena."""
    data = {}
    for piece in pieces:
        path = require_file(Path(annotation_dir) / f"{piece}.json", "annotation file", VALSE_HINT)
        with open(path, encoding="utf-8") as f:
            samples = [(k, s) for k, s in json.load(f).items() if is_valid(s, min_votes)]
        data[piece] = [
            Item(f"{piece}/{key}", (s["caption"], s["foil"]),
                 (image_file(_image_folder(image_root, s["dataset"]), s["image_file"], "VALSE image",
                             f"VALSE {piece} uses {VALSE_IMAGE_SOURCES.get(s['dataset'], s['dataset'])}"),))
            for key, s in first(samples, limit)
        ]
    groups: dict[str, list[str]] = {}
    for piece in pieces:
        groups.setdefault(VALSE_PIECES.get(piece, piece), []).append(piece)
    return Benchmark("valse", data, rules.positive_beats_all, averaging="micro", groups=groups,
                     description="VALSE: caption vs foil, samples with mturk.caption >= 2")
