"""What a checkpoint was trained with, and which checkpoint a resume may continue.

Each checkpoint holds ``read_run.json``: the base model (id and a hash of its weights),
the decoder, LoRA and its settings, K, the loss weights and a fingerprint of the training
data. ``resolve_resume`` turns ``resume_from_checkpoint`` (a path, or ``True``/``"last"``:
the newest *complete* checkpoint in ``output_dir``) into a checked folder, and
``check_record`` refuses to continue a checkpoint trained differently, naming the option,
unless ``resume_ignore_mismatch`` is set. A LoRA checkpoint holds only the adapters, so
resuming it onto another base is refused regardless.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from typing import Any

import torch
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from .config import ReadConfig, wants_resume

logger = logging.getLogger(__name__)

RUN_RECORD_NAME = "read_run.json"
TRAINER_STATE_NAME = "trainer_state.json"
RESUME_LATEST = ("true", "last", "latest")
LORA_FIELDS = ("lora_r", "lora_alpha", "lora_dropout", "lora_towers", "lora_target_modules")


class ResumeError(ValueError):
    """The checkpoint cannot be resumed as asked."""


# -- the record ----------------------------------------------------------------------------
def weights_hash(module: torch.nn.Module) -> str:
    """A hash of a module's base weights (names, dtypes, shapes and values); tensors on any device.

    LoRA layers are left out and PEFT's name prefixes removed, so a CLIPModel hashes the
    same before and after adapters are added to it.
    """
    digest = hashlib.blake2b(digest_size=16)
    state = {}
    for name, tensor in module.state_dict().items():
        if "lora_" in name:
            continue
        name = name.removeprefix("base_model.model.").replace("base_layer.", "")
        state[name] = tensor
    for name, tensor in sorted(state.items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        if tensor.numel():
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy())  # the bytes, without a copy
    return digest.hexdigest()


def data_fingerprint(dataset: Any, caption_column: str = "captions") -> str | None:
    """Row count, row ids and captions (images are not read: too slow for a check).

    ``None`` for a dataset that cannot be listed (a streaming ``IterableDataset``).
    """
    if dataset is None:
        return None
    try:
        if hasattr(dataset, "column_names"):
            columns = dataset.column_names or []
            captions = dataset[caption_column] if caption_column in columns else None
            row_ids = dataset["row_id"] if "row_id" in columns else None
        else:
            captions = [row.get(caption_column) for row in dataset]
            row_ids = [row.get("row_id") for row in dataset]
        size = len(dataset)
    except (TypeError, NotImplementedError):
        return None
    payload = json.dumps({"rows": size, "row_id": row_ids, "captions": captions}, default=str, sort_keys=True)
    return hashlib.blake2b(payload.encode(), digest_size=16).hexdigest()


def build_record(args, base_weights_hash: str | None, data_hash: str | None) -> dict:
    """The options a resume must match, as recorded in every checkpoint."""
    record = {
        "model_name_or_path": args.model_name_or_path,
        "base_weights_hash": base_weights_hash,
        "decoder_name_or_path": args.decoder_name_or_path if args.uses_decoder else None,
        "use_peft": bool(args.use_peft),
        "num_hard_negatives": args.num_hard_negatives,
        "reconstruction_weight": args.reconstruction_weight,
        "alignment_weight": args.alignment_weight,
        "data_fingerprint": data_hash,
    }
    for name in LORA_FIELDS:
        record[name] = getattr(args, name) if args.use_peft else None
    return record


def write_record(folder: str, record: dict) -> None:
    with open(os.path.join(folder, RUN_RECORD_NAME), "w", encoding="utf-8") as f:
        json.dump(record, f, indent=2, sort_keys=True)


def read_json(path: str) -> dict:
    """A JSON file, or a ``ResumeError`` naming it when it is cut or corrupt."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as error:
        raise ResumeError(f"{path} is not valid JSON ({error}); the checkpoint was cut while being written: "
                          "resume from an earlier one") from None


def check_record(folder: str, record: dict, *, ignore_mismatch: bool) -> None:
    """Refuse to resume ``folder`` when it was trained with other settings than ``record`` holds.

    Entries that are ``None`` on either side (not known yet, e.g. the weights hash before the
    model is loaded, or not applicable) are not compared.
    """
    path = os.path.join(folder, RUN_RECORD_NAME)
    if not os.path.isfile(path):
        if ignore_mismatch:
            return
        raise ResumeError(f"checkpoint {folder} has no {RUN_RECORD_NAME} (what it was trained with), so the resume "
                          "cannot be checked; pass --resume_ignore_mismatch to resume it anyway")
    recorded = read_json(path)
    for name in record:
        was, now = recorded.get(name), record.get(name)
        if was is None or now is None or was == now:
            continue  # not recorded on one side (e.g. a streaming dataset): nothing to compare
        if name == "base_weights_hash" and recorded.get("use_peft"):
            # The checkpoint holds only the adapters: onto another base they make another model.
            raise ResumeError(f"cannot resume {folder}: it holds LoRA adapters trained on other base weights "
                              f"(weights hash {was}, now {now}); resume with the base it was trained on")
        if ignore_mismatch:
            logger.warning("resuming %s although %s was %r there and is %r now", folder, name, was, now)
            continue
        if name == "base_weights_hash":
            what = f"the base model's weights differ from those it was trained from (hash {was} there, {now} now)"
            fix = ""
        elif name == "data_fingerprint":
            what, fix = f"the training data differ from its data (fingerprint {was} there, {now} now)", ""
        else:
            hint = " (the default: --model_name_or_path was left off?)" if name == "model_name_or_path" \
                and now == _default_model() else ""
            what, fix = f"{name} was {was!r} there, {now!r} now{hint}", f"pass --{name} {was} or "
        raise ResumeError(f"cannot resume {folder}: {what}; {fix}--resume_ignore_mismatch to resume it anyway")


