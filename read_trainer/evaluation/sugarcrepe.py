"""SugarCrepe and SugarCrepe++ from their official annotation files.

SugarCrepe (Hsieh et al., 2023): 7 JSON files ``{idx: {filename, caption, negative_caption}}``.
SugarCrepe++ (Dumpala et al., 2024): 5 JSON lists ``{id, filename, caption, caption2,
negative_caption}``. Both use MS-COCO 2017 val images, referenced by ``filename``.
SugarCrepe++ TOT (text-only) uses no image, so its loader takes no image root.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import rules
from .items import Benchmark, Item, first, image_file, require_file

SUGARCREPE_SUBSETS = ("add_att", "add_obj", "replace_att", "replace_obj", "replace_rel", "swap_att", "swap_obj")
SUGARCREPE_PP_SUBSETS = ("replace_att", "replace_obj", "replace_rel", "swap_att", "swap_obj")

SUGARCREPE_HINT = "the annotation JSONs are in the SugarCrepe project's data/ folder (RAIVNLab/sugar-crepe on GitHub)"
SUGARCREPE_PP_HINT = "the annotation JSONs are in the SugarCrepe++ project's data/ folder (Sri-Harsha/scpp on GitHub)"
COCO_VAL2017_HINT = "SugarCrepe and SugarCrepe++ use MS-COCO 2017 validation images (val2017, from the COCO project); " \
                    "pass that folder as the image root"


def _read_json(folder: str | Path, subset: str, hint: str):
    with open(require_file(Path(folder) / f"{subset}.json", "annotation file", hint), encoding="utf-8") as f:
        return json.load(f)


def load_sugarcrepe(annotation_dir: str | Path, image_root: str | Path,
                    subsets: tuple[str, ...] = SUGARCREPE_SUBSETS, limit: int | None = None) -> Benchmark:
    """SugarCrepe: correct when s(I, caption) > s(I, negative_caption); total = macro over subsets."""
    data = {}
    for subset in subsets:
        rows = first(list(_read_json(annotation_dir, subset, SUGARCREPE_HINT).items()), limit)
        data[subset] = [
            Item(f"{subset}/{key}", (row["caption"], row["negative_caption"]),
                 (image_file(image_root, row["filename"], "SugarCrepe image", COCO_VAL2017_HINT),))
            for key, row in rows
        ]
    return Benchmark("sugarcrepe", data, rules.positive_beats_all, averaging="macro",
                     description="SugarCrepe image-to-text: positive caption vs one hard negative")


def _pp_items(annotation_dir, subsets, limit, image_root=None) -> dict[str, list[Item]]:
    data = {}
    for subset in subsets:
        rows = first(_read_json(annotation_dir, subset, SUGARCREPE_PP_HINT), limit)
        data[subset] = [
            Item(f"{subset}/{row['id']}", (row["caption"], row["caption2"], row["negative_caption"]),
                 () if image_root is None else
                 (image_file(image_root, row["filename"], "SugarCrepe++ image", COCO_VAL2017_HINT),))
            for row in rows
        ]
    return data


def load_sugarcrepe_pp_itt(annotation_dir: str | Path, image_root: str | Path,
                           subsets: tuple[str, ...] = SUGARCREPE_PP_SUBSETS, limit: int | None = None) -> Benchmark:
    """SugarCrepe++ image-to-text: both paraphrases beat the negative for the image; macro over subsets."""
    return Benchmark("sugarcrepe_pp_itt", _pp_items(annotation_dir, subsets, limit, image_root),
                     rules.sugarcrepe_pp_itt, averaging="macro",
                     description="SugarCrepe++ ITT: s(I,p1) > s(I,n) and s(I,p2) > s(I,n)")


def load_sugarcrepe_pp_tot(annotation_dir: str | Path, subsets: tuple[str, ...] = SUGARCREPE_PP_SUBSETS,
                           limit: int | None = None) -> Benchmark:
    """SugarCrepe++ text-only: the two paraphrases are closer to each other than either is to the negative."""
    return Benchmark("sugarcrepe_pp_tot", _pp_items(annotation_dir, subsets, limit), rules.sugarcrepe_pp_tot,
                     averaging="macro", needs_text_text=True,
                     description="SugarCrepe++ TOT: s(p1,p2) > s(p1,n) and s(p1,p2) > s(p2,n); no images")
