"""COCO / Flickr30k Karpathy-test retrieval: image→text and text→image recall@k.

A retention check: compositional fine-tuning should not cost CLIP its retrieval
skill. Annotations in Karpathy's format (``dataset_coco.json`` /
``dataset_flickr30k.json``): ``{"images": [{"filename", "filepath"?, "split",
"sentences": [{"raw"}, ...]}]}``; the image is ``<image_root>/<filepath>/<filename>``
(COCO's ``filepath`` is ``val2014``; Flickr30k has none).

Ranks are pessimistic about ties: a wrong candidate scoring *equal* to the right one
is counted as ranked above it, so a tie never earns a hit (the rule used everywhere
in this suite). Image→text is a hit at k when the best-scoring correct caption has
fewer than k wrong captions at or above it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from statistics import mean

import torch

from .items import ImageRef, first, image_file, require_file
from .results import BenchmarkResult, percent

KARPATHY_HINT = "Karpathy split files (dataset_coco.json / dataset_flickr30k.json) come from Andrej Karpathy's " \
                "neuraltalk2/deepimagesent release; images from MS-COCO 2014 (val2014) or Flickr30k"


@dataclass
class RetrievalTask:
    """Images with their captions; caption ``j`` of ``captions`` belongs to image ``owners[j]``."""

    name: str
    image_refs: list[ImageRef]
    captions: list[str]
    owners: list[int]
    ks: tuple[int, ...] = (1, 5, 10)

    def all_texts(self) -> list[str]:
        return self.captions

    def all_images(self) -> list[ImageRef]:
        return self.image_refs

    def evaluate(self, embedder) -> BenchmarkResult:
        return score_retrieval(self, embedder)


def load_karpathy_retrieval(annotation_file: str | Path, image_root: str | Path, name: str = "coco_retrieval",
                  split: str = "test", limit: int | None = None) -> RetrievalTask:
    """The ``split`` images of a Karpathy JSON (``limit`` caps the number of images)."""
    with open(require_file(annotation_file, "annotation file", KARPATHY_HINT), encoding="utf-8") as f:
        rows = [r for r in json.load(f)["images"] if r["split"] == split]
    refs, captions, owners = [], [], []
    for i, row in enumerate(first(rows, limit)):
        refs.append(image_file(Path(image_root) / row.get("filepath", ""), row["filename"], f"{name} image",
                               KARPATHY_HINT))
        for sentence in row["sentences"]:
            captions.append(sentence["raw"].strip())
            owners.append(i)
    return RetrievalTask(name, refs, captions, owners)


def pessimistic_ranks(scores: torch.Tensor, correct: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per query row: (number of wrong candidates scoring >= the best correct one, whether any equals it)."""
    best = scores.masked_fill(~correct, float("-inf")).max(dim=1, keepdim=True).values
    wrong = scores.masked_fill(correct, float("-inf"))
    return (wrong >= best).sum(dim=1), (wrong == best).any(dim=1)


def _recalls(ranks: torch.Tensor, ks) -> dict[str, float]:
    return {f"R@{k}": percent((ranks < k).sum().item(), len(ranks)) for k in ks}


def score_retrieval(task: RetrievalTask, embedder, chunk: int = 1024) -> BenchmarkResult:
    """Recall@k both ways; headline = mean of the 2×len(ks) recalls. Chunked so 25k×5k fits in memory."""
    unique = list(dict.fromkeys(task.captions))
    # Duplicate captions are embedded once but stay separate candidates.
    text_emb = embedder.embed_texts(unique)[torch.tensor(_positions(unique, task.captions), dtype=torch.long)]
    image_emb = embedder.embed_images(task.image_refs)
    owners = torch.tensor(task.owners)
    i2t, i2t_ties, t2i, t2i_ties = [], [], [], []
    for s in range(0, len(image_emb), chunk):
        rows = torch.arange(s, min(s + chunk, len(image_emb)))
        r, t = pessimistic_ranks(image_emb[rows] @ text_emb.T, owners[None, :] == rows[:, None])
        i2t.append(r), i2t_ties.append(t)
    for s in range(0, len(text_emb), chunk):
        cols = torch.arange(s, min(s + chunk, len(text_emb)))
        r, t = pessimistic_ranks(text_emb[cols] @ image_emb.T,
                                 torch.arange(len(image_emb))[None, :] == owners[cols][:, None])
        t2i.append(r), t2i_ties.append(t)
    subsets = {"image_to_text": _recalls(torch.cat(i2t), task.ks), "text_to_image": _recalls(torch.cat(t2i), task.ks)}
    metrics = {f"{short}_{k}": v for short, key in (("i2t", "image_to_text"), ("t2i", "text_to_image"))
               for k, v in subsets[key].items()}
    total = mean(metrics.values())
    metrics.update(mean_recall=total, i2t_ties=int(torch.cat(i2t_ties).sum()), t2i_ties=int(torch.cat(t2i_ties).sum()),
                   n_images=len(image_emb), n_texts=len(text_emb), total=total)
    subsets["image_to_text"]["n"], subsets["text_to_image"]["n"] = len(image_emb), len(text_emb)
    words = "mean of image→text and text→image " + "/".join(f"R@{k}" for k in task.ks) + \
            " (ties ranked against the query)"
    return BenchmarkResult(task.name, total, words, metrics, subsets, [f"R@{k}" for k in task.ks])


def _positions(unique: list[str], values: list[str]) -> list[int]:
    row = {v: i for i, v in enumerate(unique)}
    return [row[v] for v in values]
