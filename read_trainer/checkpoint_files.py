"""The files of a checkpoint: what they were when saved, and whether loading them could run code.

* ``file_manifest`` lists every file of a checkpoint folder with its size and SHA-256; the
  run record (run_record.py) stores it, written after everything else, when the save is done.
* ``manifest_problem`` compares a folder with its manifest before a resume loads anything:
  a file cut short, overwritten or zeroed since the save is named.
* ``unsafe_file_problem`` opens every file of a checkpoint that is, or looks like, a pickle
  (optimizer, scheduler, scaler, RNG, stream position, DeepSpeed or FSDP state, or anything
  planted under another name) with ``torch.load(weights_only=True)``: plain tensors,
  numbers, strings and containers load; a pickle that names any other callable (the way a
  pickle runs code) is refused before any loader sees the file.

The hashes catch damage, not tampering: whoever can rewrite a file can rewrite the record.
The weights-only check is what keeps a checkpoint from someone else from running code.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import pickle
import re

# Files that hold pickles, by name; any other file is sniffed (a torch archive or a pickle stream).
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".pkl", ".pickle", ".ckpt")
PICKLE_NAMES = (".metadata",)  # torch.distributed.checkpoint (FSDP SHARDED_STATE_DICT) metadata
ZIP_MAGIC = b"PK\x03\x04"  # what torch.save writes
PICKLE_PROTOCOL_OPCODE = b"\x80"

# Types DeepSpeed stores in its own checkpoint files beside tensors (enum, dataclass, loss scaler):
# data, rebuilt without calling anything else. Allowed only for a file that names one of them.
DEEPSPEED_TYPES = (
    "deepspeed.runtime.zero.config.ZeroStageEnum",
    "deepspeed.utils.tensor_fragment.fragment_address",
    "deepspeed.runtime.fp16.loss_scaler.LossScaler",
    "deepspeed.runtime.fp16.loss_scaler.DynamicLossScaler",
)


def checkpoint_files(folder: str, exclude: tuple[str, ...] = ()) -> list[str]:
    """Every file under ``folder``, as sorted paths relative to it ('/'-separated)."""
    found = []
    for root, _, names in os.walk(folder):
        for name in names:
            relative = os.path.relpath(os.path.join(root, name), folder).replace(os.sep, "/")
            if relative not in exclude:
                found.append(relative)
    return sorted(found)


def sha256_file(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def file_manifest(folder: str, exclude: tuple[str, ...] = ()) -> dict[str, dict]:
    """``{relative path: {"size": bytes, "sha256": hex}}`` for every file under ``folder``."""
    return {name: {"size": os.path.getsize(os.path.join(folder, name)),
                   "sha256": sha256_file(os.path.join(folder, name))}
            for name in checkpoint_files(folder, exclude)}


# Hashing a large checkpoint takes seconds; a run checks the same folder before loading the
# model and again in train(). Keyed by the files' sizes and modification times.
_verified: dict[tuple, str | None] = {}


def manifest_problem(folder: str, manifest: dict[str, dict]) -> str | None:
    """Why ``folder`` no longer holds the files ``manifest`` recorded (``None`` when it does)."""
    stats = []
    for name in sorted(manifest):
        try:
            stat = os.stat(os.path.join(folder, name))
        except FileNotFoundError:
            return f"{name} is missing (it was saved with the checkpoint)"
        stats.append((name, stat.st_size, stat.st_mtime_ns))
    key = (os.path.realpath(folder), tuple(stats), tuple(sorted((n, e["size"], e["sha256"])
                                                                for n, e in manifest.items())))
    if key not in _verified:
        _verified[key] = _first_mismatch(folder, manifest)
    return _verified[key]


def _first_mismatch(folder: str, manifest: dict[str, dict]) -> str | None:
    for name, entry in sorted(manifest.items()):
        path = os.path.join(folder, name)
        size = os.path.getsize(path)
        if size != entry["size"]:
            return f"{name} is {size} bytes, {entry['size']} when saved (cut short or overwritten)"
        if sha256_file(path) != entry["sha256"]:
            return f"{name} does not match the SHA-256 recorded when it was saved (damaged since)"
    return None


def looks_pickled(path: str) -> bool:
    """Whether ``path`` is a pickle or a torch archive (by name, or by its first bytes)."""
    name = os.path.basename(path)
    if name.endswith(PICKLE_SUFFIXES) or name in PICKLE_NAMES:
        return True
    with open(path, "rb") as f:
        head = f.read(4)
    return head.startswith(ZIP_MAGIC) or head.startswith(PICKLE_PROTOCOL_OPCODE)


def unsafe_file_problem(folder: str) -> str | None:
    """The first pickle-format file under ``folder`` that does not load as plain data, and why.

    Loaded with ``mmap`` (tensors are mapped, not read), so this costs little even for a
    large optimizer state. A plain pickle (not a torch archive) is refused unread.
    """
    for name in checkpoint_files(folder):
        path = os.path.join(folder, name)
        if not looks_pickled(path):
            continue
        with open(path, "rb") as f:
            if not f.read(4).startswith(ZIP_MAGIC):
                return (f"{name} is a plain pickle, not a torch.save archive: it cannot be read without unpickling "
                        "it, which can run code (FSDP's SHARDED_STATE_DICT writes one: use FULL_STATE_DICT)")
        try:
            _load_plain(path)
        except Exception as error:  # noqa: BLE001 - any failure to load as plain data is a refusal
            return f"{name} is not plain data: {_reason(error)}"
    return None


def _load_plain(path: str) -> None:
    import torch
    from transformers.trainer_pt_utils import safe_globals  # numpy's RNG state, as Trainer loads it

    with safe_globals():
        try:
            torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except pickle.UnpicklingError as error:
            if "GLOBAL deepspeed." not in str(error):
                raise
            with torch.serialization.safe_globals(_deepspeed_types()):  # DeepSpeed's own files
                torch.load(path, map_location="cpu", weights_only=True, mmap=True)


def _deepspeed_types() -> list:
    found = []
    for dotted in DEEPSPEED_TYPES:
        module, _, name = dotted.rpartition(".")
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return found


def _reason(error: Exception) -> str:
    """torch's long weights-only message reduced to the object it refused."""
    text = str(error)
    match = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if match:
        return f"it names {match.group(1)}, which unpickling would call (a pickle that can run code)"
    first = text.strip().splitlines()[0][:200] if text.strip() else type(error).__name__
    return f"it does not load with torch.load(weights_only=True): {first}"
