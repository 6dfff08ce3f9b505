"""CREPE productivity (Ma et al., 2023) from its official CSV files.

Each ``prod_vg_hard_negs_<type>_complexity_<k>.csv`` row has ``image_id, x, y, width,
height, caption, hard_negs`` where ``hard_negs`` is a Python-literal list of captions.
The image is the Visual Genome photo ``<image_id>.jpg`` (in ``VG_100K`` or ``VG_100K_2``)
*cropped to the region box*, as CREPE's evaluator does. Correct when the caption beats
every hard negative; the headline is the macro mean over files.
"""

from __future__ import annotations

import ast
import csv
from pathlib import Path

from . import rules
from .items import Benchmark, BenchmarkDataError, ImageRef, Item, first, require_dir

CREPE_HINT = "the productivity CSVs are in the CREPE project's data/prod_hard_negatives/ folder " \
             "(RAIVNLab/CREPE on GitHub)"
VG_HINT = "CREPE uses Visual Genome images (VG_100K and VG_100K_2 folders from the Visual Genome project)"
VG_FOLDERS = ("VG_100K", "VG_100K_2", ".")


def find_vg_image(image_root: Path, image_id: str) -> Path:
    """Visual Genome splits its photos over two folders; look in both (and the root itself)."""
    candidates = [image_root / folder / f"{image_id}.jpg" for folder in VG_FOLDERS]
    for path in candidates:
        if path.is_file():
            return path
    raise BenchmarkDataError(f"CREPE image not found: tried {', '.join(map(str, candidates))}\n  hint: {VG_HINT}")


def _read_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def load_crepe(annotation_dir: str | Path, image_root: str | Path, files: list[str] | None = None,
               limit: int | None = None) -> Benchmark:
    """CREPE: one subset per CSV (name = file stem); ``files`` picks some by stem, default all found."""
    folder = require_dir(annotation_dir, "CREPE annotation folder", CREPE_HINT)
    paths = {p.stem: p for p in sorted(folder.rglob("*.csv"))}
    if not paths:
        raise BenchmarkDataError(f"no CREPE CSV files under {folder}\n  hint: {CREPE_HINT}")
    missing = sorted(set(files or ()) - set(paths))
    if missing:
        raise BenchmarkDataError(f"CREPE files not found under {folder}: {missing}\n  hint: {CREPE_HINT}")
    data = {}
    for stem in files or list(paths):
        items = []
        for i, row in enumerate(first(_read_rows(paths[stem]), limit)):
            x, y, w, h = (float(row[k]) for k in ("x", "y", "width", "height"))
            image = ImageRef(str(find_vg_image(Path(image_root), row["image_id"])), (x, y, x + w, y + h))
            negatives = tuple(ast.literal_eval(row["hard_negs"]))
            items.append(Item(f"{stem}/{i}", (row["caption"], *negatives), (image,)))
        data[stem] = items
    return Benchmark("crepe", data, rules.positive_beats_all, averaging="macro",
                     description="CREPE productivity: caption vs hard negatives on the cropped region")
