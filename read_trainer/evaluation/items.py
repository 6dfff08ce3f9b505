"""The data model every benchmark is loaded into.

A benchmark is a set of named subsets of *items*. An item is the smallest unit that
gets one decision: a few images, a few texts, and a rule saying which similarities
must beat which. Keeping items this plain lets one scorer serve every benchmark (and
any new one: build ``Benchmark(...)`` from your own items and pass it to the suite),
and lets the scorer embed each unique image and text once across all items.

This module is the bottom of the evaluation package: it imports none of its siblings
(``scoring.score_benchmark`` scores a ``Benchmark``), so the package has no import circle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Sequence


@dataclass(frozen=True)
class ImageRef:
    """Where an image comes from: a file (optionally cropped to a box) or an in-memory image.

    ``key`` identifies the image for de-duplication: two refs with the same key are
    embedded once. For files it is the path plus the crop box, so the same photo
    cropped twice (CREPE, ARO) counts as two images. ``data`` (a PIL image or encoded
    bytes from a hub dataset row) is excluded from equality and hashing on purpose.
    """

    path: str
    box: tuple[float, float, float, float] | None = None  # (left, top, right, bottom) in pixels
    data: Any = field(default=None, compare=False, hash=False, repr=False)

    @property
    def key(self) -> tuple[str, tuple[float, float, float, float] | None]:
        return (self.path, self.box)


@dataclass(frozen=True)
class Item:
    """One test case. Conventions by rule: the positive text comes first; see ``rules``."""

    id: str
    texts: tuple[str, ...]
    images: tuple[ImageRef, ...] = ()


# A rule maps one item's similarities to one outcome per metric ("correct", "tie", "wrong").
Rule = Callable[["ItemScores"], dict[str, str]]


@dataclass(frozen=True)
class ItemScores:
    """Cosine similarities of one item: ``image_text[i][t]`` and, when asked, ``text_text[a][b]``."""

    image_text: list[list[float]]
    text_text: list[list[float]] | None = None


Averaging = Literal["macro", "micro", "macro_of_groups", "pooled_groups"]

AVERAGING_WORDS = {
    "macro": "macro: plain mean of the per-subset accuracies",
    "micro": "micro: correct / total over all items of all subsets",
    "macro_of_groups": "plain mean of the group scores, each group the macro mean of its subsets",
    "pooled_groups": "plain mean of the group scores, each group pooling the items of its subsets",
}


@dataclass
class Benchmark:
    """A multiple-choice style benchmark: named subsets of items and one decision rule.

    ``averaging`` picks the headline number (``total``) the way each benchmark's paper
    reports it (see ``AVERAGING_WORDS``); macro and micro are always reported as well.
    ``groups`` names sets of subsets reported together (VALSE phenomena, WhatsUp's
    three groups); a group's score uses micro averaging when the benchmark's rule is
    micro, macro otherwise.
    ``needs_text_text`` asks the scorer for text-text similarities (SugarCrepe++ TOT).
    ``protocol`` names the evaluation protocol the rule and averaging follow (``protocol.py``).
    """

    name: str
    subsets: dict[str, list[Item]]
    rule: Rule
    averaging: Averaging = "macro"
    groups: Mapping[str, Sequence[str]] | None = None
    primary_metric: str = "accuracy"
    needs_text_text: bool = False
    description: str = ""
    protocol: str = "strict"

    def __post_init__(self) -> None:
        if self.averaging in ("macro_of_groups", "pooled_groups") and not self.groups:
            raise ValueError(f"{self.name}: averaging {self.averaging!r} needs groups")
        for group, names in (self.groups or {}).items():
            unknown = set(names) - set(self.subsets)
            if unknown:
                raise ValueError(f"{self.name}: group {group!r} names unknown subsets {sorted(unknown)}")

    def __len__(self) -> int:
        return sum(len(items) for items in self.subsets.values())

    def all_texts(self) -> list[str]:
        return [t for items in self.subsets.values() for item in items for t in item.texts]

    def all_images(self) -> list[ImageRef]:
        return [im for items in self.subsets.values() for item in items for im in item.images]


class BenchmarkDataError(FileNotFoundError):
    """A benchmark file is missing; the message names it and says where the official data lives."""


def require_file(path: str | Path, what: str, hint: str) -> Path:
    """Return ``path`` if it is a file, else raise a ``BenchmarkDataError`` naming it."""
    path = Path(path)
    if not path.is_file():
        raise BenchmarkDataError(f"{what} not found: {path}\n  hint: {hint}")
    return path


def require_dir(path: str | Path, what: str, hint: str) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise BenchmarkDataError(f"{what} not found: {path}\n  hint: {hint}")
    return path


def first(items: list, limit: int | None) -> list:
    """The first ``limit`` items (all when ``limit`` is None): loaders cap each subset this way."""
    return items if limit is None else items[:limit]


def image_file(root: str | Path, relative: str | Path, what: str, hint: str,
               box: tuple[float, float, float, float] | None = None) -> ImageRef:
    """An ``ImageRef`` for ``root/relative``, checked now so a missing image fails before any embedding."""
    path = require_file(Path(root) / relative, what, hint)
    return ImageRef(str(path), box)
