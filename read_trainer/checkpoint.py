"""The checkpoint format of a READ run, written by ``ReadTrainer`` and read back on resume.

A checkpoint folder holds what Trainer writes (optimizer, scheduler, RNG and
``trainer_state.json``) plus:

* the plain ``CLIPModel`` (``model.safetensors``, or shards with
  ``model.safetensors.index.json``) and the trainer's processor, as in an export; with
  LoRA this is the *merged* model;
* :data:`HEAD_WEIGHTS_NAME`: the trainable weights outside plain CLIP, needed to resume
  and never published: ``text_to_decoder.weight`` (the projection into the frozen T5
  decoder) and, with LoRA, the adapters under ``adapter.<peft key>``;
* :data:`TRAINING_ARGS_NAME`: the training arguments as JSON (hub tokens redacted),
  instead of Trainer's pickled ``training_args.bin``;
* ``read_run.json``, written last (run_record.py): the run it belongs to, what it was trained
  with and every other file's size and SHA-256.

The frozen decoder is never saved: it comes from its own checkpoint, unchanged by
training. Loading is strict in both layouts (plain and FSDP2-sharded): a resume that
silently loaded nothing would train on from the base model.
"""

from __future__ import annotations

import json
import os

import torch
from torch import nn

# A ReadModel is passed in everywhere here; annotated as nn.Module because modeling.py
# imports this module (a ReadModel saves and loads itself through it).

HEAD_WEIGHTS_NAME = "read_head.safetensors"
TRAINING_ARGS_NAME = "read_training_args.json"
CLIP_WEIGHTS_NAME = "model.safetensors"
CLIP_INDEX_NAME = "model.safetensors.index.json"


def full_tensor(tensor: torch.Tensor) -> torch.Tensor:
    """A parameter's whole value. FSDP2 shards parameters as DTensors: assembling one is a
    collective, so every process must call this, not only the one that writes."""
    from torch.distributed.tensor import DTensor

    return tensor.full_tensor() if isinstance(tensor, DTensor) else tensor


def is_sharded(model: torch.nn.Module) -> bool:
    """Whether FSDP2 has sharded the model's parameters (they are DTensors)."""
    from torch.distributed.tensor import DTensor

    return any(isinstance(p, DTensor) for p in model.parameters())


def shardable_logit_scale(model: nn.Module) -> None:
    """Make CLIP's logit scale a 1-element vector: FSDP (1 and 2) cannot shard 0-dim parameters.

    The losses broadcast it either way; ``clip_state_dict`` turns it back into CLIP's
    scalar for every export and checkpoint, and ``load_checkpoint_sharded`` reads it back.
    """
    clip = model.clip.get_base_model() if model.is_peft else model.clip
    if clip.logit_scale.dim() == 0:
        clip.logit_scale = torch.nn.Parameter(clip.logit_scale.detach().reshape(1))


def clip_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The ``CLIPModel`` part of a full ReadModel state dict (FSDP/DeepSpeed hand one to ``_save``)."""
    state = {k[len("clip."):]: v for k, v in state_dict.items() if k.startswith("clip.")}
    if "logit_scale" in state:
        state["logit_scale"] = state["logit_scale"].reshape(())  # see shardable_logit_scale
    return state


def write_head(head: dict[str, torch.Tensor], path: str) -> None:
    """Write the head file (nothing when the model has no weights outside plain CLIP)."""
    from safetensors.torch import save_file

    if head:
        save_file({k: v.detach().cpu().contiguous() for k, v in head.items()}, path, metadata={"format": "pt"})


def load_checkpoint(model: nn.Module, folder: str, head_file: str = HEAD_WEIGHTS_NAME) -> None:
    """Restore CLIP and the head of an unsharded ``model`` from a checkpoint folder."""
    from safetensors.torch import load_file
    from transformers.trainer_utils import load_sharded_checkpoint

    head_path = os.path.join(folder, head_file)
    head = load_file(head_path) if os.path.isfile(head_path) else {}
    if model.is_peft:
        # The checkpoint's model.safetensors is the *merged* model; the frozen base is
        # unchanged since loading, so the adapters are all there is to restore.
        from peft import set_peft_model_state_dict

        adapter = {k[len("adapter."):]: v for k, v in head.items() if k.startswith("adapter.")}
        if not adapter:
            raise FileNotFoundError(f"checkpoint {folder!r} has no adapter weights in {head_file}")
        result = set_peft_model_state_dict(model.clip, adapter)
        if getattr(result, "unexpected_keys", None):
            raise RuntimeError(f"checkpoint {folder!r}: unexpected adapter keys {result.unexpected_keys[:5]}")
    else:
        single = os.path.join(folder, CLIP_WEIGHTS_NAME)
        if os.path.isfile(single):
            missing, unexpected = model.clip.load_state_dict(load_file(single), strict=False)
        elif os.path.isfile(os.path.join(folder, CLIP_INDEX_NAME)):
            missing, unexpected = load_sharded_checkpoint(model.clip, folder, strict=False)
        else:
            raise FileNotFoundError(f"no CLIP weights (model.safetensors) in checkpoint {folder!r}")
        missing = [k for k in missing if not k.endswith("position_ids")]
        if missing or unexpected:
            raise RuntimeError(f"checkpoint {folder!r} does not match the model: missing {missing[:5]}, "
                               f"unexpected {list(unexpected)[:5]}")
    if model.text_to_decoder is not None:
        if "text_to_decoder.weight" not in head:
            raise FileNotFoundError(f"checkpoint {folder!r} has no {head_file} (the decoder projection)")
        model.text_to_decoder.weight.data.copy_(head["text_to_decoder.weight"])


def load_checkpoint_sharded(model: nn.Module, folder: str, head_file: str = HEAD_WEIGHTS_NAME) -> None:
    """``load_checkpoint`` for a model sharded by FSDP2 (parameters are DTensors).

    ``load_state_dict`` cannot copy full tensors into shards; ``set_model_state_dict`` with
    a full state dict keeps each process's shard of it. Every process reads the files.
    """
    from safetensors.torch import load_file
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    if model.is_peft:
        raise NotImplementedError("resuming a LoRA run under FSDP is not supported; use DDP or DeepSpeed")
    index = os.path.join(folder, CLIP_INDEX_NAME)
    if os.path.isfile(os.path.join(folder, CLIP_WEIGHTS_NAME)):
        files = [CLIP_WEIGHTS_NAME]
    elif os.path.isfile(index):
        with open(index, encoding="utf-8") as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        raise FileNotFoundError(f"no CLIP weights (model.safetensors) in checkpoint {folder!r}")
    state = {}
    for name in files:
        state.update({"clip." + k: v for k, v in load_file(os.path.join(folder, name)).items()})
    if "clip.logit_scale" in state:  # a scalar in the file, maybe a vector in the model (FSDP)
        state["clip.logit_scale"] = state["clip.logit_scale"].reshape(model.clip.logit_scale.shape)
    head_path = os.path.join(folder, head_file)
    if model.text_to_decoder is not None:
        if not os.path.isfile(head_path):
            raise FileNotFoundError(f"checkpoint {folder!r} has no {head_file} (the decoder projection)")
        state.update(load_file(head_path))
    result = set_model_state_dict(model, state, options=StateDictOptions(full_state_dict=True, strict=False))
    missing = [k for k in result.missing_keys
               if not k.startswith(("decoder.", "lm_head.")) and not k.endswith("position_ids")]
    if missing or result.unexpected_keys:
        raise RuntimeError(f"checkpoint {folder!r} does not match the model: missing {missing[:5]}, "
                           f"unexpected {list(result.unexpected_keys)[:5]}")

