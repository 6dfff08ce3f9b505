"""What a checkpoint was trained with, which run it belongs to, and which checkpoint a resume may continue.

Each checkpoint holds ``read_run.json``, written after every other file of the checkpoint:
the run's id, what it was trained with (the base model and a hash of its weights, the
decoder, LoRA and its settings, K, the loss weights, the optimizer and schedule settings,
the seed, the batch and a fingerprint of the training data) and each file's size and
SHA-256. The output folder holds a ``read_run.json`` too, naming the run it holds now.

``resolve_resume`` turns ``resume_from_checkpoint`` (a path, or ``True``/``"last"``: the
newest *complete* checkpoint of the folder's run in ``output_dir``) into a checked folder:
checkpoints of another run, cut short or damaged since their save are passed over (or, when
named, refused), naming the file; and no file of it may hold a pickle that runs code.
``check_record`` refuses to continue a checkpoint trained differently, naming the option,
unless ``resume_ignore_mismatch`` is set. A LoRA checkpoint holds only the adapters, so
resuming it onto another base is refused regardless. ``begin_run`` records the run in the
output folder; a new run with ``overwrite_output_dir`` removes the earlier run's checkpoints.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import uuid
from typing import Any

import torch
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from .checkpoint_files import file_manifest, manifest_problem, unsafe_file_problem
from .config import ReadConfig, wants_resume

logger = logging.getLogger(__name__)

RUN_RECORD_NAME = "read_run.json"
TRAINER_STATE_NAME = "trainer_state.json"
RESUME_LATEST = ("true", "last", "latest")
LORA_FIELDS = ("lora_r", "lora_alpha", "lora_dropout", "lora_towers", "lora_target_modules")
# The optimizer, schedule, seed, batch and how alignment positives are drawn: a resume with other values would silently continue
# another run (Trainer restores the learning rate from scheduler.pt, the data order from the seed).
TRAINING_FIELDS = ("learning_rate", "weight_decay", "lr_scheduler_type", "warmup_steps", "seed",
                   "per_device_train_batch_size", "gradient_accumulation_steps", "paraphrase_sampling")
# Recorded, and a change is only logged: training a finished run further (more steps) is a resume.
EXTENDABLE_FIELDS = ("max_steps", "num_train_epochs", "world_size")
# Entries of a checkpoint's record that are not settings.
RUN_ID, FILES = "run_id", "files"
SHARDS_PREFIX = "shards:"  # a streamed dataset's fingerprint: of its shard list


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

    A stream is not read ahead: its fingerprint is that of its shard list (names and sizes),
    set by ``open_read_stream`` as ``shard_fingerprint``. ``None`` for a dataset that can be
    neither listed nor named (an ``IterableDataset`` built by hand).
    """
    if dataset is None:
        return None
    if getattr(dataset, "shard_fingerprint", None) is not None:
        return dataset.shard_fingerprint
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
    """The options a resume must match (and the run length it may extend), as recorded in every checkpoint."""
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
    for name in TRAINING_FIELDS + EXTENDABLE_FIELDS:
        value = getattr(args, name)
        record[name] = getattr(value, "value", value)  # an enum (the scheduler type) as its string
    return record


def new_run_id() -> str:
    return uuid.uuid4().hex


