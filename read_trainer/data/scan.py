"""The up-front scan of every row: images decode, texts are valid, per-caption lists match.

It makes the checks the collator makes (:mod:`read_trainer.data.rows`), once, before
training (``run_read.py`` runs it), so a corrupt file or row found after hours of
training is impossible. With ``policy="error"`` (default) any problem stops the run with
a summary naming the first offending rows; with ``policy="skip"`` those rows are dropped
and written, with their problems, to a JSONL report: nothing is lost silently.
Over-long captions are not errors (the collator truncates them to 77 CLIP tokens) but
are counted in the report.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import datasets

from .rows import (
    CAPTION_COLUMN,
    IMAGE_COLUMN,
    NEGATIVES_COLUMN,
    PARAPHRASE_COLUMN,
    BadRowError,
    image_problem,
    row_captions,
    row_text_problems,
)

logger = logging.getLogger(__name__)

POLICIES = ("error", "skip")


@dataclass
class ScanReport:
    """What the scan found. ``problems`` counts rows by problem kind."""

    total: int = 0
    kept: int = 0
    problems: Counter = field(default_factory=Counter)
    examples: list[dict] = field(default_factory=list)  # first offending rows: row_id + problems
    truncated_captions: int = 0
    report_path: str | None = None

    def summary(self) -> str:
        lines = [f"scanned {self.total} rows: {self.kept} usable, {self.total - self.kept} with problems"]
        lines += [f"  {kind}: {count}" for kind, count in self.problems.most_common()]
        if self.truncated_captions:
            lines.append(f"  captions longer than the text limit (truncated, kept): {self.truncated_captions}")
        for example in self.examples:
            lines.append(f"  row {example['row_id']!r}: {'; '.join(example['problems'])}")
        if self.report_path:
            lines.append(f"  skipped rows written to {self.report_path}")
        return "\n".join(lines)


def _check_batch(batch: dict, *, image_column: str, caption_column: str, paraphrase_column: str | None,
                 negatives_column: str | None, tokenizer, max_text_length: int) -> dict:
    n = len(batch[caption_column])
    columns = [c for c in (caption_column, paraphrase_column, negatives_column) if c and c in batch]
    problems, truncated = [], []
    for i in range(n):
        found = []
        problem = image_problem(batch[image_column][i])
        if problem:
            found.append(problem)
        row_id = batch["row_id"][i]
        row = {column: batch[column][i] for column in columns}
        # The same checks the collator makes, so no batch fails later on a row the scan kept.
        found += row_text_problems(row, row_id, caption_column, paraphrase_column, negatives_column)
        problems.append(found)
        long = 0
        try:
            captions = row_captions(row[caption_column], row_id, caption_column)[0]
        except BadRowError:
            captions = []
        if tokenizer is not None and captions:
            # Cut one token past the limit: a caption is over-long exactly when it reaches that length,
            # and no sequence longer than the model takes is built (transformers would warn of it).
            cut = tokenizer(captions, truncation=True, max_length=max_text_length + 1)["input_ids"]
            long = sum(len(ids) > max_text_length for ids in cut)
        truncated.append(long)
    return {"__problems": problems, "__truncated": truncated}


def scan_dataset(dataset: datasets.Dataset, *, image_column: str = IMAGE_COLUMN, caption_column: str = CAPTION_COLUMN,
                 paraphrase_column: str | None = PARAPHRASE_COLUMN, negatives_column: str | None = NEGATIVES_COLUMN,
                 tokenizer=None, max_text_length: int = 77, policy: str = "error", report_file: str | None = None,
                 num_proc: int | None = None, max_examples: int = 10) -> tuple[datasets.Dataset, ScanReport]:
    """Check every row; return the usable rows and a report (see the module docstring).

    ``tokenizer`` (the CLIP tokenizer) enables counting over-long captions. ``num_proc``
    decodes images in parallel processes.
    """
    if policy not in POLICIES:
        raise ValueError(f"invalid_rows policy must be one of {POLICIES}, got {policy!r}")
    for column in (image_column, caption_column):
        if column not in dataset.column_names:
            raise ValueError(f"column {column!r} not found; the dataset has {dataset.column_names}")
    if "row_id" not in dataset.column_names:
        dataset = dataset.add_column("row_id", list(range(len(dataset))))
    raw = dataset
    if isinstance(dataset.features[image_column], datasets.Image):
        # Read paths/bytes and decode ourselves, so one bad file is a reported row, not a crash.
        raw = dataset.cast_column(image_column, datasets.Image(decode=False))
    checked = raw.map(
        _check_batch, batched=True, batch_size=64, num_proc=num_proc, desc="checking rows",
        fn_kwargs=dict(image_column=image_column, caption_column=caption_column,
                       paraphrase_column=paraphrase_column, negatives_column=negatives_column,
                       tokenizer=tokenizer, max_text_length=max_text_length),
    )
    problem_lists = checked["__problems"]
    report = ScanReport(total=len(dataset), truncated_captions=int(sum(checked["__truncated"])))
    bad_indices = [i for i, found in enumerate(problem_lists) if found]
    for i in bad_indices:
        for problem in problem_lists[i]:
            report.problems[problem.split(":")[0]] += 1
    row_ids = checked["row_id"]
    report.examples = [{"row_id": row_ids[i], "problems": problem_lists[i]} for i in bad_indices[:max_examples]]
    report.kept = report.total - len(bad_indices)
    if bad_indices and policy == "error":
        raise BadRowError(report.summary() + "\n(use --invalid_rows skip to drop them into a report file)")
    if bad_indices:
        report.report_path = _write_skipped(checked, bad_indices, image_column, caption_column, report_file)
        bad = set(bad_indices)
        dataset = dataset.select([i for i in range(len(dataset)) if i not in bad])
        logger.warning(report.summary())
    elif report.truncated_captions:
        logger.info(report.summary())
    return dataset, report


def _write_skipped(checked: datasets.Dataset, indices: list[int], image_column: str, caption_column: str,
                   report_file: str | None) -> str:
    path = Path(report_file or "invalid_rows.jsonl")
    path.parent.mkdir(parents=True, exist_ok=True)
    subset = checked.select(indices)
    with path.open("w", encoding="utf-8") as f:
        for row in subset:
            image = row[image_column]
            image = image.get("path") if isinstance(image, dict) else image if isinstance(image, str) else None
            f.write(json.dumps({"row_id": row["row_id"], "problems": row["__problems"], "image": image,
                                "captions": row[caption_column]}, default=str) + "\n")
    return str(path)
