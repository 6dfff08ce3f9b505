"""Non-finite losses, gradients and weights: stop the run, or skip the update; never save them.

Trainer on its own keeps going after a NaN: the logged loss reads 0.0 (its NaN filter),
the weights turn NaN at the next optimizer step and every later checkpoint and the export
are NaN. ``NonFiniteGuard`` keeps each micro-batch's loss (``ReadTrainer.training_step``)
and checks them with the accumulated gradients right before the optimizer step
(``on_pre_optimizer_step``), in one read of the device per optimizer step:

* ``stop`` raises ``NonFiniteError`` naming the optimizer step, the loss components and
  the rows of the batch, so the bad data or setting can be found;
* ``skip`` drops that update (gradients set to ``None``: torch optimizers leave such
  parameters, and their moments, untouched) and counts it in the logs.

``assert_finite`` is the last line of defence: saving and publishing refuse weights that
are not all finite, before a single file is written.
"""

from __future__ import annotations

import json
import os
from typing import Callable, Iterable, Mapping

import torch
from transformers import TrainerCallback

NONFINITE_POLICIES = ("stop", "skip")


class NonFiniteError(RuntimeError):
    """Training produced a non-finite loss, gradient or weight."""


def _local(tensor: torch.Tensor) -> torch.Tensor:
    # FSDP2 parameters are DTensors: each process checks the shard it holds.
    from torch.distributed.tensor import DTensor

    return tensor.to_local() if isinstance(tensor, DTensor) else tensor


def first_nonfinite(named_tensors: Iterable[tuple[str, torch.Tensor]]) -> str | None:
    """The name of the first floating-point tensor holding a NaN or an infinity, else ``None``."""
    for name, tensor in named_tensors:
        if tensor is None or not torch.is_floating_point(tensor):
            continue
        local = _local(tensor).detach()
        if local.numel() and not bool(torch.isfinite(local).all()):
            return name
    return None


def assert_finite(named_tensors: Iterable[tuple[str, torch.Tensor]] | Mapping[str, torch.Tensor], what: str) -> None:
    """Raise ``NonFiniteError`` if any tensor is non-finite (``what`` says what was about to happen)."""
    items = named_tensors.items() if isinstance(named_tensors, Mapping) else named_tensors
    bad = first_nonfinite(items)
    if bad is not None:
        raise NonFiniteError(f"refusing to {what}: weight {bad!r} is not finite (NaN or inf); "
                             "the run diverged (see --nonfinite)")


def assert_finite_folder(folder: str) -> None:
    """Refuse a saved model folder whose safetensors weights are not all finite (before any upload)."""
    from safetensors import safe_open

    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.isfile(os.path.join(folder, "model.safetensors")):
        files = ["model.safetensors"]
    elif os.path.isfile(index):
        with open(index, encoding="utf-8") as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        raise FileNotFoundError(f"{folder} has no model.safetensors: not an exported model folder")
    for name in files:
        with safe_open(os.path.join(folder, name), framework="pt") as weights:
            for key in weights.keys():
                if first_nonfinite([(key, weights.get_tensor(key))]) is not None:
                    raise NonFiniteError(f"refusing to publish {folder}: weight {key!r} in {name} is not finite "
                                         "(NaN or inf); the run that wrote it diverged")


class NonFiniteGuard(TrainerCallback):
    """Applies the ``--nonfinite`` policy; ``ReadTrainer`` calls ``check_loss`` for each micro-batch.

    Gradients are not checked when a fp16 GradScaler is active: an overflowing scaled
    gradient is routine there, and the scaler itself skips that step and lowers the scale.
    """

    def __init__(self, policy: str = "stop", check_gradients: bool = True):
        if policy not in NONFINITE_POLICIES:
            raise ValueError(f"nonfinite must be one of {NONFINITE_POLICIES}, got {policy!r}")
        self.policy = policy
        self.check_gradients = check_gradients
        self.skipped_steps = 0
        self._reset()

    def check_loss(self, loss: torch.Tensor, step: int, components: Callable[[], Mapping[str, float]],
                   row_ids) -> None:
        """After one micro-batch's backward: remember its loss and rows.

        Nothing is read back from the device here: a read would stall every step while the
        host waits for the device. The verdict is taken once per optimizer step, with the
        gradients, in ``on_pre_optimizer_step``; ``components`` is only called then, and
        only for a non-finite loss.
        """
        self._row_ids.extend(list(row_ids) if row_ids is not None else [])
        self._losses.append(loss.detach().float().mean())
        self._components = components

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        step = state.global_step + 1
        values = list(self._losses)
        if self.check_gradients and model is not None:
            grads = [_local(p.grad).detach() for p in model.parameters() if p.grad is not None]
            if grads:
                # One norm per gradient, in a few fused kernels: a NaN or inf anywhere makes
                # its norm non-finite. So the device is read once per optimizer step, not once
                # per tensor.
                values.extend(n.float() for n in torch._foreach_norm(grads))
        problem = None
        if values:
            device = values[0].device
            if not bool(torch.isfinite(torch.stack([v.to(device) for v in values])).all()):
                problem = self._describe(step, model)
                if self.policy == "stop":
                    raise NonFiniteError(problem + "; rerun with --nonfinite skip to drop such updates")
        if problem is not None:
            # Skip: with no gradient, the optimizer leaves the weights and their moments as they are.
            for p in model.parameters():
                p.grad = None
            self.skipped_steps += 1
            from transformers.utils import logging

            logging.get_logger(__name__).warning("skipped the update: %s", problem)
        self._reset()

    def _describe(self, step: int, model) -> str:
        """What went wrong in this update (called only once something did: it reads the device)."""
        bad_losses = [float(v) for v in self._losses if not bool(torch.isfinite(v))]
        if bad_losses:
            parts = ", ".join(f"{name}={value:.6g}" for name, value in self._components().items()) or "not recorded"
            return (f"non-finite loss {bad_losses[0]:.6g} at optimizer step {step} "
                    f"(loss components: {parts}) in the batch of rows {self._rows()}")
        bad = first_nonfinite((name, p.grad) for name, p in model.named_parameters() if p.grad is not None)
        return f"non-finite gradient of {bad!r} at optimizer step {step} in the batch of rows {self._rows()}"

    def _reset(self) -> None:
        self._losses: list[torch.Tensor] = []
        self._components: Callable[[], Mapping[str, float]] = dict
        self._row_ids: list = []

    def log_fields(self) -> dict[str, int]:
        return {"nonfinite_skipped_steps": self.skipped_steps} if self.policy == "skip" else {}

    def _rows(self) -> str:
        return _shorten(self._row_ids)


def _shorten(rows: list) -> str:
    return repr(rows) if len(rows) <= 64 else f"{rows[:64]!r} (+{len(rows) - 64} more)"