def write_record(folder: str, record: dict, run_id: str | None = None, files: dict | None = None) -> None:
    """Write ``read_run.json`` into ``folder`` (replaced in one step: never half-written)."""
    content = dict(record)
    if run_id is not None:
        content[RUN_ID] = run_id
    if files is not None:
        content[FILES] = files
    path = os.path.join(folder, RUN_RECORD_NAME)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(content, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(path + ".tmp", path)


def seal_checkpoint(folder: str, record: dict, run_id: str) -> None:
    """Write the checkpoint's record with every file's size and hash: the last file of a save."""
    write_record(folder, record, run_id, file_manifest(folder, exclude=(RUN_RECORD_NAME,)))


def read_json(path: str) -> dict:
    """A JSON object from a file, or a ``ResumeError`` naming it when it is cut or corrupt."""
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ResumeError(f"{path} is not valid JSON ({error}); the checkpoint was cut while being written "
                          "or damaged since: resume from an earlier one") from None
    if not isinstance(value, dict):
        raise ResumeError(f"{path} holds a JSON {type(value).__name__}, not the object it was saved as: "
                          "resume from an earlier checkpoint")
    return value


def check_record(folder: str, record: dict, *, ignore_mismatch: bool) -> None:
    """Refuse to resume ``folder`` when it was trained with other settings than ``record`` holds.

    Entries that are ``None`` on either side (not known yet, e.g. the weights hash before the
    model is loaded, or not applicable) are not compared.
    """
    path = os.path.join(folder, RUN_RECORD_NAME)
    if not os.path.isfile(path):
        if ignore_mismatch:
            return
        raise ResumeError(f"checkpoint {folder} has no {RUN_RECORD_NAME} (what it was trained with, written last by "
                          "a save): its save did not finish, or another program wrote it, so the resume cannot be "
                          "checked; pass --resume_ignore_mismatch to resume it anyway")
    recorded = read_json(path)
    for name in record:
        was, now = recorded.get(name), record.get(name)
        if was is None or now is None or was == now:
            continue  # not recorded on one side (e.g. an older checkpoint): nothing to compare
        if name in EXTENDABLE_FIELDS:
            logger.warning("resuming %s with %s %r (it was trained with %r)", folder, name, now, was)
            continue
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
            data = "the streamed shards (names and sizes)" if str(was).startswith(SHARDS_PREFIX) else "the training data"
            what, fix = f"{data} differ from its data (fingerprint {was} there, {now} now)", ""
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


# -- the run an output folder holds ---------------------------------------------------------
def folder_run_id(output_dir: str) -> str | None:
    """The id of the run ``output_dir`` holds (``None``: no run recorded, e.g. an older folder)."""
    path = os.path.join(output_dir, RUN_RECORD_NAME)
    return read_json(path).get(RUN_ID) if os.path.isfile(path) else None


def checkpoint_run_id(folder: str) -> str | None:
    path = os.path.join(folder, RUN_RECORD_NAME)
    return read_json(path).get(RUN_ID) if os.path.isfile(path) else None


def begin_run(output_dir: str, record: dict, run_id: str, *, new_run: bool, overwrite: bool) -> None:
    """Record in ``output_dir`` that it holds run ``run_id`` (main process, before the first save).

    A new run with ``overwrite`` removes every earlier ``checkpoint-*`` folder, after the
    record is written: if the removal is cut short, what is left belongs to another run and
    no resume takes it.
    """
    os.makedirs(output_dir, exist_ok=True)
    write_record(output_dir, record, run_id)
    if not (new_run and overwrite):
        return
    earlier = sorted(_numbered_checkpoints(output_dir), key=_step)
    for folder in earlier:
        shutil.rmtree(folder)
    if earlier:
        logger.warning("overwrite_output_dir: removed the earlier run's %d checkpoint(s) from %s before the first "
                       "save (%s)", len(earlier), output_dir, ", ".join(os.path.basename(f) for f in earlier))


def clear_for_save(folder: str, resumed_from: str | None) -> None:
    """Remove a checkpoint folder of the same name before a save writes it (main process).

    It holds an earlier run's or an abandoned continuation's files: a save cut short in it
    must leave a folder without a record (incomplete), never a mix of two runs' files.
    """
    if not os.path.isdir(folder):
        return
    if resumed_from is not None and os.path.isdir(resumed_from) and os.path.samefile(folder, resumed_from):
        return  # the checkpoint this run resumed: the save rewrites it with the same state
    logger.info("replacing %s (written before this point of the run)", folder)
    shutil.rmtree(folder)


# -- which checkpoint -----------------------------------------------------------------------
# Files whose absence has its own message and remedy (--resume_weights_only), not "damaged".
OPTIMIZER_FILES = ("optimizer.pt", "scheduler.pt")


def assess_checkpoint(folder: str, *, needs_head: bool, run_id: str | None = None,
                      require_record: bool = True) -> tuple[str, str] | None:
    """``(kind, reason)`` when ``folder`` is not a complete, undamaged checkpoint of run ``run_id``
    (``None``: of any run); kind is "incomplete", "damaged" or "other run's". ``None`` when it is.

    A checkpoint's record is written last, with every file's size and hash: one without it did
    not finish saving; one whose files differ from it was damaged since.
    """
    record_path = os.path.join(folder, RUN_RECORD_NAME)
    recorded = None
    if os.path.isfile(record_path):
        try:
            recorded = read_json(record_path)
        except ResumeError as error:
            return "incomplete", str(error)
        other = recorded.get(RUN_ID)
        if run_id is not None and other is not None and other != run_id:
            return "other run's", (f"it belongs to run {other}, not to run {run_id} that the folder's "
                                   f"{RUN_RECORD_NAME} records (an earlier run, overwritten?)")
    elif require_record:
        return "incomplete", f"no {RUN_RECORD_NAME} (written last: the save did not finish)"
    state = os.path.join(folder, TRAINER_STATE_NAME)
    if not os.path.isfile(state):
        return "incomplete", f"no {TRAINER_STATE_NAME} (the save did not finish)"
    try:
        read_json(state)
    except ResumeError as error:
        return "incomplete", str(error)
    if not any(os.path.isfile(os.path.join(folder, n)) for n in ("model.safetensors", "model.safetensors.index.json")):
        return "incomplete", "no model.safetensors"
    if needs_head and not os.path.isfile(os.path.join(folder, "read_head.safetensors")):
        return "incomplete", "no read_head.safetensors (the decoder projection)"
    if recorded is not None and isinstance(recorded.get(FILES), dict):
        files = {name: entry for name, entry in recorded[FILES].items()
                 if name not in OPTIMIZER_FILES or os.path.isfile(os.path.join(folder, name))}
        problem = manifest_problem(folder, files)
        if problem is not None:
            return "damaged", problem
    return None


def checkpoint_problem(folder: str, *, needs_head: bool) -> str | None:
    """Why ``folder`` is not a complete, undamaged checkpoint (``None`` when it is)."""
    found = assess_checkpoint(folder, needs_head=needs_head)
    return None if found is None else found[1]


def _step(folder: str) -> int:
    return int(os.path.basename(folder).rsplit("-", 1)[1])


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

    ``True``, ``"True"`` or ``"last"`` take the newest complete checkpoint of the run that
    ``output_dir`` records (incomplete, damaged and other runs' checkpoints are skipped, each
    with a warning naming why); a path must itself be complete and undamaged. No file of the
    checkpoint may hold a pickle that runs code. Missing optimizer or scheduler state is an
    error unless ``weights_only``.
    """
    if not wants_resume(value):
        return None
    text = str(value).strip()
    if value is True or text.lower() in RESUME_LATEST:
        folder = None
        run_id = folder_run_id(output_dir)
        for candidate in _numbered_checkpoints(output_dir):
            found = assess_checkpoint(candidate, needs_head=needs_head, run_id=run_id)
            if found is None:
                folder = candidate
                break
            if announce:
                logger.warning("skipping %s checkpoint %s: %s", found[0], candidate, found[1])
        if folder is None:
            raise ResumeError(f"resume_from_checkpoint={text}: no complete checkpoint of this run in {output_dir}")
        if announce:
            logger.warning("resuming from %s, the newest complete checkpoint in %s", folder, output_dir)
    else:
        folder = text
        if not os.path.isdir(folder):
            raise ResumeError(f"resume_from_checkpoint: {folder} is not a folder (use True or last for the newest "
                              f"checkpoint in output_dir)")
        # Without a record, check_record refuses unless --resume_ignore_mismatch (checked there).
        found = assess_checkpoint(folder, needs_head=needs_head, require_record=False)
        if found is not None:
            fix = "; resume from an earlier checkpoint" if found[0] == "damaged" else ""
            raise ResumeError(f"cannot resume {folder}: {found[1]}{fix}")
    unsafe = unsafe_file_problem(folder)
    if unsafe is not None:
        raise ResumeError(f"cannot resume {folder}: {unsafe}; nothing was loaded. A checkpoint is read as data "
                          "only: resume from one saved by a run you trust")
    missing = [n for n in OPTIMIZER_FILES if not os.path.isfile(os.path.join(folder, n))]
    if missing and not weights_only:
        raise ResumeError(f"checkpoint {folder} has no {' or '.join(missing)}: resuming would restart the optimizer "
                          "and the learning-rate schedule; pass --resume_weights_only to continue from its weights "
                          "with a fresh optimizer")
    if announce:
        if os.path.isfile(os.path.join(folder, RUN_RECORD_NAME)) and \
                FILES not in read_json(os.path.join(folder, RUN_RECORD_NAME)):
            logger.warning("%s records no file sizes and hashes (saved by an earlier version): its files are not "
                           "verified", folder)
        state = read_json(os.path.join(folder, TRAINER_STATE_NAME))
        step, planned = state.get("global_step", 0), state.get("max_steps", 0)
        if planned and step >= planned:
            logger.warning("%s is the end of a finished run (step %s of %s): only steps beyond it will be trained",
                           folder, step, planned)
    if missing and announce:
        logger.warning("resuming the weights of %s with a fresh optimizer and schedule (no %s)", folder,
                       ", ".join(missing))
    return folder
