"""Loading training data into READ's row schema.

Whatever goes in (a hub dataset id, a local ``imagefolder`` with ``metadata.jsonl``, a
folder written by ``Dataset.save_to_disk``, or JSON/JSONL/CSV/Parquet files with image
paths), one schema comes out: ``image``, ``captions`` and, when present,
``paraphrases`` and ``negatives``, plus ``row_id`` (the row's position), which names
the row in errors and seeds its sampling. No loading scripts: works on ``datasets>=4``.
"""

from __future__ import annotations

import codecs
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import datasets

from ..paths import missing_path_message
from .rows import refused_image_path

logger = logging.getLogger(__name__)

FILE_BUILDERS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}


@dataclass
class DataArguments:
    """Where the training data comes from and which columns hold what (flags as in run_clip.py)."""

    _argument_group_name = "data (where rows come from, which columns hold what, what is checked)"  # its title in --help (a class attribute, not a field)

    dataset_name: str | None = field(
        default=None,
        metadata={"help": "Hub dataset id, a local imagefolder (metadata.jsonl + images), or a save_to_disk folder."},
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "Dataset configuration name."})
    train_file: str | None = field(
        default=None, metadata={"help": "Local JSON/JSONL/CSV/Parquet file with image paths and captions."}
    )
    validation_file: str | None = field(default=None, metadata={"help": "Local evaluation file, same format."})
    image_root: str | None = field(
        default=None, metadata={"help": "Folder that relative image paths are resolved against (default: the file's folder)."}
    )
    allow_outside_image_root: bool = field(
        default=False,
        metadata={"help": "Read image paths that lead outside --image_root (or the data file's / shard's folder): "
                  "absolute paths elsewhere and '../'. Off: such rows are bad rows, named by the scan, and no file "
                  "outside the data folder is opened."},
    )
    train_split: str = field(default="train", metadata={"help": "Split of dataset_name to train on."})
    eval_split: str | None = field(default=None, metadata={"help": "Split of dataset_name to evaluate on."})
    image_column: str = field(default="image", metadata={"help": "Column with images (PIL, path or bytes)."})
    caption_column: str = field(
        default="captions", metadata={"help": "Column with the image's caption(s): a string or a list of strings."}
    )
    paraphrase_column: str | None = field(
        default="paraphrases", metadata={"help": "Column with paraphrases (optional; missing: another caption is used)."}
    )
    negatives_column: str | None = field(
        default="negatives", metadata={"help": "Column with hard-negative captions (optional with a generator)."}
    )
    hard_negatives: str = field(
        default="auto",
        metadata={"help": "Where hard negatives come from: 'column' (the negatives column), 'generate' (swaps and "
                  "replacements made on the fly from each anchor) or 'auto' (the column if present, else generate).",
                  "choices": ["auto", "column", "generate"]},
    )
    negative_backend: str = field(
        default="rules",
        metadata={"help": "Generator backend: 'rules' (offline lexicons, no model) or 'spacy' (needs spaCy and "
                  "en_core_web_sm installed).", "choices": ["rules", "spacy"]},
    )
    karpathy_splits: str = field(
        default="train,restval",
        metadata={"help": "Splits taken for training from a Karpathy dataset_coco.json / dataset_flickr30k.json."},
    )
    karpathy_eval_splits: str = field(
        default="val", metadata={"help": "Splits taken for evaluation from a Karpathy file (validation_file)."}
    )
    paraphrase_file: str | None = field(
        default=None,
        metadata={"help": "Sidecar JSONL of paraphrases keyed by caption ({'caption': ..., 'paraphrases': [...]}), "
                  "as written by recipes/make_paraphrases.py, or one JSON object keyed by image id ({cocoid: "
                  "[...]}, see paraphrase_key_column). Missing or matching nothing is an error; 'none' = no file."},
    )
    paraphrase_key_column: str = field(
        default="cocoid",
        metadata={"help": "Image-id column a per-image paraphrase_file ({image id: [paraphrases]}, e.g. READ's "
                  "zero.json keyed by COCO cocoid) is joined on; 'image_id' (the Karpathy-file loader's name for "
                  "it) is used when this column is absent."},
    )
    invalid_rows: str = field(
        default="error",
        metadata={"help": "What the up-front scan does with bad rows: 'error' (stop, naming them) or 'skip' "
                  "(drop them into a JSONL report).", "choices": ["error", "skip"]},
    )
    invalid_rows_report: str | None = field(
        default=None, metadata={"help": "Where skipped rows are written (default: <output_dir>/invalid_rows.jsonl)."}
    )
    scan_num_proc: int | None = field(default=None, metadata={"help": "Processes for the up-front image scan."})
    skip_scan: bool = field(
        default=False, metadata={"help": "Skip the up-front scan of every image (bad rows then fail at their step)."}
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Truncate the training set (debugging)."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Truncate the evaluation set."})
    cache_dir: str | None = field(default=None, metadata={"help": "datasets cache folder."})
    # Streaming (read_trainer/data/streaming.py): rows are read, checked and decoded as training goes.
    streaming: bool = field(
        default=False,
        metadata={"help": "Stream the training data instead of loading it: a hub id (--dataset_name), or local or "
                  "remote webdataset .tar / .parquet / .jsonl shards (--train_file: files, globs, folders, comma-"
                  "separated). Each process and DataLoader worker reads its own shards; needs --max_steps."},
    )
    shuffle_buffer_size: int = field(
        default=1000,
        metadata={"help": "Streaming: samples shuffled together (in blocks, restored exactly on resume); the shard "
                  "order is reshuffled every pass. 0 keeps the stream's order."},
    )
    max_invalid_fraction: float = field(
        default=0.05,
        metadata={"help": "Streaming: stop the run when more than this fraction of a shard's samples (or of all "
                  "samples read) are invalid. Invalid samples are skipped and written to the invalid-rows report."},
    )
    min_samples_for_invalid_check: int = field(
        default=100,
        metadata={"help": "Streaming: samples a shard (and the whole stream) must have had before "
                  "--max_invalid_fraction is checked."},
    )

    def __post_init__(self):
        # Checked when the flags are read, not after the data is loaded and scanned.
        if not 0.0 <= self.max_invalid_fraction <= 1.0:
            raise ValueError(f"--max_invalid_fraction must be in [0, 1], got {self.max_invalid_fraction}")
        for name in ("shuffle_buffer_size", "min_samples_for_invalid_check"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name} must be >= 0, got {getattr(self, name)}")
        for name in ("max_train_samples", "max_eval_samples", "scan_num_proc"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"--{name} must be at least 1 (or left out), got {getattr(self, name)}")
        # 'none' states "no paraphrase file" on a command line whose YAML names one.
        if isinstance(self.paraphrase_file, str) and self.paraphrase_file.strip().lower() in ("", "none"):
            self.paraphrase_file = None