def _default_model() -> str:
    return ReadConfig.__dataclass_fields__["model_name_or_path"].default


def check_resume_settings(args) -> None:
    """Before anything is loaded: the checkpoint ``args`` resumes exists, is complete and was
    trained with the same options (weights and data are compared once loaded, in ``train``)."""
    folder = resolve_resume(args.resume_from_checkpoint, args.output_dir, needs_head=False,
                            weights_only=args.resume_weights_only, announce=False)
    if folder is not None:
        check_record(folder, build_record(args, None, None), ignore_mismatch=args.resume_ignore_mismatch)


# -- which checkpoint -----------------------------------------------------------------------
def checkpoint_problem(folder: str, *, needs_head: bool) -> str | None:
    """Why ``folder`` is not a complete checkpoint (``None`` when it is)."""
    state = os.path.join(folder, TRAINER_STATE_NAME)
    if not os.path.isfile(state):
        return f"no {TRAINER_STATE_NAME} (the save did not finish)"
    try:
        read_json(state)
    except ResumeError as error:
        return str(error)
    if not any(os.path.isfile(os.path.join(folder, n)) for n in ("model.safetensors", "model.safetensors.index.json")):
        return "no model.safetensors"
    if needs_head and not os.path.isfile(os.path.join(folder, "read_head.safetensors")):
        return "no read_head.safetensors (the decoder projection)"
    return None


def _numbered_checkpoints(output_dir: str) -> list[str]:
    pattern = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")
    found = []
    if os.path.isdir(output_dir):
        for name in os.listdir(output_dir):
            match = pattern.match(name)
            if match and os.path.isdir(os.path.join(output_dir, name)):
                found.append((int(match.group(1)), os.path.join(output_dir, name)))
    return [path for _, path in sorted(found, reverse=True)]


def resolve_resume(value: Any, output_dir: str, *, needs_head: bool, weights_only: bool,
                   announce: bool = True) -> str | None:
    """The checkpoint folder ``resume_from_checkpoint`` asks for, checked; ``None`` for no resume.

    ``True``, ``"True"`` or ``"last"`` take the newest complete checkpoint in ``output_dir``
    (incomplete ones are skipped, with a warning); a path must itself be complete. Missing
    optimizer or scheduler state is an error unless ``weights_only``.
    """
    if not wants_resume(value):
        return None
    text = str(value).strip()
    if value is True or text.lower() in RESUME_LATEST:
        folder = None
        for candidate in _numbered_checkpoints(output_dir):
            problem = checkpoint_problem(candidate, needs_head=needs_head)
            if problem is None:
                folder = candidate
                break
            if announce:
                logger.warning("skipping incomplete checkpoint %s: %s", candidate, problem)
        if folder is None:
            raise ResumeError(f"resume_from_checkpoint={text}: no complete checkpoint in {output_dir}")
        if announce:
            logger.warning("resuming from %s, the newest complete checkpoint in %s", folder, output_dir)
    else:
        folder = text
        if not os.path.isdir(folder):
            raise ResumeError(f"resume_from_checkpoint: {folder} is not a folder (use True or last for the newest "
                              f"checkpoint in output_dir)")
        problem = checkpoint_problem(folder, needs_head=needs_head)
        if problem is not None:
            raise ResumeError(f"cannot resume {folder}: {problem}")
    missing = [n for n in ("optimizer.pt", "scheduler.pt") if not os.path.isfile(os.path.join(folder, n))]
    if missing and not weights_only:
        raise ResumeError(f"checkpoint {folder} has no {' or '.join(missing)}: resuming would restart the optimizer "
                          "and the learning-rate schedule; pass --resume_weights_only to continue from its weights "
                          "with a fresh optimizer")
    if announce:
        state = read_json(os.path.join(folder, TRAINER_STATE_NAME))
        step, planned = state.get("global_step", 0), state.get("max_steps", 0)
        if planned and step >= planned:
            logger.warning("%s is the end of a finished run (step %s of %s): only steps beyond it will be trained",
                           folder, step, planned)
    if missing and announce:
        logger.warning("resuming the weights of %s with a fresh optimizer and schedule (no %s)", folder,
                       ", ".join(missing))
    return folder
