"""Which loss term moves the text tower: per-term gradient norms on a fixed batch.

READ's total loss is ``contrastive + λ_rec·reconstruction + λ_align·alignment``. How much
each weighted term contributes to the text tower's update is not visible in the loss
values (a term can be large and nearly flat, or small and steep). ``term_gradient_norms``
differentiates each weighted term separately with respect to the text tower's trainable
parameters and reports the norms, each term's share of their sum and the cosine between
the reconstruction and contrastive gradients. ``TermGradientCallback`` takes that
measurement every N optimizer steps during training on one fixed batch, without touching
the training run: no ``.grad`` is written and every random number generator it could
advance is restored, so a run trained with it is bit-identical to one trained without.
"""

from __future__ import annotations

import random
from contextlib import contextmanager

import numpy as np
import torch
from transformers import TrainerCallback

from . import losses
from .trainer import read_loss_options, read_model_inputs


def text_tower_parameters(model) -> list[torch.nn.Parameter]:
    """The trainable parameters of CLIP's text tower and text projection (LoRA adapters included)."""
    clip = model.clip
    base = clip.get_base_model() if hasattr(clip, "get_base_model") else clip
    modules = [base.text_model, base.text_projection]
    return [p for m in modules for p in m.parameters() if p.requires_grad]


def _wide(g: torch.Tensor) -> torch.Tensor:
    """At least float32 (bf16 gradients summed in bf16 lose the norm), float64 kept."""
    return g.to(torch.promote_types(g.dtype, torch.float32))


def _flat_norm(grads) -> torch.Tensor:
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(_wide(g)) for g in grads]))


def _dot(a, b) -> torch.Tensor:
    return sum((_wide(x) * _wide(y)).sum() for x, y in zip(a, b))


def term_gradient_norms(model, inputs: dict, args) -> dict[str, float]:
    """Gradient norm of each weighted loss term w.r.t. the text tower, on ``inputs``.

    ``inputs`` is a collated batch (as ``ReadCollator`` returns it); ``args`` the run's
    ``ReadConfig`` (weights and alignment options). Returns ``{"norm/<term>": ...,
    "share/<term>": ..., "loss/<term>": ...}`` for each active term (share = the term's
    norm over the sum of all terms' norms), plus ``"cosine/reconstruction_contrastive"``
    when both run. The model's mode is left as it is (training mode measures the
    gradients training sees, decoder dropout included).
    """
    inputs = read_model_inputs({k: v for k, v in inputs.items() if k != "row_ids"}, args)
    params = text_tower_parameters(model)
    _, components = losses.read_loss(model(**inputs), **read_loss_options(args))
    weights = {"contrastive": 1.0, "reconstruction": args.reconstruction_weight, "alignment": args.alignment_weight}
    names = list(components)
    grads = {}
    for i, name in enumerate(names):
        term = weights[name] * components[name]
        grads[name] = torch.autograd.grad(term, params, retain_graph=i < len(names) - 1, allow_unused=True)
        grads[name] = [g if g is not None else torch.zeros_like(p) for g, p in zip(grads[name], params)]
    norms = {name: _flat_norm(g) for name, g in grads.items()}
    total = sum(norms.values())
    result = {}
    for name in names:
        result[f"loss/{name}"] = float(components[name].detach())
        result[f"norm/{name}"] = float(norms[name])
        result[f"share/{name}"] = float(norms[name] / total) if total > 0 else 0.0
    if "reconstruction" in grads:
        denominator = norms["reconstruction"] * norms["contrastive"]
        cosine = _dot(grads["reconstruction"], grads["contrastive"]) / denominator if denominator > 0 else 0.0
        result["cosine/reconstruction_contrastive"] = float(cosine)
    return result


@contextmanager
def preserved_random_state():
    """Run a block without advancing Python's, NumPy's or torch's (CPU and CUDA) generators."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)


class TermGradientCallback(TrainerCallback):
    """Measure ``term_gradient_norms`` at step 0 and every ``every`` optimizer steps.

    The batch is the first ``batch_size`` rows of the training set (default: the
    per-device batch size), collated once by the trainer's own collator at the start, so
    every measurement sees the same texts and targets. Results are kept in ``records``
    (one dict per measurement, with its ``step``).
    """

    def __init__(self, every: int = 100, batch_size: int | None = None):
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.every, self.batch_size = every, batch_size
        self.records: list[dict] = []
        self._batch = None

    def on_train_begin(self, args, state, control, model=None, train_dataloader=None, **kwargs):
        size = self.batch_size or args.per_device_train_batch_size
        dataset = train_dataloader.dataset
        with preserved_random_state():
            self._batch = train_dataloader.collate_fn([dataset[i] for i in range(min(size, len(dataset)))])
        self._measure(args, state, model)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.every == 0 or state.global_step == state.max_steps:
            self._measure(args, state, model)

    def _measure(self, args, state, model) -> None:
        if any(r["step"] == state.global_step for r in self.records):
            return
        device = next(model.parameters()).device
        batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in self._batch.items()}
        with preserved_random_state():
            record = term_gradient_norms(model, batch, args)
        self.records.append({"step": state.global_step, **record})