def _is_saved_dataset(path: Path) -> bool:
    return (path / "dataset_info.json").is_file() or (path / "dataset_dict.json").is_file() \
        or (path / "state.json").is_file()


def is_karpathy_file(path: Path) -> bool:
    """Karpathy's dataset_coco.json: one JSON object with an ``images`` list holding ``sentences``."""
    if path.suffix.lower() != ".json":
        return False
    with path.open("rb") as f:
        head = f.read(4096).decode("utf-8", errors="ignore").lstrip()
    return head.startswith("{") and '"images"' in head


def load_karpathy_rows(path: Path, splits: str) -> datasets.Dataset:
    """One row per image of the chosen splits: all its human captions, its image path, its id.

    Image paths are ``filepath/filename`` (``filepath`` is e.g. ``train2014`` in the COCO
    file and absent in Flickr30k's), relative to the image root: ``resolve_image_paths``
    joins them with it, once.
    """
    wanted = {s.strip() for s in splits.split(",") if s.strip()}
    with path.open(encoding="utf-8", errors="replace") as f:  # damaged captions are named by the scan
        content = json.load(f)
    rows = {"image": [], "captions": [], "image_id": [], "split": []}
    for entry in content["images"]:
        if entry.get("split") not in wanted:
            continue
        rows["image"].append(str(Path(entry.get("filepath", "")) / entry["filename"]))
        rows["captions"].append([s["raw"].strip() for s in entry["sentences"]])
        rows["image_id"].append(str(entry.get("cocoid", entry.get("imgid", entry["filename"]))))
        rows["split"].append(entry["split"])
    if not rows["image"]:
        found = sorted({e.get("split") for e in content["images"]})
        raise ValueError(f"{path}: no images in splits {sorted(wanted)}; the file has {found}")
    return datasets.Dataset.from_dict(rows)


