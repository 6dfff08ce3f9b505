"""Checks that run before training starts, so bad data fails in seconds, not hours."""

from __future__ import annotations

from typing import Any

import torch

from .rows import BadRowError, row_text_problems


def check_dataset(dataset: Any, collator, split: str = "train", max_report: int = 5) -> None:
    """Schema check plus a text-only scan of the columns the collator reads.

    Raises ``ValueError`` naming a missing column, or ``BadRowError`` naming the first
    rows the collator would reject for their texts: no usable caption, text that is not
    valid UTF-8, per-caption paraphrases or negatives that do not match the captions.
    Images are decoded lazily by the collator, which names the row and file of one it
    cannot read (``recipes/run_read.py`` decodes them all up front with the scan).
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
    bad = []
    for row_id, row in _text_rows(dataset, columns, collator):
        problems = row_text_problems(
            row, row_id, collator.caption_column, collator.paraphrase_column if collator.use_paraphrases else None,
            collator.negatives_column if collator.num_hard_negatives > 0 else None,
        )
        if problems:
            bad.append((row_id, problems))
    if bad:
        shown = ", ".join(f"row {rid!r} ({'; '.join(problems)})" for rid, problems in bad[:max_report])
        raise BadRowError(f"{split} dataset: {len(bad)} row(s) with unusable texts: {shown}")


def _text_rows(dataset: Any, columns: list[str] | None, collator):
    """(row_id, {column: value}) for the text columns the collator reads, without decoding images."""
    wanted = [collator.caption_column, collator.paraphrase_column, collator.negatives_column]
    if columns is None:
        for position, row in enumerate(dataset):
            yield row.get("row_id", position), {c: row.get(c) for c in wanted if c in row}
        return
    if not hasattr(dataset, "select_columns") or not hasattr(dataset, "__len__"):
        return  # an IterableDataset: rows are checked by the collator as they come
    present = [c for c in dict.fromkeys(wanted + ["row_id"]) if c in columns]
    position = 0
    for batch in dataset.select_columns(present).iter(batch_size=1024):
        for i in range(len(batch[collator.caption_column])):
            row_id = batch["row_id"][i] if "row_id" in batch else position
            yield row_id, {c: batch[c][i] for c in present}
            position += 1


def _column_names(dataset: Any) -> list[str] | None:
    names = getattr(dataset, "column_names", None)
    if isinstance(names, dict):  # DatasetDict
        raise TypeError("pass one split (a Dataset), not a DatasetDict")
    return list(names) if names is not None else None
