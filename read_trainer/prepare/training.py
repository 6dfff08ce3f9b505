"""The reference recipe's training data: COCO Karpathy train + restval, one row per image.

Output (what ``recipes/read_clip_vit_b32.yaml`` reads with ``train_file``)::

    <out>/train.jsonl      {"image": "images/...jpg", "captions": [5 captions], "cocoid": "...", "split": "..."}
    <out>/images/...       relative links into <data_dir>/sources/ (the images exist once)
    <out>/prepared.json    route, row count, sha256 of train.jsonl, provenance of every input

Image paths are relative to ``train.jsonl``'s folder, which is how ``run_read.py`` resolves them.
Three routes give the same table:

- ``karpathy``: the Karpathy split as parquet (``yerevann/coco-karpathy`` on the Hub: train 82,783
  + restval 30,504 = 113,287 images) and the COCO 2014 train and val zips;
- ``read``: READ-CLIP's own hub data (``Mayfull/coco-karpathy-with-image``: ``examples.jsonl`` +
  ``images.zip``), fetched as two plain files; each line is read as JSON, or else as a Python
  literal with ``ast.literal_eval`` (the repository's loading script ``eval``s them), never executed;
- ``folder``: a folder you already have with Karpathy's ``dataset_coco.json`` and the COCO 2014
  ``train2014/`` and ``val2014/`` folders.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
from pathlib import Path
from typing import Iterable

from ..cli import UsageError
from .store import DataStore, basename_index, link

KARPATHY_ROWS = {"train": 82783, "restval": 30504, "test": 5000}
TRAIN_SPLITS = ("train", "restval")
COCO_IMAGE_SOURCES = {"train2014": ("coco-train2014", "train2014.zip"), "val2014": ("coco-val2014", "val2014.zip")}
MARKER = "prepared.json"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_prepared(out: str | Path) -> bool:
    """Whether ``out`` holds a finished table whose bytes and every image link check out."""
    out = Path(out)
    marker, table = out / MARKER, out / "train.jsonl"
    if not (marker.is_file() and table.is_file()):
        return False
    recorded = json.loads(marker.read_text())
    if recorded.get("train_jsonl_sha256") != _sha256(table):
        return False
    with table.open(encoding="utf-8") as f:
        return all((out / json.loads(line)["image"]).is_file() for line in f if line.strip())


def _write_table(out: Path, rows: Iterable[dict], provenance: dict) -> dict:
    """Write ``train.jsonl`` (atomically), check every image exists, then the marker."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "train.jsonl.tmp"
    count, missing = 0, []
    with tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            if not (out / row["image"]).is_file():
                missing.append(row["image"])
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    if missing:
        tmp.unlink()
        raise UsageError(f"{len(missing)} training image(s) are missing (e.g. {missing[0]} under {out}); the image "
                         "archive is incomplete: delete its folder under sources/ and rerun")
    os.replace(tmp, out / "train.jsonl")
    summary = {"rows": count, "train_jsonl_sha256": _sha256(out / "train.jsonl"), **provenance}
    (out / MARKER).write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def _karpathy_rows(records: Iterable[dict], image_prefix: str = "images") -> Iterable[dict]:
    for r in records:
        captions = [s["raw"] if isinstance(s, dict) else s for s in r["sentences"]]
        yield {"image": f"{image_prefix}/{r['filepath']}/{r['filename']}", "captions": [c.strip() for c in captions],
               "cocoid": str(r["cocoid"]), "split": r["split"]}


def read_parquet_rows(store: DataStore, split: str) -> list[dict]:
    """The rows of one Karpathy parquet file, checked against the manifest's row count for its split."""
    import pyarrow.parquet as pq

    path = store.file("karpathy-coco", f"{split}.parquet")
    table = pq.read_table(path, columns=["filepath", "filename", "sentences", "cocoid", "split"]).to_pylist()
    expected = store.source("karpathy-coco").file(f"{split}.parquet").rows
    if expected is not None and len(table) != expected:
        raise UsageError(f"{path}: {len(table)} rows, the Karpathy {split} split has {expected}; the file is not the "
                         "expected version: delete it and rerun")
    return table


def from_karpathy_parquet(store: DataStore, out: Path) -> dict:
    """Route ``karpathy``: the hub parquet split plus the COCO 2014 zips."""
    records = []
    for split in TRAIN_SPLITS:
        records += read_parquet_rows(store, split)
    for folder, (source_id, archive) in COCO_IMAGE_SOURCES.items():
        link(store.extracted(source_id, archive) / folder, out / "images" / folder)
    commits = {s: _hub_commit(store, "karpathy-coco", f"{s}.parquet") for s in TRAIN_SPLITS}
    return _write_table(out, _karpathy_rows(records), {
        "route": "karpathy", "sources": ["karpathy-coco", "coco-train2014", "coco-val2014"], "hub_commits": commits})


