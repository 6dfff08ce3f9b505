"""Exactly which files of an export may be published, and what of its settings may be shown.

Uploads name files, not patterns: a pattern such as ``model-*.safetensors`` also matches
``model-backup/optimizer.safetensors`` or a stray ``model-old.safetensors``. Only top-level
files from ``EXPORT_FILES`` go up, plus the weight shards that ``model.safetensors.index.json``
itself lists. Settings written into a card or the saved training arguments have local
paths (absolute or under ``~``) reduced to their last component: they name the machine's
folders, not the model. Which model settings named a local folder is recorded by name
(``local_folders``), and their full paths go to ``read_local_paths.json``, which is not in
``EXPORT_FILES`` and so stays on the machine: a base model trained from a folder is then
never taken for a hub id of the same last name, and this machine can still load it.
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
# Kept beside an export for this machine only (never uploaded: not in EXPORT_FILES).
LOCAL_PATHS_NAME = "read_local_paths.json"
# The key of the saved training arguments that lists the settings which named a local folder.
LOCAL_FOLDERS_KEY = "local_folders"
# Settings that take a hub id or a folder.
MODEL_SETTINGS = ("model_name_or_path", "decoder_name_or_path")
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


def local_model_folders(settings: dict) -> dict[str, str]:
    """The ``MODEL_SETTINGS`` of ``settings`` that name a folder here, as absolute paths."""
    found = {}
    for key in MODEL_SETTINGS:
        value = settings.get(key)
        if isinstance(value, str) and value and os.path.isdir(os.path.expanduser(value)):
            found[key] = os.path.abspath(os.path.expanduser(value))
    return found


def publishable_settings(settings: dict) -> tuple[dict, dict[str, str]]:
    """``settings`` as they may be published, and the local folders kept back.

    The first has local paths redacted (``redact_local_paths``) and ``LOCAL_FOLDERS_KEY`` naming
    the model settings that were local folders (so ``clip`` is not read as the hub id ``clip``);
    the second maps those settings to their full paths, for ``LOCAL_PATHS_NAME``.
    """
    local = local_model_folders(settings)
    published = redact_local_paths(dict(settings))
    published[LOCAL_FOLDERS_KEY] = sorted(local)
    return published, local
