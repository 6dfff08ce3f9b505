"""Load only the frozen T5 decoder READ trains against: no encoder weight is read or cast.

``T5ForConditionalGeneration.from_pretrained`` materialises the whole model (for
T5-v1.1-large 783M parameters, the unused encoder included) and casts all of it before
READ drops the encoder. Here the decoder stack and the head are built on the meta device
(no memory) and filled with only the tensors they need, read one at a time from the
checkpoint and cast as they are read: ``decoder.*``, the shared embedding (the decoder's
``embed_tokens``) and ``lm_head``. Single-file and sharded checkpoints, local folders and
hub ids are read alike; of a sharded checkpoint only the shards holding those tensors are
fetched. ``*.bin`` checkpoints (older hub repos) are read with ``weights_only=True`` and
memory-mapped, so the encoder's tensors in them are never paged in.
"""

from __future__ import annotations

import copy
import json

import torch
from torch import nn
from transformers import T5Config
from transformers.models.t5.modeling_t5 import T5Stack
from transformers.utils import cached_file

SAFETENSORS, SAFETENSORS_INDEX = "model.safetensors", "model.safetensors.index.json"
PICKLE, PICKLE_INDEX = "pytorch_model.bin", "pytorch_model.bin.index.json"
_SAFETENSORS_DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16, "F64": torch.float64}
# ``from_pretrained``'s hub options; anything else in the caller's kwargs is not a download option.
HUB_OPTIONS = ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder", "proxies")


def wanted(key: str) -> bool:
    """Whether a checkpoint tensor belongs to what READ keeps (decoder stack, shared embedding, head)."""
    return key.startswith("decoder.") or key in ("shared.weight", "lm_head.weight")


def _resolve(name_or_path: str, filename: str, hub: dict) -> str | None:
    # A file the repo does not have is None (the next format is tried); an unreachable Hub raises.
    return cached_file(name_or_path, filename, _raise_exceptions_for_missing_entries=False, **hub)


def checkpoint_files(name_or_path: str, hub: dict) -> tuple[str, list[str]]:
    """(format, the local files holding the wanted tensors): only the shards that hold any are fetched."""
    for single, index, kind in ((SAFETENSORS, SAFETENSORS_INDEX, "safetensors"), (PICKLE, PICKLE_INDEX, "pickle")):
        path = _resolve(name_or_path, single, hub)
        if path is not None:
            return kind, [path]
        index_path = _resolve(name_or_path, index, hub)
        if index_path is not None:
            with open(index_path, encoding="utf-8") as f:
                weight_map = json.load(f)["weight_map"]
            shards = sorted({shard for key, shard in weight_map.items() if wanted(key)})
            files = [_resolve(name_or_path, shard, hub) for shard in shards]
            missing = [shard for shard, file in zip(shards, files) if file is None]
            if missing:
                raise FileNotFoundError(f"{name_or_path}: {index} names shard(s) {missing} that cannot be found")
            return kind, files
    raise FileNotFoundError(f"{name_or_path} has no {SAFETENSORS}, {SAFETENSORS_INDEX}, {PICKLE} or {PICKLE_INDEX}: "
                            "not a T5 checkpoint folder or hub id")