def _hub_commit(store: DataStore, source_id: str, name: str) -> str | None:
    source = store.source(source_id)
    note = store.fetcher.path_for(source, source.file(name)).with_name(name + ".verified")
    return json.loads(note.read_text()).get("hub_commit") if note.is_file() else None


def parse_example_line(line: str, where: str) -> dict:
    """One ``examples.jsonl`` line as data: JSON, or a Python literal (``ast.literal_eval``); never ``eval``."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        try:
            record = ast.literal_eval(line.strip())
        except (ValueError, SyntaxError, MemoryError, RecursionError) as error:
            raise UsageError(f"{where}: neither JSON nor a Python literal ({type(error).__name__})") from None
    if not isinstance(record, dict) or not {"filename", "sentences", "cocoid"} <= set(record):
        got = sorted(record) if isinstance(record, dict) else type(record).__name__
        raise UsageError(f"{where}: expected an object with filename, sentences and cocoid, got {got}")
    sentences = record["sentences"]
    if not isinstance(sentences, list) or not all(isinstance(s, str) for s in sentences) or not sentences:
        raise UsageError(f"{where}: 'sentences' must be a non-empty list of strings")
    return record


def from_read_hub(store: DataStore, out: Path) -> dict:
    """Route ``read``: READ-CLIP's ``examples.jsonl`` + ``images.zip`` from the Hub."""
    examples = store.file("read-coco-karpathy", "examples.jsonl")
    images = store.extracted("read-coco-karpathy", "images.zip")
    link(images, out / "images" / "read")
    index = None
    rows = []
    with examples.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            record = parse_example_line(line, f"{examples}:{number}")
            relative = Path(record["filename"])
            if not (images / relative).is_file():
                # The zip may hold one top folder; find the file by name once, for all rows.
                index = index if index is not None else basename_index([images])
                if relative.name not in index:
                    raise UsageError(f"{examples}:{number}: image {record['filename']!r} is not in images.zip")
                relative = index[relative.name].relative_to(images)
            rows.append({"image": f"images/read/{relative.as_posix()}",
                         "captions": [s.strip() for s in record["sentences"]], "cocoid": str(record["cocoid"]),
                         "split": "train"})
    return _write_table(out, rows, {"route": "read", "sources": ["read-coco-karpathy"],
                                    "hub_commits": {"examples.jsonl": _hub_commit(store, "read-coco-karpathy",
                                                                                  "examples.jsonl")}})


def from_folder(folder: str | Path, out: Path) -> dict:
    """Route ``folder``: Karpathy's ``dataset_coco.json`` beside COCO's ``train2014/`` and ``val2014/``."""
    folder = Path(folder)
    karpathy = folder / "dataset_coco.json"
    if not karpathy.is_file():
        raise UsageError(f"--coco_folder {folder}: no dataset_coco.json (Karpathy's split file) in it")
    for name in COCO_IMAGE_SOURCES:
        if not (folder / name).is_dir():
            raise UsageError(f"--coco_folder {folder}: no {name}/ folder of COCO 2014 images in it")
        link((folder / name).resolve(), out / "images" / name)
    with karpathy.open(encoding="utf-8") as f:
        records = [r for r in json.load(f)["images"] if r.get("split") in TRAIN_SPLITS]
    expected = sum(KARPATHY_ROWS[s] for s in TRAIN_SPLITS)
    if len(records) != expected:
        raise UsageError(f"{karpathy}: {len(records)} train+restval images, the Karpathy split has {expected}")
    return _write_table(out, _karpathy_rows(records), {"route": "folder", "sources": [str(folder.resolve())]})


def prepare_training_data(store: DataStore | None, out: str | Path, route: str = "karpathy",
                          coco_folder: str | Path | None = None) -> dict:
    """Build (or verify and keep) the training table; returns its ``prepared.json`` summary."""
    out = Path(out)
    if is_prepared(out):
        recorded = json.loads((out / MARKER).read_text())
        if recorded.get("route") == route:
            return recorded
    if route == "karpathy":
        return from_karpathy_parquet(store, out)
    if route == "read":
        return from_read_hub(store, out)
    if route == "folder":
        if coco_folder is None:
            raise UsageError("--train_source folder needs --coco_folder DIR")
        return from_folder(coco_folder, out)
    raise UsageError(f"unknown training data route {route!r}; use karpathy, read or folder")


TRAINING_FILES = {
    "karpathy": [("karpathy-coco", "train.parquet"), ("karpathy-coco", "restval.parquet"),
                 ("coco-train2014", "train2014.zip"), ("coco-val2014", "val2014.zip")],
    "read": [("read-coco-karpathy", "examples.jsonl"), ("read-coco-karpathy", "images.zip")],
    "folder": [],
}
