"""ReadCollator: dataset rows -> the tensors one READ step needs.

Input: rows in READ's row schema (:mod:`read_trainer.data.rows`).

Output: ``pixel_values`` (B,3,H,W); ``input_ids``/``attention_mask`` for all texts in
the order anchors (B) | negatives (B·K, grouped by anchor) | paraphrases (B, when
alignment is on), padded on the right; ``num_negatives`` = K; ``decoder_labels`` (B, L)
T5 ids with </s>, padding = -100, and ``decoder_input_ids`` (their shift right, ready for
the decoder) when reconstruction is on.

Widths come from a fixed set (``padding_bucket``; see ``bucket_widths``), so a training
run sees only a handful of distinct step shapes: allocators reuse their blocks,
compiled graphs and CUDA graphs are reused, and nothing about the batch's lengths has
to be computed on the device.

Every random choice (anchor, reconstruction target, paraphrase, negatives) comes from
a ``random.Random`` seeded by (seed, epoch, row_id), so results do not depend on
DataLoader worker count or order, and a resumed run draws what the original would.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from torch.utils.data import get_worker_info

from ..modeling import shift_right
from .negatives import fill_shortfall, normalize

# Callers import BadRowError, as_text_list and row_rng from here too.
from .rows import (  # noqa: F401
    CAPTION_COLUMN,
    IMAGE_COLUMN,
    NEGATIVES_COLUMN,
    PARAPHRASE_COLUMN,
    ROW_ID_COLUMN,
    BadRowError,
    as_text_list,
    is_per_caption,
    load_image,
    per_anchor_texts,
    row_captions,
    row_rng,
)

logger = logging.getLogger(__name__)

# Batch key of the warnings a DataLoader worker's collator raised (see ``ReadCollator.show_warnings``).
WARNINGS_KEY = "collator_warnings"


def bucket_widths(longest_text: int, longest_target: int, bucket: int, max_text: int,
                  max_target: int) -> tuple[int, int]:
    """(text width, target width) of a batch: one bucket index for both, so shapes stay few.

    The index is the smallest ``i`` with ``i·bucket`` covering the batch's longest text and
    its longest target; texts are padded to ``min(i·bucket, max_text)``, targets to
    ``min(i·bucket, max_target)``. A run then has at most ``ceil(max(max_text, max_target) /
    bucket)`` distinct (text, target) widths: 5 at the defaults (16, 32, 48, 64, 77).
    ``bucket=0``: each padded to its own longest row.
    """
    if bucket <= 0:
        return longest_text, longest_target
    index = max(-(-longest_text // bucket), -(-longest_target // bucket), 1)
    return min(index * bucket, max_text), min(index * bucket, max_target)


@dataclass
class ReadCollator:
    """Turns READ rows into a batch (see the module docstring for both schemas).

    Args:
        processor: the CLIP processor (tokenizer + image processor) of the model.
        decoder_tokenizer: T5 tokenizer; ``None`` when reconstruction is off.
        num_hard_negatives: K negatives per anchor.
        use_paraphrases: add one paraphrase per anchor (alignment on).
        negative_generator: ``f(caption, k) -> list[str]`` used when a row has no
            ``negatives`` (e.g. ``HardNegativeGenerator``); ``None`` means rows must carry
            them (when K > 0). An anchor left with fewer than K is topped up from the rest
            of the batch (other anchors' negatives, then other anchors).
        reconstruction_target: ``"random_caption"`` or ``"anchor"``.
        paraphrase_sampling: ``"caption"`` (the anchor's own paraphrases; another caption of the
            image when it has none) or ``"image_pool"`` (uniform over the image's other captions plus
            all its paraphrases, as the official READ collator draws it).
        padding_bucket: pad texts and labels to widths that are multiples of this
            (``bucket_widths``); 0 pads to the batch's longest row.
        pad_to_max_length: pad texts and labels to their maximum lengths (one shape).
        decoder_start_token_id: first decoder input (T5: the pad id, the default).
        epoch: set by the trainer at each epoch so sampling varies across epochs.
    """

    processor: Any
    decoder_tokenizer: Any = None
    num_hard_negatives: int = 3
    use_paraphrases: bool = True
    negative_generator: Callable[[str, int], Sequence[str]] | None = None
    reconstruction_target: str = "random_caption"
    max_text_length: int = 77
    max_target_length: int = 77
    pad_to_max_length: bool = False
    padding_bucket: int = 16
    decoder_start_token_id: int | None = None
    seed: int = 2025
    epoch: int = 0
    image_column: str = IMAGE_COLUMN
    caption_column: str = CAPTION_COLUMN
    paraphrase_column: str = PARAPHRASE_COLUMN
    negatives_column: str = NEGATIVES_COLUMN
    paraphrase_sampling: str = "caption"
    _warned: set = field(default_factory=set, repr=False)
    _pending_warnings: list = field(default_factory=list, repr=False)

    @property
    def columns(self) -> list[str]:
        """Dataset columns this collator reads (kept by the trainer's column pruning)."""
        return [ROW_ID_COLUMN, self.image_column, self.caption_column, self.paraphrase_column, self.negatives_column]

    def __call__(self, rows: list[dict]) -> dict[str, Any]:
        anchors, negatives, paraphrases, targets, images = [], [], [], [], []
        for position, row in enumerate(rows):
            row_id = row.get("row_id", position)
            rng = row_rng(self.seed, self.epoch, row_id)
            captions, kept = self._captions(row, row_id)
            anchor_index = rng.randrange(len(captions))
            anchor = captions[anchor_index]
            anchors.append(anchor)
            if self.num_hard_negatives > 0:
                negatives.append(self._negatives(row, row_id, captions, anchor_index, rng, kept))
            if self.use_paraphrases:
                paraphrases.append(self._paraphrase(row, captions, anchor_index, rng, kept))
            if self.decoder_tokenizer is not None:
                targets.append(anchor if self.reconstruction_target == "anchor" else rng.choice(captions))
            images.append(load_image(row.get(self.image_column), row_id))

        negatives = self._complete_negatives(negatives, anchors, rows)
        texts = anchors + [text for per_anchor in negatives for text in per_anchor] + paraphrases
        tokenizer = self.processor.tokenizer
        tokens = tokenizer(texts, truncation=True, max_length=self.max_text_length)
        labels = None
        if self.decoder_tokenizer is not None:
            labels = self.decoder_tokenizer(targets, truncation=True, max_length=self.max_target_length)
        text_width, target_width = self._widths(tokens, labels)
        # Right padding: the model's text tower relies on it (causal mask + EOT pooling).
        tokens = tokenizer.pad(tokens, padding="max_length", max_length=text_width, return_tensors="pt")
        batch = {
            "pixel_values": self.processor.image_processor(images=images, return_tensors="pt")["pixel_values"],
            "input_ids": tokens["input_ids"],
            "attention_mask": tokens["attention_mask"],
            "num_negatives": self.num_hard_negatives,
            # Which rows the batch holds, for error messages (the trainer removes it before the model).
            "row_ids": [row.get("row_id", position) for position, row in enumerate(rows)],
        }
        if self._pending_warnings:
            # Collated in a DataLoader worker: the warnings travel with the batch, so the trainer
            # shows each once per run instead of once per worker.
            batch[WARNINGS_KEY] = self._pending_warnings
            self._pending_warnings = []
        if labels is not None:
            labels = self.decoder_tokenizer.pad(labels, padding="max_length", max_length=target_width,
                                                return_tensors="pt")
            decoder_labels = labels["input_ids"].masked_fill(labels["attention_mask"] == 0, -100)
            pad = self.decoder_tokenizer.pad_token_id
            start = pad if self.decoder_start_token_id is None else self.decoder_start_token_id
            batch["decoder_labels"] = decoder_labels
            # Built here, in the DataLoader workers, so the step does no shifting of its own.
            batch["decoder_input_ids"] = shift_right(decoder_labels, start, pad)
        return batch

    def _widths(self, tokens, labels) -> tuple[int, int]:
        """Padded widths of this batch's texts and targets (static buckets unless disabled)."""
        longest_text = max(len(ids) for ids in tokens["input_ids"])
        longest_target = max((len(ids) for ids in labels["input_ids"]), default=1) if labels is not None else 1
        if self.pad_to_max_length:
            return self.max_text_length, self.max_target_length
        return bucket_widths(longest_text, longest_target, self.padding_bucket, self.max_text_length,
                             self.max_target_length)

    # -- per-row pieces ----------------------------------------------------------------
    def _captions(self, row: dict, row_id: Any) -> tuple[list[str], list[int]]:
        """The usable captions and their positions in the row's field (see ``rows.row_captions``)."""
        if self.caption_column not in row:
            raise BadRowError(f"row {row_id!r}: no {self.caption_column!r} field (keys: {sorted(row)})")
        return row_captions(row[self.caption_column], row_id, self.caption_column)

    def _negatives(self, row: dict, row_id: Any, captions: list[str], anchor_index: int,
                   rng: random.Random, kept: list[int]) -> list[str]:
        k, anchor = self.num_hard_negatives, captions[anchor_index]
        given = per_anchor_texts(row.get(self.negatives_column), row[self.caption_column], kept,
                                 self.negatives_column, row_id, flat_is_shared=False)
        if given is not None:
            pool = [n for n in dict.fromkeys(given[anchor_index]) if normalize(n) != normalize(anchor)]
        elif self.negative_generator is not None:
            # Ask for more than K so the per-(epoch, row) draw below varies across epochs.
            pool = list(self.negative_generator(anchor, 2 * k))
        else:
            raise BadRowError(
                f"row {row_id!r}: num_hard_negatives={k} but the row has no {self.negatives_column!r} and no "
                "negative generator is configured"
            )
        return rng.sample(pool, k) if len(pool) > k else pool

    def _complete_negatives(self, negatives: list[list[str]], anchors: list[str], rows: list[dict]) -> list[list[str]]:
        """Top up anchors with fewer than K negatives from the rest of the batch (documented fallback).

        Other anchors' negatives first, then other anchors themselves (never one of the
        same image). A batch that cannot supply K distinct texts is an error naming the row.
        """
        k = self.num_hard_negatives
        if k == 0 or all(len(n) >= k for n in negatives):
            return negatives
        row_ids = [row.get("row_id", i) for i, row in enumerate(rows)]
        self._warn_once("negative-fill", "some anchors have fewer than num_hard_negatives negatives: "
                                         "filling from other captions' negatives in the batch")
        filled = fill_shortfall(negatives, anchors, k, row_rng(self.seed, self.epoch, tuple(row_ids)), groups=row_ids)
        for row_id, anchor, own, done in zip(row_ids, anchors, negatives, filled):
            if len(done) < k:
                raise BadRowError(
                    f"row {row_id!r}: {len(own)} usable hard negative(s) for {anchor!r} and the batch cannot supply "
                    f"the other {k - len(own)} (empty ones and ones equal to the caption are not usable)"
                )
        return filled

    def _paraphrase(self, row: dict, captions: list[str], anchor_index: int, rng: random.Random,
                    kept: list[int] | None = None) -> str:
        row_id = row.get("row_id")
        if kept is None:
            kept = row_captions(row[self.caption_column], row_id, self.caption_column)[1]
        per_anchor = per_anchor_texts(row.get(self.paraphrase_column), row[self.caption_column], kept,
                                      self.paraphrase_column, row_id, flat_is_shared=True)
        if self.paraphrase_sampling == "image_pool":
            return self._pooled_paraphrase(row, captions, anchor_index, per_anchor, rng)
        given = per_anchor[anchor_index] if per_anchor is not None else []
        if given:
            return rng.choice(given)
        # Documented fallback: another human caption of the same image (the anchor only
        # when the image has a single caption).
        self._warn_once(
            "paraphrase-fallback",
            f"rows without {self.paraphrase_column!r}: aligning anchors with another caption of the same image",
        )
        others = [c for i, c in enumerate(captions) if i != anchor_index]
        return rng.choice(others) if others else captions[anchor_index]

    def _pooled_paraphrase(self, row: dict, captions: list[str], anchor_index: int,
                           per_anchor: list[list[str]] | None, rng: random.Random) -> str:
        """The official collator's draw: uniform over the *other* human captions of the image plus
        every paraphrase of the image (a per-image list once; per-caption lists all together)."""
        value = row.get(self.paraphrase_column)
        if per_anchor is None:
            synthetic = []
        elif is_per_caption(value):
            synthetic = [p for texts in per_anchor for p in texts]
        else:
            synthetic = per_anchor[0] if per_anchor else []
        if not synthetic:
            self._warn_once(
                "paraphrase-fallback",
                f"rows without {self.paraphrase_column!r}: aligning anchors with another caption of the same image",
            )
        pool = [c for i, c in enumerate(captions) if i != anchor_index] + synthetic
        return rng.choice(pool) if pool else captions[anchor_index]

    def _warn_once(self, key: str, message: str) -> None:
        if key in self._warned:
            return
        self._warned.add(key)
        if get_worker_info() is not None:
            self._pending_warnings.append((key, message))
        else:
            logger.warning(message)

    def show_warnings(self, warnings: list[tuple[str, str]]) -> None:
        """Log warnings a DataLoader worker's copy of this collator attached to a batch, each once per run."""
        for key, message in warnings:
            self._warn_once(key, message)