def _is_utf8(path: Path) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                decoder.decode(block)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _utf8_copy(path: Path, cache_dir: str | None) -> Path:
    """A copy of a text data file with its invalid UTF-8 bytes replaced by U+FFFD.

    ``datasets`` stops on the first invalid byte naming no row; in the copy the damaged
    rows load, and the up-front scan names them as bad rows (their text holds U+FFFD)
    under the ``invalid_rows`` policy.
    """
    folder = Path(cache_dir) if cache_dir else Path(tempfile.gettempdir())
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=path.stem + ".utf8-", suffix=path.suffix, dir=folder)
    with path.open(encoding="utf-8", errors="replace", newline="") as src, \
            os.fdopen(fd, "w", encoding="utf-8", newline="") as dst:
        shutil.copyfileobj(src, dst)
    logger.warning("%s is not valid UTF-8: reading it with the invalid bytes replaced (those rows are reported as bad)",
                   path)
    return Path(name)


def check_data_paths(data_args: DataArguments) -> None:
    """The local files and folders the data flags name exist (checked before anything is claimed or loaded)."""
    for flag, path, is_dir in (("--train_file", data_args.train_file, False),
                               ("--validation_file", data_args.validation_file, False),
                               ("--paraphrase_file", data_args.paraphrase_file, False),
                               ("--image_root", data_args.image_root, True)):
        if path is None or "://" in path or (data_args.streaming and flag == "--train_file"):
            continue  # URLs, and stream specs (globs, folders, comma-separated) are checked by streaming.py
        if not (os.path.isdir(path) if is_dir else os.path.isfile(path)):
            raise FileNotFoundError(missing_path_message(flag, path) + ("" if is_dir else " or is not a file"))


def load_split(data_args: DataArguments, split: str | None, file: str | None,
               karpathy_splits: str = "train,restval") -> datasets.Dataset | None:
    """Load one split from whichever source ``data_args`` names."""
    if data_args.image_root is not None and not os.path.isdir(data_args.image_root):
        raise FileNotFoundError(missing_path_message("--image_root", data_args.image_root))
    if file is not None:
        path = Path(file)
        if not path.is_file():
            raise FileNotFoundError(missing_path_message("data file", file))
        root = data_args.image_root or str(path.parent)
        if is_karpathy_file(path):
            dataset = load_karpathy_rows(path, karpathy_splits)
            return resolve_image_paths(dataset, "image", root, data_args.allow_outside_image_root)
        builder = FILE_BUILDERS.get(path.suffix.lower())
        if builder is None:
            raise ValueError(f"unsupported data file {file!r}: use one of {sorted(FILE_BUILDERS)}")
        if builder != "parquet" and not _has_content(path):
            raise ValueError(f"data file {file!r} holds no rows (it is empty)")
        readable = path if builder == "parquet" or _is_utf8(path) else _utf8_copy(path, data_args.cache_dir)
        dataset = _generate(f"data file {file!r}", lambda: datasets.load_dataset(
            builder, data_files=str(readable), split="train", cache_dir=data_args.cache_dir), path)
        return resolve_image_paths(dataset, data_args.image_column, root, data_args.allow_outside_image_root)
    if data_args.dataset_name is None or split is None:
        return None
    source = Path(data_args.dataset_name)
    if source.is_dir() and _is_saved_dataset(source):
        loaded = datasets.load_from_disk(str(source))
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise ValueError(f"{source} has splits {list(loaded)}, not {split!r}")
            return loaded[split]
        return loaded
    if source.is_dir():
        # A local imagefolder: metadata.jsonl (file_name + caption fields) beside the images.
        if not any(source.rglob("metadata.*")):
            raise FileNotFoundError(f"{source} has no metadata.jsonl/csv: not a datasets imagefolder")
        return _generate(f"dataset folder {str(source)!r}", lambda: datasets.load_dataset(
            "imagefolder", data_dir=str(source), split=split, cache_dir=data_args.cache_dir))
    if data_args.dataset_name.startswith((".", "/", "~")):
        # Looks like a local path, not a hub id: say so rather than asking the Hub.
        raise FileNotFoundError(missing_path_message("dataset folder", data_args.dataset_name))
    return _generate(f"dataset {data_args.dataset_name!r}", lambda: datasets.load_dataset(
        data_args.dataset_name, data_args.dataset_config_name, split=split, cache_dir=data_args.cache_dir))


