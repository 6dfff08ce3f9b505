"""Score a ``Benchmark`` in batch: embed unique inputs once, gather per-item similarities, apply the rule.

Items with the same shape (number of images, number of texts) are scored together
with one batched matrix product over gathered embedding rows, so the Python work per
item is just applying its rule to a few floats.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Callable, Hashable, Sequence, TypeVar

import torch

from .embedding import Embedder
from .items import Benchmark, Item, ItemScores
from .results import BenchmarkResult, summarize

T = TypeVar("T")


def embed_unique(values: Sequence[T], embed: Callable[[list[T]], torch.Tensor],
                 key: Callable[[T], Hashable] = lambda v: v) -> tuple[dict[Hashable, int], torch.Tensor]:
    """Embed each distinct value once; return (key → row, rows)."""
    unique = {key(v): v for v in values}
    return {k: i for i, k in enumerate(unique)}, embed(list(unique.values()))


def item_scores(items: Sequence[Item], text_row: dict, texts: torch.Tensor, image_row: dict,
                images: torch.Tensor, with_text_text: bool) -> list[ItemScores]:
    """Per-item cosine similarities (embeddings are already normalised), in item order."""
    by_shape: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, item in enumerate(items):
        by_shape[(len(item.images), len(item.texts))].append(i)
    out: list[ItemScores | None] = [None] * len(items)
    for (n_img, _), members in by_shape.items():
        t = texts[torch.tensor([[text_row[s] for s in items[i].texts] for i in members])]  # G x T x D
        if n_img:
            v = images[torch.tensor([[image_row[r.key] for r in items[i].images] for i in members])]  # G x I x D
            image_text = torch.bmm(v, t.transpose(1, 2)).tolist()
        else:
            image_text = [[] for _ in members]
        text_text = torch.bmm(t, t.transpose(1, 2)).tolist() if with_text_text else [None] * len(members)
        for j, i in enumerate(members):
            out[i] = ItemScores(image_text[j], text_text[j])
    return out


def score_benchmark(benchmark: Benchmark, embedder: Embedder) -> BenchmarkResult:
    """Decisions for every item of every subset, summarised (see ``results.summarize``)."""
    text_row, texts = embed_unique(benchmark.all_texts(), embedder.embed_texts)
    image_row, images = embed_unique(benchmark.all_images(), embedder.embed_images, key=lambda r: r.key)
    decisions = {
        name: [benchmark.rule(s) for s in
               item_scores(items, text_row, texts, image_row, images, benchmark.needs_text_text)]
        for name, items in benchmark.subsets.items()
    }
    return summarize(benchmark, decisions)
