"""The synthetic world as benchmarks: SugarCrepe-style and SugarCrepe++-style (ITT, TOT) tests.

Every split of the world (``read_trainer.demo.dataset``) carries ground-truth false captions,
one per SugarCrepe category the image admits, each with the true caption it edits and a
paraphrase of that caption. That is exactly the item layout of the two official
benchmarks, so the world is scored with the same rules (``rules``), the same batched
scorer and the same averaging (macro over categories, as SugarCrepe and SugarCrepe++ report):

=================  ==========================================  ================================
benchmark          correct when                                total
=================  ==========================================  ================================
``sugarcrepe``     s(I, caption) > s(I, negative)              macro over the 5 categories
``pp_itt``         s(I, p1) > s(I, n) and s(I, p2) > s(I, n)   macro over the 5 categories
``pp_tot``         s(p1, p2) > s(p1, n) and s(p1, p2) > s(p2, n)  macro; text only, no image
=================  ==========================================  ================================

with p1 = caption, p2 = its paraphrase, n = the negative, cosine similarity of normalised
projected embeddings and ties counted as wrong. Benchmarks are named
``world_<split>/<kind>``, e.g. ``world_novel/pp_tot``; ``test`` is the iid split,
``novel`` the held-out colour-shape compositions.
"""

from __future__ import annotations

from typing import Sequence

import datasets

from ..evaluation import rules
from ..evaluation.items import Benchmark, ImageRef, Item

KINDS = ("sugarcrepe", "pp_itt", "pp_tot")
KIND_TITLES = {"sugarcrepe": "SugarCrepe-style", "pp_itt": "SugarCrepe++-style ITT", "pp_tot": "SugarCrepe++-style TOT"}
# The world's categories, in SugarCrepe's order (the world has no add_* categories).
WORLD_CATEGORIES = ("replace_att", "replace_obj", "replace_rel", "swap_att", "swap_obj")


def benchmark_name(split: str, kind: str) -> str:
    return f"world_{split}/{kind}"


def _items_by_category(items: datasets.Dataset, kind: str) -> dict[str, list[Item]]:
    """One ``Item`` per ground-truth false caption, grouped by category.

    Images are referenced by ``image_id`` (unique across splits) so each is embedded once
    however many items use it; the PNG bytes ride along undecoded until embedding.
    """
    raw = items.cast_column("image", datasets.Image(decode=False))
    cols = raw.select_columns(["image_id", "image", "category", "caption", "caption2", "negative_caption"]).to_dict()
    by_category: dict[str, list[Item]] = {c: [] for c in WORLD_CATEGORIES}
    for i, category in enumerate(cols["category"]):
        if kind == "sugarcrepe":
            texts = (cols["caption"][i], cols["negative_caption"][i])
        else:
            texts = (cols["caption"][i], cols["caption2"][i], cols["negative_caption"][i])
        images = () if kind == "pp_tot" else (ImageRef(cols["image_id"][i], data=cols["image"][i]),)
        by_category[category].append(Item(f"{cols['image_id'][i]}/{category}", texts, images))
    return {c: v for c, v in by_category.items() if v}


RULES = {"sugarcrepe": rules.positive_beats_all, "pp_itt": rules.sugarcrepe_pp_itt, "pp_tot": rules.sugarcrepe_pp_tot}


def world_benchmark(items: datasets.Dataset, split: str, kind: str) -> Benchmark:
    """One world benchmark from ``world_eval_items(world[split])``."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return Benchmark(benchmark_name(split, kind), _items_by_category(items, kind), RULES[kind], averaging="macro",
                     needs_text_text=kind == "pp_tot",
                     description=f"{KIND_TITLES[kind]} on the synthetic world's {split} split")


def load_world_benchmarks(world: datasets.DatasetDict, splits: Sequence[str] = ("test", "novel"),
                          kinds: Sequence[str] = KINDS, limit: int | None = None) -> list[Benchmark]:
    """The world benchmarks for ``splits`` x ``kinds`` (``limit``: first images of each split)."""
    from .dataset import world_eval_items

    out = []
    for split in splits:
        ds = world[split] if limit is None else world[split].select(range(min(limit, len(world[split]))))
        items = world_eval_items(ds)
        out += [world_benchmark(items, split, kind) for kind in kinds]
    return out
