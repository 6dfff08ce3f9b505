"""Streaming training data: shards read as training goes, never loaded or scanned up front.

Sources (``--streaming``):

* ``--train_file``: webdataset ``.tar`` shards, ``.parquet`` or ``.jsonl`` shards: files, globs,
  folders or URLs (``https://``, ``hf://``, ``s3://`` through fsspec), comma-separated;
* ``--dataset_name``: a hub dataset id, or a local folder of such shards.

All of them become one ``datasets.IterableDataset`` over the shards, read one by one by
shard_reading.py (tar and JSONL itself, parquet and JSON through ``datasets``' builders)
with image decoding off (a corrupt image must be a reported sample, not a crashed iterator),
every row carrying the shard it came from (``__url__``) and its key in that shard
(``__key__``); a shard that cannot be read to its end adds one reported entry, not a crash. ``split_dataset_by_node`` gives each
process its shards, and ``datasets`` gives each DataLoader worker its share of those.
``ValidatedStream`` (stream_checks.py) then checks, shuffles and decodes the rows, and
``StreamLoader`` (stream_loader.py) makes the position resumable.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import random
from pathlib import Path

import datasets
import fsspec
from datasets.distributed import split_dataset_by_node

from ..paths import missing_path_message
from ..run_record import SHARDS_PREFIX
from .loading import DataArguments, load_split, to_read_schema
from .paraphrases import load_paraphrase_file
from .shard_reading import shard_rows
from .stream_checks import ValidatedStream

logger = logging.getLogger(__name__)

SHARD_BUILDERS = {".tar": "webdataset", ".parquet": "parquet", ".jsonl": "json", ".json": "json"}


def shard_files(spec: str) -> list[str]:
    """Expand a comma-separated list of shard files, globs, folders and URLs, in a stable order."""
    files: list[str] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        if "://" in part:  # remote (or file://): opened through fsspec, as datasets opens it
            if glob.has_magic(part):
                fs, pattern = fsspec.core.url_to_fs(part)
                found = sorted(fs.unstrip_protocol(path) for path in fs.glob(pattern))
                if not found:
                    raise FileNotFoundError(f"no shard matches {part!r}")
                files.extend(found)
            else:
                files.append(part)
        elif os.path.isdir(part):
            found = sorted(str(p) for p in Path(part).iterdir() if p.suffix.lower() in SHARD_BUILDERS)
            if not found:
                raise FileNotFoundError(f"folder {part!r} holds no {'/'.join(sorted(SHARD_BUILDERS))} shards")
            files.extend(found)
        elif glob.has_magic(part):
            found = sorted(glob.glob(part))
            if not found:
                raise FileNotFoundError(f"no shard matches {part!r}")
            files.extend(found)
        elif os.path.isfile(part):
            files.append(part)
        else:
            raise FileNotFoundError(missing_path_message("shard", part))
    if not files:
        raise ValueError("no shards given")
    return files


def builder_for(files: list[str]) -> str:
    """The ``datasets`` builder of a shard list; all shards must share one format."""
    suffixes = {Path(f.split("?")[0]).suffix.lower() for f in files}
    unknown = sorted(s for s in suffixes if s not in SHARD_BUILDERS)
    if unknown:
        raise ValueError(f"unsupported shard type(s) {unknown}: use {sorted(SHARD_BUILDERS)}")
    builders = {SHARD_BUILDERS[s] for s in suffixes}
    if len(builders) > 1:
        raise ValueError(f"shards mix formats {sorted(suffixes)}: stream one format at a time")
    return builders.pop()


def _rows_of_shards(shards: list[str], builder: str):
    """Rows of the shards, each named by its shard and key (see shard_reading.py).

    This generator's ``shards`` list is what ``datasets`` splits across processes and
    workers (and records in its resumable state: shard, then position in it).
    """
    for shard in shards:
        yield from shard_rows(shard, builder)


def open_shards(files: list[str], seed: int | None = None, builder: str | None = None) -> datasets.IterableDataset:
    """One ``IterableDataset`` over ``files`` whose rows carry ``__url__`` and ``__key__``.

    With a ``seed``, the first pass reads the shards in an order drawn from it; ``datasets``
    reshuffles the order itself on every later pass (``set_epoch``). Its ``shuffle()`` is
    not used: it adds a sample buffer that ``load_state_dict`` does not restore, and its
    multi-shard state cannot be reloaded inside DataLoader workers (datasets 5.2).
    """
    builder = builder or builder_for(files)
    if seed is not None:
        files = list(files)
        random.Random(seed).shuffle(files)
    return datasets.IterableDataset.from_generator(_rows_of_shards, gen_kwargs={"shards": files, "builder": builder})


def source_shards(data_args: DataArguments) -> tuple[list[str], str | None] | None:
    """The shard files ``data_args`` names and their builder (``None``: from their suffix), or
    ``None`` for a hub dataset that is streamed whole (its files are not in a format we know)."""
    if data_args.train_file is not None:
        return shard_files(data_args.train_file), None
    if data_args.dataset_name is None:
        raise ValueError("no training data: pass --dataset_name or --train_file")
    name = data_args.dataset_name
    if os.path.isdir(name) and any(Path(name, f).suffix.lower() in SHARD_BUILDERS for f in os.listdir(name)):
        return shard_files(name), None
    if not os.path.isdir(name) and name.startswith((".", "/", "~")):
        raise FileNotFoundError(missing_path_message("dataset folder", name))
    # A hub dataset (or a folder laid out like one, e.g. data/train-*.parquet): stream its
    # data files shard by shard when they are in a format we know, so invalid samples are
    # reported with their file.
    builder = datasets.load_dataset_builder(name, data_args.dataset_config_name, cache_dir=data_args.cache_dir)
    files = {str(split): f for split, f in (builder.config.data_files or {}).items()}.get(data_args.train_split)
    if files and builder.name in SHARD_BUILDERS.values():
        return list(files), builder.name
    return None


def open_source(data_args: DataArguments, seed: int | None = None,
                shards: tuple[list[str], str | None] | None = None) -> datasets.IterableDataset:
    """The raw stream ``data_args`` names (see the module docstring); ``seed`` orders the shards.
    ``shards``: ``source_shards(data_args)``, when already listed."""
    shards = shards if shards is not None else source_shards(data_args)
    if shards is not None:
        return open_shards(shards[0], seed, shards[1])
    name = data_args.dataset_name
    stream = datasets.load_dataset(name, data_args.dataset_config_name, split=data_args.train_split,
                                   streaming=True).decode(False)
    return stream.map(_named_by_dataset, with_indices=True, fn_kwargs={"name": name})


def shard_list_fingerprint(data_args: DataArguments, shards: list[str] | None) -> str:
    """A fingerprint of the stream's shard list: each shard's file name and size, in order.

    What a resume compares, as a map-style dataset's rows: shards added, removed, renamed or
    rewritten to another size are other data; the same shards in another folder are not.
    Remote shards are named by their URL, without a size (that would cost a request each).
    A hub dataset streamed whole is named by id, config and split.
    """
    if shards is None:
        listed = [[data_args.dataset_name, data_args.dataset_config_name, data_args.train_split]]
    else:
        listed = [_name_and_size(shard) for shard in shards]
    digest = hashlib.blake2b(json.dumps(listed).encode(), digest_size=16).hexdigest()
    return SHARDS_PREFIX + digest


def _name_and_size(shard: str) -> list:
    path = shard[len("file://"):] if shard.startswith("file://") else shard
    if "://" in path or not os.path.isfile(path):
        return [shard, None]
    return [os.path.basename(path), os.path.getsize(path)]


def _named_by_dataset(row: dict, index: int, name: str) -> dict:
    # Rows of a dataset whose files we cannot name (e.g. a loading-script-free imagefolder):
    # the shard is the dataset, the key the position in this reader's stream.
    return {"__url__": row.get("__url__") or name, "__key__": row.get("__key__") or str(index)}


def open_read_stream(data_args: DataArguments, config) -> tuple[ValidatedStream, datasets.Dataset | None]:
    """The training stream of this process (and a map-style evaluation split, if one is named).

    ``config`` is the ``ReadConfig``: its ``max_steps`` sets the schedule (a stream has no
    length), its process index and world size pick this process's shards, and its
    ``output_dir`` holds the invalid-rows report.
    """
    if config.max_steps is None or config.max_steps <= 0:
        raise ValueError("--streaming needs --max_steps: a stream has no length to count epochs in")
    # Samples are shuffled by ValidatedStream in blocks it can restore exactly on resume.
    shards = source_shards(data_args)
    source = open_source(data_args, config.seed if data_args.shuffle_buffer_size > 0 else None, shards)
    if config.world_size > 1:
        if source.n_shards % config.world_size:
            logger.warning("%d shards for %d processes: every process reads every shard and keeps 1 sample in %d; "
                           "write a multiple of %d shards to read each once", source.n_shards, config.world_size,
                           config.world_size, config.world_size)
        source = split_dataset_by_node(source, rank=config.process_index, world_size=config.world_size)
    table = load_paraphrase_file(data_args.paraphrase_file) if data_args.paraphrase_file else None
    stream = ValidatedStream(
        source, image_column=data_args.image_column, caption_column=data_args.caption_column,
        paraphrase_column=data_args.paraphrase_column, negatives_column=data_args.negatives_column,
        hard_negatives=data_args.hard_negatives, num_hard_negatives=config.num_hard_negatives,
        paraphrases=table, paraphrase_file=data_args.paraphrase_file,
        shuffle_buffer_size=data_args.shuffle_buffer_size, seed=config.seed,
        max_invalid_fraction=data_args.max_invalid_fraction,
        min_samples=data_args.min_samples_for_invalid_check,
        image_root=data_args.image_root, allow_outside_image_root=data_args.allow_outside_image_root,
        report_file=data_args.invalid_rows_report or os.path.join(config.output_dir, "invalid_rows.jsonl"),
    )
    # What a resume compares with its checkpoint's data (run_record.data_fingerprint).
    stream.shard_fingerprint = shard_list_fingerprint(data_args, shards[0] if shards is not None else None)
    evaluation = load_split(data_args, data_args.eval_split, data_args.validation_file,
                            data_args.karpathy_eval_splits)
    if evaluation is not None:
        if data_args.max_eval_samples is not None:
            evaluation = evaluation.select(range(min(len(evaluation), data_args.max_eval_samples)))
        evaluation = to_read_schema(evaluation, data_args)
    return stream, evaluation
