"""Exactly which files of an export may be published, and what of its settings may be shown.

Uploads name files, not patterns: a pattern such as ``model-*.safetensors`` also matches
``model-backup/optimizer.safetensors`` or a stray ``model-old.safetensors``. Only top-level
files from ``EXPORT_FILES`` go up, plus the weight shards that ``model.safetensors.index.json``
itself lists. Settings written into a card or the saved training arguments have local
paths (absolute or under ``~``) reduced to their last component: they name the machine's
folders, not the model.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

EXPORT_FILES = (
    "config.json", "model.safetensors", "model.safetensors.index.json",
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt",
    "processor_config.json", "preprocessor_config.json", "README.md", "results.json", "read_training_args.json",
)
_SHARD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.safetensors$")


def allowed_files(folder: str, include_card: bool = True) -> list[str]:
    """The files of ``folder`` an upload may send: exact top-level names, shards from the index."""
    names = [n for n in EXPORT_FILES if os.path.isfile(os.path.join(folder, n)) and (include_card or n != "README.md")]
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.isfile(index):
        with open(index, encoding="utf-8") as f:
            shards = sorted(set(json.load(f).get("weight_map", {}).values()))
        for shard in shards:
            if not _SHARD_NAME.match(shard):
                raise ValueError(f"{index} lists the shard {shard!r}: not a plain file name in the folder")
            if not os.path.isfile(os.path.join(folder, shard)):
                raise FileNotFoundError(f"{index} lists {shard}, which is not in {folder}")
            names.append(shard)
    return names


def is_local_path(value: str) -> bool:
    """Absolute and home-relative paths: they name this machine's folders. Relative paths
    (e.g. ``outputs/run``) say nothing about the machine and stay usable from the same folder."""
    return bool(value) and "\n" not in value and (os.path.isabs(value) or value.startswith("~"))


def redact_local_paths(value: Any) -> Any:
    """``value`` with every string that is a local path replaced by its last component."""
    if isinstance(value, str):
        return os.path.basename(os.path.normpath(os.path.expanduser(value))) if is_local_path(value) else value
    if isinstance(value, dict):
        return {k: redact_local_paths(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_local_paths(v) for v in value)
    return value
