"""Zero-shot classification on an image folder (``<root>/<class>/<image>``): top-1 / top-5.

CLIP's protocol: each class is the mean of its prompt embeddings (one per template,
each L2-normalised), normalised again; an image goes to the class of highest cosine.
As in retrieval, a wrong class that ties the true one counts as ranked above it.
Class names default to the folder names with ``_`` read as a space; templates to the
single "a photo of a {}." (pass CLIP's 80 ImageNet templates for ImageNet numbers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean
from typing import Sequence

import torch

from .embedding import normalize
from .items import BenchmarkDataError, ImageRef, first, require_dir
from .results import BenchmarkResult, percent
from .retrieval import pessimistic_ranks

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
DEFAULT_TEMPLATES = ("a photo of a {}.",)
ZEROSHOT_HINT = "an image folder with one subfolder per class (e.g. ImageNet val arranged by class)"


@dataclass
class ZeroShotTask:
    name: str
    image_refs: list[ImageRef]
    labels: list[int]
    classnames: list[str]
    templates: Sequence[str] = DEFAULT_TEMPLATES
    ks: tuple[int, ...] = field(default=(1, 5))

    def prompts(self) -> list[str]:
        return [t.format(c) for c in self.classnames for t in self.templates]

    def all_texts(self) -> list[str]:
        return self.prompts()

    def all_images(self) -> list[ImageRef]:
        return self.image_refs

    def evaluate(self, embedder) -> BenchmarkResult:
        return score_zeroshot(self, embedder)


def read_lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def load_imagefolder(root: str | Path, classnames: Sequence[str] | None = None,
                     templates: Sequence[str] | None = None, name: str = "zeroshot",
                     limit: int | None = None) -> ZeroShotTask:
    """Classes = sorted subfolders; ``classnames`` (same order) and ``templates`` override the defaults.

    ``limit`` caps the images per class (sorted by file name, so a limited run is reproducible).
    """
    root = require_dir(root, "zero-shot image folder", ZEROSHOT_HINT)
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    if not folders:
        raise BenchmarkDataError(f"no class subfolders in {root}\n  hint: {ZEROSHOT_HINT}")
    names = list(classnames) if classnames is not None else [p.name.replace("_", " ") for p in folders]
    if len(names) != len(folders):
        raise ValueError(f"{len(names)} class names for {len(folders)} class folders in {root}")
    refs, labels = [], []
    for label, folder in enumerate(folders):
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        for path in first(files, limit):
            refs.append(ImageRef(str(path)))
            labels.append(label)
    return ZeroShotTask(name, refs, labels, names, tuple(templates or DEFAULT_TEMPLATES))


def class_embeddings(task: ZeroShotTask, embedder) -> torch.Tensor:
    prompts = embedder.embed_texts(task.prompts()).view(len(task.classnames), len(task.templates), -1)
    return normalize(prompts.mean(dim=1))


def score_zeroshot(task: ZeroShotTask, embedder) -> BenchmarkResult:
    """Top-k accuracy (micro over images) and the mean per-class top-1."""
    scores = embedder.embed_images(task.image_refs) @ class_embeddings(task, embedder).T
    labels = torch.tensor(task.labels)
    ranks, ties = pessimistic_ranks(scores, torch.nn.functional.one_hot(labels, len(task.classnames)).bool())
    top = {f"top{k}": percent((ranks < k).sum().item(), len(ranks)) for k in task.ks}
    per_class = [percent((ranks[labels == c] < 1).sum().item(), (labels == c).sum().item())
                 for c in range(len(task.classnames)) if (labels == c).any()]
    metrics = {**top, "mean_per_class_top1": mean(per_class), "ties": int(ties.sum()), "n": len(ranks),
               "total": top["top1"]}
    return BenchmarkResult(task.name, top["top1"], "top-1 accuracy over all images (micro); ties are misses",
                           metrics, {"all": {**top, "n": len(ranks)}}, list(top))
