"""Benchmarks from Hugging Face Hub datasets stored as parquet (no loading scripts).

``datasets >= 4`` no longer runs dataset loading scripts, so only repositories that
hold data files (parquet, or the hub's parquet conversion) load. The same calls read
a local folder of parquet files, which is how the tests exercise this path offline.
Images are kept undecoded (bytes) until embedding, and each row's image gets a
stable key (``<dataset>:<split>:<row>:<column>``) so de-duplication still works.
"""

from __future__ import annotations

from typing import Sequence

from . import rules
from .items import Averaging, Benchmark, ImageRef, Item
from .winoground import group_by_tag, winoground_benchmark, winoground_item


def _rows(dataset_id: str, split: str, image_columns: Sequence[str], revision: str | None, limit: int | None):
    from datasets import Image, load_dataset

    ds = load_dataset(dataset_id, split=split, revision=revision)
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    for column in image_columns:
        ds = ds.cast_column(column, Image(decode=False))
    return ds


def _ref(dataset_id: str, split: str, index: int, column: str, cell) -> ImageRef:
    return ImageRef(f"{dataset_id}:{split}:{index}:{column}", data=cell)


def load_choice_from_hub(dataset_id: str, name: str, split: str = "test", image_column: str = "image",
                         positive_column: str = "caption", negative_columns: Sequence[str] = ("negative_caption",),
                         subset_column: str | None = None, averaging: Averaging = "macro",
                         revision: str | None = None, limit: int | None = None) -> Benchmark:
    """A positive-beats-all-negatives benchmark from any image + caption + negatives table.

    A column holding a *list* of negatives works too (name it in ``negative_columns``).
    ``subset_column`` splits rows into subsets (e.g. SugarCrepe's category); without
    it everything is one subset. ``limit`` caps the rows read.
    """
    ds = _rows(dataset_id, split, [image_column], revision, limit)
    data: dict[str, list[Item]] = {}
    for i, row in enumerate(ds):
        negatives: list[str] = []
        for column in negative_columns:
            value = row[column]
            negatives.extend(value if isinstance(value, list) else [value])
        subset = str(row[subset_column]) if subset_column else split
        image = _ref(dataset_id, split, i, image_column, row[image_column])
        data.setdefault(subset, []).append(Item(f"{subset}/{i}", (row[positive_column], *negatives), (image,)))
    return Benchmark(name, data, rules.positive_beats_all, averaging=averaging,
                     description=f"{name} from hub dataset {dataset_id} ({split})")


def load_winoground_from_hub(dataset_id: str = "facebook/winoground", split: str = "test",
                             revision: str | None = None, limit: int | None = None) -> Benchmark:
    """Winoground from a parquet hub release with columns image_0, image_1, caption_0, caption_1, collapsed_tag."""
    ds = _rows(dataset_id, split, ["image_0", "image_1"], revision, limit)
    pairs = [(row, winoground_item(row, tuple(_ref(dataset_id, split, i, c, row[c]) for c in ("image_0", "image_1"))))
             for i, row in enumerate(ds)]
    return winoground_benchmark(group_by_tag(pairs))