def read_tensors(kind: str, files: list[str], dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    """The wanted tensors of ``files``, each cast to ``dtype`` as soon as it is read."""
    tensors = {}
    for file in files:
        if kind == "safetensors":
            from safetensors import safe_open

            with safe_open(file, framework="pt") as weights:
                keys = [key for key in weights.keys() if wanted(key)]
                if dtype is None or all(_SAFETENSORS_DTYPES.get(weights.get_slice(key).get_dtype()) in (dtype, None)
                                        for key in keys):
                    # Nothing to cast: the tensors stay views of the file's mapping (paged in
                    # as they are used), as from_pretrained leaves them.
                    tensors.update((key, weights.get_tensor(key)) for key in keys)
                    continue
            for key in keys:
                # Cast: the file is mapped once per tensor, so each tensor's stored pages leave
                # the process's memory as soon as it is cast, instead of piling up until the
                # whole (possibly 3 GB, encoder included) file is closed.
                with safe_open(file, framework="pt") as weights:
                    tensors[key] = _cast(weights.get_tensor(key), dtype)
        else:
            state = _load_pickle(file)
            for key in [k for k in state if wanted(k)]:
                tensor = state.pop(key)
                # A copy either way: the mapped file is released below.
                tensors[key] = tensor.to(dtype) if _needs_cast(tensor, dtype) else tensor.clone()
            del state
    return tensors


def _load_pickle(file: str) -> dict:
    try:  # memory-mapped: the tensors not selected are never read from disk
        return torch.load(file, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # the legacy (pre-zip) format cannot be mapped
        return torch.load(file, map_location="cpu", weights_only=True)


def _needs_cast(tensor: torch.Tensor, dtype: torch.dtype | None) -> bool:
    return dtype is not None and tensor.is_floating_point() and tensor.dtype != dtype


def _cast(tensor: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    return tensor.to(dtype) if _needs_cast(tensor, dtype) else tensor


def decoder_config(config: T5Config) -> T5Config:
    """The config ``T5ForConditionalGeneration`` gives its decoder stack."""
    config = copy.deepcopy(config)
    config.is_decoder = True
    config.num_layers = config.num_decoder_layers
    return config


def load_decoder(name_or_path: str, dtype: torch.dtype | None = None, **kwargs) -> tuple[T5Stack, nn.Linear, T5Config]:
    """``(decoder stack, lm_head, config)`` of a T5 checkpoint, frozen, holding only their own weights.

    The result equals ``T5ForConditionalGeneration.from_pretrained(...)``'s ``decoder`` and
    ``lm_head`` (tested): the decoder's ``embed_tokens`` is the shared embedding; the head is
    the checkpoint's own ``lm_head`` (T5 v1.1) or, when the checkpoint stores none
    (original T5, tied), the shared embedding. ``kwargs``: hub options (``revision``,
    ``token``, ``cache_dir``, ``local_files_only``, ...).
    """
    hub = {k: v for k, v in kwargs.items() if k in HUB_OPTIONS}
    config = T5Config.from_pretrained(name_or_path, **hub)
    kind, files = checkpoint_files(name_or_path, hub)
    tensors = read_tensors(kind, files, dtype)
    shared = tensors.pop("shared.weight", None)
    stored_embedding = tensors.pop("decoder.embed_tokens.weight", None)
    shared = shared if shared is not None else stored_embedding
    if shared is None:
        raise ValueError(f"{name_or_path}: the checkpoint has no shared.weight (the decoder's token embedding)")
    head = tensors.pop("lm_head.weight", shared)  # no stored head: T5's tied head is the shared embedding
    state = {key.removeprefix("decoder."): value for key, value in tensors.items()}
    state["embed_tokens.weight"] = shared
    with torch.device("meta"):  # structure only: every parameter is replaced by a loaded tensor below
        decoder = T5Stack(decoder_config(config))
        lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
    missing, unexpected = decoder.load_state_dict(state, strict=False, assign=True)
    if missing or unexpected:
        raise ValueError(f"{name_or_path}: the checkpoint's decoder does not match its config "
                         f"(missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]})")
    lm_head.load_state_dict({"weight": head}, assign=True)
    for module in (decoder, lm_head):
        module.requires_grad_(False).eval()  # as from_pretrained leaves them; ReadModel sets the training mode
    _assert_materialised(decoder, lm_head)
    return decoder, lm_head, config


def _assert_materialised(*modules: nn.Module) -> None:
    for module in modules:
        for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
            if tensor.is_meta:
                raise ValueError(f"decoder tensor {name!r} was not loaded from the checkpoint")