def _has_content(path: Path) -> bool:
    with path.open("rb") as f:
        return any(block.strip() for block in iter(lambda: f.read(1 << 16), b""))


def _generate(name: str, load, path: Path | None = None) -> datasets.Dataset:
    """``load()``, with the errors of ``datasets``' builders (a traceback naming no row) as one line."""
    try:
        return load()
    except datasets.exceptions.DatasetGenerationError as error:
        line = _first_bad_json_line(path) if path is not None and path.suffix.lower() == ".jsonl" else None
        if line is not None:
            raise ValueError(f"{name} line {line[0]} is {line[1]}: fix or remove that line") from error
        cause = error.__cause__ or error.__context__ or error
        raise ValueError(f"{name} cannot be read: {' '.join(str(cause).split())[:300]}") from error
    except StopIteration:  # datasets' way of saying a data source has no rows ...
        raise ValueError(f"{name} holds no rows") from None
    except ValueError as error:
        if "corresponds to no data" not in str(error):  # ... or a split of none
            raise
        raise ValueError(f"{name} holds no rows") from None


def _first_bad_json_line(path: Path) -> tuple[int, str] | None:
    """(line number, problem) of the first line of a JSONL file that is not one JSON object."""
    with path.open(encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as err:
                return number, f"not valid JSON ({err.msg}, column {err.colno})"
            if not isinstance(value, dict):
                return number, f"a JSON {type(value).__name__}, not an object"
    return None


def resolve_image_paths(dataset: datasets.Dataset, image_column: str, root: str,
                        allow_outside: bool = False) -> datasets.Dataset:
    """Make relative image paths absolute (relative to ``root``) so rows work from any cwd.

    A path that leads outside ``root`` (absolute elsewhere, or through ``..``) is refused
    unless ``allow_outside``: the row's image becomes :func:`~.rows.refused_image_path`, a bad
    row that names the path, and the file is never opened. The test is on the path as
    written (``os.path.normpath``): links inside ``root`` are the data owner's own.
    """
    if image_column not in dataset.column_names or dataset.features[image_column].dtype != "string":
        return dataset
    base = os.path.normpath(os.path.abspath(root))

    def _resolve(batch):
        resolved = []
        for p in batch[image_column]:
            if p is None or p == "":
                resolved.append(p)
                continue
            full = os.path.normpath(os.path.join(base, os.path.expanduser(p)))
            if not allow_outside and os.path.commonpath([base, full]) != base:
                full = refused_image_path(
                    f"image path outside the data folder: {p!r} is outside {base} (pass "
                    "--allow_outside_image_root true to read it, or --image_root a folder holding it)")
            resolved.append(full)
        return {image_column: resolved}

    return dataset.map(_resolve, batched=True, desc="resolving image paths")


def to_read_schema(dataset: datasets.Dataset, data_args: DataArguments) -> datasets.Dataset:
    """Rename the user's columns to READ's names and number the rows.

    A missing image or caption column is an error naming the columns that exist.
    """
    renames = {
        data_args.image_column: "image",
        data_args.caption_column: "captions",
        data_args.paraphrase_column: "paraphrases",
        data_args.negatives_column: "negatives",
    }
    for source, target in ((data_args.image_column, "image"), (data_args.caption_column, "captions")):
        if source not in dataset.column_names:
            raise ValueError(
                f"column {source!r} (for {target}) not found; the dataset has {dataset.column_names}. "
                f"Pass --{'image' if target == 'image' else 'caption'}_column"
            )
    renames = {s: t for s, t in renames.items() if s and s in dataset.column_names and s != t}
    clashes = [t for t in renames.values() if t in dataset.column_names and t not in renames]
    if clashes:
        dataset = dataset.remove_columns(clashes)
    dataset = dataset.rename_columns(renames)
    if "row_id" in dataset.column_names:
        dataset = dataset.remove_columns("row_id")
    if isinstance(dataset.features["image"], datasets.Image) and dataset.features["image"].decode:
        # Rows hold the encoded image; the collator decodes it with the package's own decoder
        # (rows.decode_image), as it does a JSONL row's path and a stream's bytes.
        dataset = dataset.cast_column("image", datasets.Image(decode=False))
    return dataset.add_column("row_id", list(range(len(dataset))))


def negative_generator_for(data_args: DataArguments, dataset: datasets.Dataset, num_hard_negatives: int,
                           seed: int):
    """The generator ``hard_negatives`` asks for, or ``None`` when negatives come from the column."""
    return default_negative_generator((dataset,), num_hard_negatives, seed, mode=data_args.hard_negatives,
                                      backend=data_args.negative_backend)


def default_negative_generator(splits: Sequence[Any], num_hard_negatives: int, seed: int, mode: str = "auto",
                               backend: str = "rules", negatives_column: str = "negatives"):
    """The package's ``HardNegativeGenerator`` when hard negatives must be made, else ``None``.

    ``mode`` is ``hard_negatives``: ``column`` never generates, ``generate`` always does, and
    ``auto`` does when one of ``splits`` (``None`` entries ignored) lacks ``negatives_column``;
    a stream, whose columns are unknown until read, counts as lacking it (the collator uses a
    row's own negatives whenever it has them). ``run_read.py`` and ``ReadTrainer`` both decide here.
    """
    from .negatives import HardNegativeGenerator

    if num_hard_negatives == 0 or mode == "column":
        return None
    if mode == "auto" and all(negatives_column in (getattr(d, "column_names", None) or ())
                              for d in splits if d is not None):
        return None
    return HardNegativeGenerator(seed=seed, backend=backend)


def load_read_datasets(data_args: DataArguments) -> tuple[datasets.Dataset, datasets.Dataset | None]:
    """Load the train (and optional eval) split in READ's row schema."""
    if data_args.dataset_name is None and data_args.train_file is None:
        raise ValueError("no training data: pass --dataset_name or --train_file")
    check_data_paths(data_args)
    train = load_split(data_args, data_args.train_split, data_args.train_file, data_args.karpathy_splits)
    if len(train) == 0:
        raise ValueError(f"the training data ({data_args.train_file or data_args.dataset_name}) holds no rows")
    evaluation = load_split(data_args, data_args.eval_split, data_args.validation_file,
                            data_args.karpathy_eval_splits)
    if data_args.max_train_samples is not None:
        train = train.select(range(min(len(train), data_args.max_train_samples)))
    if evaluation is not None and data_args.max_eval_samples is not None:
        evaluation = evaluation.select(range(min(len(evaluation), data_args.max_eval_samples)))
    train = to_read_schema(train, data_args)
    evaluation = to_read_schema(evaluation, data_args) if evaluation is not None else None
    if data_args.paraphrase_file is not None and Path(data_args.paraphrase_file).is_file():
        from .paraphrases import attach_image_paraphrases, is_image_paraphrase_file, load_image_paraphrase_file

        if is_image_paraphrase_file(data_args.paraphrase_file):
            table = load_image_paraphrase_file(data_args.paraphrase_file)
            key = data_args.paraphrase_key_column
            if key not in train.column_names and "image_id" in train.column_names:
                key = "image_id"
            train = attach_image_paraphrases(train, table, key, data_args.paraphrase_file)
            if evaluation is not None and key in evaluation.column_names:
                evaluation = attach_image_paraphrases(evaluation, table, key, data_args.paraphrase_file,
                                                      require_match=False)
            return train, evaluation
    if data_args.paraphrase_file is not None:
        from .paraphrases import attach_paraphrases, load_paraphrase_file

        table = load_paraphrase_file(data_args.paraphrase_file)
        train = attach_paraphrases(train, table, data_args.paraphrase_file)
        if evaluation is not None:
            evaluation = attach_paraphrases(evaluation, table, data_args.paraphrase_file, require_match=False)
    return train, evaluation
