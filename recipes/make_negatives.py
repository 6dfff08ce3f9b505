"""Precompute hard-negative captions for a caption dataset.

Reads JSONL/JSON files, a ``datasets`` folder (``save_to_disk``) or a hub dataset id,
adds a ``negatives`` column (list of strings per caption; a list of such lists when the
caption column holds several captions per row) and a ``negative_categories`` column
(the category of each negative), writes the result, and prints the counts-by-category
report. Negatives are deterministic per (seed, caption), so ``--num_proc`` does not
change the output.

    python recipes/make_negatives.py --input train.jsonl --output train_neg.jsonl \\
        --num_negatives 3 --seed 2025 --num_proc 4

Without ``--fill_shortfall`` a caption that allows fewer than K negatives keeps fewer
(the training collator tops it up from its batch); with it, the shortfall is filled
here from other rows of the same map batch (category ``batch_fill``). A negatives list
is never empty: a caption with nothing to swap or replace ("Hello.") always gets one
``batch_fill`` negative, a negative or caption of another row of its batch; when its
batch holds no other row to borrow from, the run stops naming the row.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

import datasets

from read_trainer.cli import ArgumentParser, run_recipe
from read_trainer.data.negatives import (
    BACKENDS,
    CATEGORIES,
    HardNegativeGenerator,
    caption_rng,
    fill_shortfall,
    format_report,
)
from read_trainer.resolve import resolve_id

BATCH_FILL = "batch_fill"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0],
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--input", required=True, nargs="+",
                        help="JSONL/JSON file(s), a save_to_disk folder, or a hub dataset id.")
    parser.add_argument("--output", required=True,
                        help="Output .jsonl file, or a folder for save_to_disk.")
    parser.add_argument("--caption_column", default="caption", help="Column holding the caption(s).")
    parser.add_argument("--num_negatives", type=int, default=3, help="K, negatives per caption.")
    parser.add_argument("--seed", type=int, default=2025, help="Seed; with the caption it fixes the negatives.")
    parser.add_argument("--num_proc", type=int, default=1, help="Worker processes for datasets.map.")
    parser.add_argument("--backend", choices=BACKENDS, default="rules",
                        help="rules: shipped lexicons, no download. spacy: needs spaCy and its model.")
    parser.add_argument("--categories", nargs="+", choices=CATEGORIES, default=None,
                        help="Preferred categories (default: all); others are only a fallback.")
    parser.add_argument("--fill_shortfall", action="store_true",
                        help="Fill captions short of K with other rows' negatives from the same batch.")
    parser.add_argument("--dataset_config", default=None, help="Hub dataset config name.")
    parser.add_argument("--split", default=None, help="Split to use (hub ids default to 'train').")
    parser.add_argument("--batch_size", type=int, default=1000, help="Rows per datasets.map batch.")
    return parser.parse_args(argv)


def _read_json_rows(path: Path) -> list[dict]:
    """A JSON list of rows, or a dict of rows keyed by id (the SugarCrepe layout)."""
    with path.open(encoding="utf-8") as f:
        data = json.load(f)
    if isinstance(data, dict):
        return list(data.values())
    if isinstance(data, list):
        return data
    raise ValueError(f"{path}: expected a JSON list or dict of rows, got {type(data).__name__}")


def load_input(inputs: list[str], config: str | None, split: str | None):
    """Load the input as a ``Dataset`` or ``DatasetDict``."""
    first = Path(inputs[0])
    if first.is_dir():
        if len(inputs) > 1:
            raise ValueError("give a single save_to_disk folder")
        loaded = datasets.load_from_disk(str(first))
        return loaded[split] if split is not None and isinstance(loaded, datasets.DatasetDict) else loaded
    if first.suffix in (".jsonl", ".json"):
        missing = [p for p in inputs if not Path(p).is_file()]
        if missing:
            raise FileNotFoundError(f"input file(s) not found: {missing}")
        if all(p.endswith(".jsonl") for p in inputs):
            return datasets.load_dataset("json", data_files=inputs, split="train")
        rows = [row for p in inputs for row in (_read_json_rows(Path(p)) if p.endswith(".json") else _read_jsonl(Path(p)))]
        return datasets.Dataset.from_list(rows)
    if len(inputs) > 1:
        raise ValueError("give a single hub dataset id")
    resolve_id(inputs[0], "dataset")  # a missing file or an unreachable id fails now, in one line
    return datasets.load_dataset(inputs[0], config, split=split or "train")


def _read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


class NegativeMapper:
    """Batched ``datasets.map`` function; picklable, so it runs under ``num_proc``.

    The generator is built lazily in each worker (a spaCy pipeline may not pickle).
    """

    def __init__(self, args: argparse.Namespace):
        self.column = args.caption_column
        self.k = args.num_negatives
        self.seed = args.seed
        self.backend = args.backend
        self.categories = args.categories
        self.fill = args.fill_shortfall
        self._generator = None

    def __getstate__(self):
        return {**self.__dict__, "_generator": None}

    @property
    def generator(self) -> HardNegativeGenerator:
        if self._generator is None:
            self._generator = HardNegativeGenerator(self.seed, self.categories, self.backend)
        return self._generator

    def __call__(self, batch: dict, indices: list[int]) -> dict:
        values = batch[self.column]
        flat, owners = [], []  # every caption of the batch, and its row position
        for position, (value, index) in enumerate(zip(values, indices)):
            for caption in _captions_of(value, self.column, index):
                flat.append(caption)
                owners.append(position)
        generated = [self.generator.generate(caption, self.k) for caption in flat]
        texts = [[n.text for n in negs] for negs in generated]
        categories = [[n.category for n in negs] for negs in generated]
        if flat and (self.fill or not all(texts)):
            # Captions of one row describe one image: they must not fill each other. Without
            # --fill_shortfall only empty lists are filled, to one negative: an empty list
            # would leave that anchor without a hard negative in every batch.
            rng = caption_rng(self.seed, "batch-fill:" + flat[0])
            filled = fill_shortfall(texts, flat, self.k if self.fill else 1, rng, groups=owners)
            for own_categories, before, after in zip(categories, texts, filled):
                own_categories.extend([BATCH_FILL] * (len(after) - len(before)))
            texts = filled
        for caption, negatives, owner in zip(flat, texts, owners):
            if not negatives:
                raise ValueError(f"row {indices[owner]}: caption {caption!r} allows no hard negative and its batch "
                                 f"has no other row to borrow one from; add rows or raise --batch_size")
        return {
            "negatives": _regroup(texts, owners, values),
            "negative_categories": _regroup(categories, owners, values),
        }


def _captions_of(value, column: str, index: int) -> list[str]:
    """A row's captions: the string itself, or the strings of a list."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise TypeError(f"row {index}: column {column!r} holds {value!r}; expected a string or a list of strings")


