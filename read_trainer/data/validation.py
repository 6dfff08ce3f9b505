"""Checks that run before training starts, so bad data fails in seconds, not hours."""

from __future__ import annotations

from typing import Any

import torch

from .collator import BadRowError, as_text_list


def check_dataset(dataset: Any, collator, split: str = "train", max_report: int = 5) -> None:
    """Schema check plus a text-only scan of the captions column.

    Raises ``ValueError`` naming a missing column, or ``BadRowError`` naming the first
    rows whose captions are missing or empty. Images are decoded lazily by the collator,
    which names the row and file of one it cannot read.
    """
    if isinstance(dataset, torch.utils.data.IterableDataset):
        return  # a stream's rows are checked as they are read (stream_checks.py)
    columns = _column_names(dataset)
    if columns is not None:
        required = [collator.image_column, collator.caption_column]
        missing = [c for c in required if c not in columns]
        if missing:
            raise ValueError(
                f"{split} dataset is missing column(s) {missing}; it has {sorted(columns)}. "
                "Map yours with --image_column / --caption_column."
            )
        if collator.num_hard_negatives > 0 and collator.negative_generator is None \
                and collator.negatives_column not in columns:
            raise ValueError(
                f"num_hard_negatives={collator.num_hard_negatives} but the {split} dataset has no "
                f"{collator.negatives_column!r} column and no negative generator is configured "
                "(set num_hard_negatives=0 for plain CLIP)"
            )
        captions = dataset[collator.caption_column] if hasattr(dataset, "column_names") else None
    else:
        captions = [row.get(collator.caption_column) for row in dataset]
    if captions is None:
        return
    row_ids = dataset["row_id"] if columns is not None and "row_id" in columns else range(len(captions))
    bad = [(rid, value) for rid, value in zip(row_ids, captions) if not as_text_list(value)]
    if bad:
        shown = ", ".join(f"row {rid!r} ({value!r})" for rid, value in bad[:max_report])
        raise BadRowError(f"{split} dataset: {len(bad)} row(s) with no non-empty caption in "
                          f"{collator.caption_column!r}: {shown}")


def _column_names(dataset: Any) -> list[str] | None:
    names = getattr(dataset, "column_names", None)
    if isinstance(names, dict):  # DatasetDict
        raise TypeError("pass one split (a Dataset), not a DatasetDict")
    return list(names) if names is not None else None
