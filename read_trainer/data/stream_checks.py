"""ValidatedStream: raw streamed rows -> checked, shuffled, decoded READ rows, resumably.

Each sample is checked as it is read, as the up-front scan checks a map-style dataset
(scan.py): the image must decode fully and there must be a non-empty caption (and, when
hard negatives come only from the data, a negatives list). An image path may not lead
outside the shard's folder (or ``image_root``) unless ``allow_outside_image_root``, and a
remote shard may not name local files at all. A bad sample is skipped and written, with its
shard and key, to the invalid-rows report (JSONL, appended by every process and worker); so
is a shard that cannot be read to its end (shard_reading.py), as one entry. When more than ``max_invalid_fraction`` of one shard's samples, or of
all samples this reader has read, are bad (after ``min_samples``), the run stops with an
error naming the shard: a broken corpus must not train for hours on nothing.

Shuffling is by blocks: ``shuffle_buffer_size`` raw rows are read, permuted by a generator
seeded from (seed, epoch, worker, block), and yielded. ``state_dict()`` holds the source's
position at the block start, the block number, how many of its rows were consumed and the
invalid counts, so a resumed reader re-reads one block and continues at the exact sample
(a rolling buffer, as ``datasets``' own, cannot be restored without saving its contents).
``datasets`` itself resumes a shard by reading it up to the saved position (undecoded).
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from .rows import BadRowError, load_image, per_anchor_texts, refused_image_path, row_captions, row_rng
from .shard_reading import IMAGE_EXTENSIONS, SAMPLE_PROBLEMS, SHARD_ERROR

logger = logging.getLogger(__name__)


class InvalidShardError(BadRowError):
    """Too many invalid samples in a shard (or in the stream); the message names the shard."""


class ValidatedStream(torch.utils.data.IterableDataset):
    """READ rows from a raw ``datasets.IterableDataset`` (see the module docstring).

    Rows come out in the collator's schema: ``row_id`` ("<shard file name>/<key>", stable
    across runs, so the collator's per-row sampling is too), ``image`` (decoded, RGB),
    ``captions`` and, when present, ``paraphrases`` (from the row, or looked up per
    caption in ``paraphrases``, the sidecar table) and ``negatives``.
    """

    def __init__(self, source, *, image_column: str = "image", caption_column: str = "captions",
                 paraphrase_column: str | None = "paraphrases", negatives_column: str | None = "negatives",
                 hard_negatives: str = "auto", num_hard_negatives: int = 3,
                 paraphrases: dict[str, list[str]] | None = None, paraphrase_file: str | None = None,
                 shuffle_buffer_size: int = 1000, seed: int = 2025, max_invalid_fraction: float = 0.05,
                 min_samples: int = 100, report_file: str | None = None, image_root: str | None = None,
                 allow_outside_image_root: bool = False):
        if not 0.0 <= max_invalid_fraction <= 1.0:
            raise ValueError(f"max_invalid_fraction must be in [0, 1], got {max_invalid_fraction}")
        self.source = source
        self.image_column, self.caption_column = image_column, caption_column
        self.paraphrase_column, self.negatives_column = paraphrase_column, negatives_column
        self.hard_negatives, self.num_hard_negatives = hard_negatives, num_hard_negatives
        self.paraphrases, self.paraphrase_file = paraphrases, paraphrase_file
        self.shuffle_buffer_size, self.seed = shuffle_buffer_size, seed
        self.max_invalid_fraction, self.min_samples = max_invalid_fraction, min_samples
        self.report_file = report_file
        self.image_root, self.allow_outside_image_root = image_root, allow_outside_image_root
        self.epoch = 0
        self._resume: dict | None = None
        self._state: dict = self._fresh_state()

    # The trainer's checks and the recipe read these; a stream's rows are checked as they come.
    column_names = ["row_id", "image", "captions", "paraphrases"]

    def _fresh_state(self) -> dict:
        return {"epoch": self.epoch, "block": 0, "block_start": None, "consumed": 0,
                "seen": Counter(), "bad": Counter(), "paraphrase_hits": 0}

    # -- resumable state (torchdata's StatefulDataLoader calls these, in each worker) -------
    def state_dict(self) -> dict:
        # A loaded state that no pass has started from yet is still the position.
        state = dict(self._resume if self._resume is not None else self._state)
        state["seen"], state["bad"] = dict(state["seen"]), dict(state["bad"])
        return state

    def load_state_dict(self, state: dict) -> None:
        # Called in each worker: the source's epoch is set in __iter__ (one process) or, with
        # workers, by set_epoch in the main process (see there).
        self._resume = dict(state, seen=Counter(state["seen"]), bad=Counter(state["bad"]))
        self.epoch = state["epoch"]

    def set_epoch(self, epoch: int) -> None:
        """The pass to read next; call it in the main process, before the workers start.

        ``datasets`` keeps the source's epoch (which orders its shards) in memory shared with
        every DataLoader worker and sets it by adding the difference in place, so two workers
        each setting epoch 1 over 0 can leave it at 2: that pass would read another shard
        order than its state says, and a resumed run would not match the uninterrupted one.
        Only this process writes it; the workers read it.
        """
        self.epoch = epoch
        self.source.set_epoch(epoch)

    def start_afresh(self) -> None:
        """Drop a loaded state that no pass has used (a resumed pass that was already spent)."""
        self._resume = None

    # -- iteration -----------------------------------------------------------------------
    def __iter__(self):
        # The resume state is taken at the first next(), not here: DataLoader workers create an
        # iterator, drop it unread and create another one, which must be the one that resumes.
        state, self._resume = (self._resume, None) if self._resume is not None else (self._fresh_state(), None)
        state["epoch"] = self.epoch
        self._state = state
        worker = torch.utils.data.get_worker_info()
        worker_id = worker.id if worker is not None else 0
        # datasets reshuffles the shard order each pass, from the source's epoch.
        if worker is None:
            self.source.set_epoch(state["epoch"])
        elif self.source.epoch != state["epoch"]:  # a worker must not write it (see set_epoch)
            raise RuntimeError(f"DataLoader worker {worker_id} reads pass {state['epoch']} but the stream's source "
                               f"is at pass {self.source.epoch}: call set_epoch({state['epoch']}) on the stream "
                               "before iterating its loader")
        if state["block_start"] is not None:
            self.source.load_state_dict(state["block_start"])
        rows = iter(self.source)
        while True:
            block = self._read_block(rows)
            if not block:
                return
            next_start = self.source.state_dict()  # where the next block begins
            if self.shuffle_buffer_size > 0:
                row_rng(self.seed, state["epoch"], f"worker{worker_id}/block{state['block']}").shuffle(block)
            for raw in block[state["consumed"]:]:
                state["consumed"] += 1  # before yielding: the state is read right after a batch
                row = self._check(raw, state)
                if row is not None:
                    yield row
            state.update(block=state["block"] + 1, block_start=next_start, consumed=0)

    def _read_block(self, rows) -> list[dict]:
        size = max(self.shuffle_buffer_size, 1)
        block = []
        for raw in rows:
            block.append(raw)
            if len(block) >= size:
                break
        return block

    # -- checks --------------------------------------------------------------------------
    def _check(self, raw: dict, state: dict) -> dict | None:
        shard, key = str(raw.get("__url__")), str(raw.get("__key__"))
        if raw.get(SHARD_ERROR):  # the shard's unread rest: one entry, counted as one invalid sample
            return self._invalid(shard, key, [raw[SHARD_ERROR]], {}, state)
        fields = _flatten(raw)
        problems = list(raw.get(SAMPLE_PROBLEMS) or [])
        try:
            # load_image converts to RGB, which decodes every pixel: truncated files fail here.
            image = load_image(self._image_value(fields, shard), key)
        except BadRowError as err:
            problems.append(f"image does not decode: {err}")
            image = None
        # The same text rules as a map-style row's (rows.py): blank captions are dropped with
        # their per-caption lists, invalid text and mismatched lists are problems.
        raw_captions = fields.get(self.caption_column, fields.get("txt"))
        captions, positions = [], []
        try:
            captions, positions = row_captions(raw_captions, key, self.caption_column)
        except BadRowError as err:
            problems.append(str(err))
        negatives = fields.get(self.negatives_column) if self.negatives_column else None
        if self.hard_negatives == "generate":
            negatives = None
        elif self.hard_negatives == "column" and self.num_hard_negatives > 0 and not negatives:
            problems.append(f"no {self.negatives_column!r} (hard_negatives=column)")
        given = fields.get(self.paraphrase_column) if self.paraphrase_column else None
        if captions:
            try:
                negatives = per_anchor_texts(negatives, raw_captions, positions, self.negatives_column, key, False)
                given = per_anchor_texts(given, raw_captions, positions, self.paraphrase_column, key, True)
            except BadRowError as err:
                problems.append(str(err))
        if problems:
            return self._invalid(shard, key, problems, fields, state)
        state["seen"][shard] += 1
        row = {"row_id": f"{os.path.basename(shard)}/{key}", "image": image, "captions": captions}
        if self.paraphrases is not None:
            given = [self.paraphrases.get(c, []) for c in captions]
            state["paraphrase_hits"] += any(given)
            self._check_paraphrase_coverage(state)
        if given is not None:
            row["paraphrases"] = given
        if negatives is not None:
            row["negatives"] = negatives
        self._check_fraction(shard, state, None)
        return row

    def _invalid(self, shard: str, key: str, problems: list[str], fields: dict, state: dict) -> None:
        state["seen"][shard] += 1
        state["bad"][shard] += 1
        self._report(shard, key, problems, fields)
        self._check_fraction(shard, state, problems)
        return None

    def _image_value(self, fields: dict, shard: str) -> Any:
        value = fields.get(self.image_column)
        if value is None:  # webdataset: the image is the field named by its extension
            value = next((fields[e] for e in IMAGE_EXTENSIONS if fields.get(e) is not None), None)
        if isinstance(value, (bytes, bytearray)):
            value = {"bytes": bytes(value), "path": None}
        if isinstance(value, dict) and not value.get("bytes") and isinstance(value.get("path"), str):
            value = value["path"]  # a file named, not embedded: the same rules as a path
        if isinstance(value, str) and value:
            value = self._image_path(value, shard)
        return value

    def _image_path(self, path: str, shard: str) -> str:
        """A shard's image path, resolved against the shard's folder (or ``image_root``), or refused."""
        if "://" in shard:
            # The files of the machine reading the stream are not the shard's to name.
            return refused_image_path(f"image path in a remote shard: {path!r} (a remote shard's images must be "
                                      "embedded in it; local files are never opened for it)")
        root = os.path.normpath(os.path.abspath(self.image_root or os.path.dirname(shard)))
        full = os.path.normpath(os.path.join(root, os.path.expanduser(path)))
        if not self.allow_outside_image_root and os.path.commonpath([root, full]) != root:
            return refused_image_path(f"image path outside the data folder: {path!r} is outside {root} (pass "
                                      "--allow_outside_image_root true to read it, or --image_root a folder holding it)")
        return full

    def _check_fraction(self, shard: str, state: dict, problems: list[str] | None) -> None:
        seen, bad = state["seen"], state["bad"]
        limit = self.max_invalid_fraction
        if seen[shard] >= self.min_samples and bad[shard] > limit * seen[shard]:
            raise InvalidShardError(
                f"shard {shard}: {bad[shard]} of the {seen[shard]} samples read are invalid "
                f"({bad[shard] / seen[shard]:.0%} > max_invalid_fraction {limit:g})"
                + (f"; latest: {'; '.join(problems)}" if problems else "")
                + f". Invalid samples are listed in {self.report_file}")
        total, total_bad = sum(seen.values()), sum(bad.values())
        if total >= self.min_samples and total_bad > limit * total:
            worst = ", ".join(f"{s} ({bad[s]}/{seen[s]})" for s, _ in bad.most_common(3))
            raise InvalidShardError(
                f"{total_bad} of the {total} samples read are invalid ({total_bad / total:.0%} > "
                f"max_invalid_fraction {limit:g}); most in shards {worst}. See {self.report_file}")

    def _check_paraphrase_coverage(self, state: dict) -> None:
        # A sidecar that matches nothing means a wrong file; say so once enough rows have passed.
        if state["paraphrase_hits"] == 0 and sum(state["seen"].values()) >= self.min_samples:
            raise ValueError(f"paraphrase_file {self.paraphrase_file!r} matches no caption of the first "
                             f"{self.min_samples} streamed samples (keys are caption texts)")

    def _report(self, shard: str, key: str, problems: list[str], fields: dict) -> None:
        if self.report_file is None:
            # No report file: the log is where the sample is named (nothing is dropped unsaid).
            logger.warning("invalid sample %s in shard %s: %s", key, shard, "; ".join(problems))
            return
        path = Path(self.report_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"shard": shard, "key": key, "problems": problems,
                           "captions": fields.get(self.caption_column)}, default=str) + "\n"
        # One short append per sample: lines from several processes and workers do not interleave.
        with path.open("a", encoding="utf-8") as f:
            f.write(line)


def _flatten(raw: dict) -> dict:
    """A webdataset sample's ``.json`` part holds the row's fields; lift them beside the others."""
    fields = {k: v for k, v in raw.items() if k != "json"}
    if isinstance(raw.get("json"), dict):
        fields.update(raw["json"])
    return fields