def _regroup(per_caption: list, owners: list[int], values: list) -> list:
    """Undo the flattening: one entry per row, a list of entries for list-valued rows."""
    rows = [[] for _ in values]
    for owner, item in zip(owners, per_caption):
        rows[owner].append(item)
    return [group[0] if isinstance(value, str) else group for group, value in zip(rows, values)]


def add_negatives(dataset, args: argparse.Namespace):
    """``dataset`` (Dataset or DatasetDict) with the two negative columns added."""
    for name, columns in _column_names(dataset).items():
        if args.caption_column not in columns:
            raise KeyError(f"{name}: no column {args.caption_column!r} (columns: {columns})")
        clash = {"negatives", "negative_categories"} & set(columns)
        if clash:
            raise ValueError(f"{name}: input already has column(s) {sorted(clash)}")
    # Building the generator once here turns a missing spaCy into an error before any work.
    HardNegativeGenerator(args.seed, args.categories, args.backend)
    return dataset.map(
        NegativeMapper(args), batched=True, batch_size=args.batch_size, with_indices=True,
        num_proc=args.num_proc if args.num_proc > 1 else None, desc="hard negatives",
    )


def _column_names(dataset) -> dict[str, list[str]]:
    if isinstance(dataset, datasets.DatasetDict):
        return {split: ds.column_names for split, ds in dataset.items()}
    return {"dataset": dataset.column_names}


def report_stats(dataset, column: str, k: int, preferred: list[str] | None) -> collections.Counter:
    """Rebuild the generator's counters from the output columns.

    Workers' own counters die with them under ``num_proc``; the columns carry
    everything the report needs.
    """
    preferred_set = set(CATEGORIES if preferred is None else preferred)
    stats: collections.Counter = collections.Counter()
    splits = dataset.values() if isinstance(dataset, datasets.DatasetDict) else [dataset]
    for split in splits:
        for value, row in zip(split[column], split["negative_categories"]):
            for categories in ([row] if isinstance(value, str) else row):
                own = [c for c in categories if c != BATCH_FILL]
                stats["captions"] += 1
                stats["negatives"] += len(categories)
                for category in categories:
                    stats[f"category/{category}"] += 1
                stats["fallback/other_category"] += sum(c not in preferred_set for c in own)
                stats["fallback/other_caption"] += len(categories) - len(own)
                if sum(c in preferred_set for c in own) >= k:
                    stats["complete/preferred"] += 1
                if len(own) < k:
                    stats["shortfall/captions"] += 1
                    stats["shortfall/negatives"] += k - len(own)
                if len(categories) < k:
                    stats["shortfall/after_batch_fill"] += 1
    return stats


def write_output(dataset, output: str) -> None:
    if output.endswith((".jsonl", ".json")):
        if isinstance(dataset, datasets.DatasetDict):
            raise ValueError("a DatasetDict needs a folder --output (or choose one --split)")
        dataset.to_json(output, lines=True, force_ascii=False)
    else:
        dataset.save_to_disk(output)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.num_negatives < 1:
        raise ValueError("--num_negatives must be >= 1")
    dataset = load_input(args.input, args.dataset_config, args.split)
    dataset = add_negatives(dataset, args)
    write_output(dataset, args.output)
    stats = report_stats(dataset, args.caption_column, args.num_negatives, args.categories)
    print(format_report(stats, args.num_negatives))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(run_recipe(main))
