"""Cached-embedding chunking: a large contrastive batch trained in chunks, with the one-shot update.

READ's contrastive and alignment losses couple every row of the batch, so memory grows
with the whole batch's activations. The step here (GradCache's idea) keeps only
embeddings for the whole batch:

1. every chunk of rows is encoded **without grad** (towers only; the decoder does not run),
   and the random state before each chunk is saved;
2. the contrastive and alignment losses are computed on the full embedding matrices held
   as leaf tensors (``logit_scale`` too), gathered across processes as in the one-shot
   step, and differentiated w.r.t. those leaves;
3. each chunk is encoded again **with grad** under its saved random state (the towers'
   stochastic layers, e.g. LoRA dropout, draw what they drew in 1.), and one backward
   sends the cached gradients into its towers, plus the chunk's share of the
   reconstruction loss: its token sum over the batch's token count (the global one
   across processes, as ``losses.token_mean_over_processes``). ``logit_scale``'s
   gradient rides on the last chunk's backward, so it is counted once.

The gradient is the one-shot batch's: L = L_emb(E) + λ·Σ_c S_c/N, with E the embeddings,
so dL/dθ = Σ_c (dL_emb/dE_c)·dE_c/dθ + λ·Σ_c dS_c/dθ / N, each chunk's term computed by
its own backward. Each backward is one scalar, ``Σ (E_c·G_c) + λ·S_c/N``, handed to
the caller's ``backward`` (Trainer's: gradient-accumulation division, fp16 loss scaling);
under DDP every backward but the last runs inside ``no_sync``, so gradients are
all-reduced once per step.

The frozen decoder runs once per chunk, in step 3 only: its dropout is drawn once, as in
the one-shot step (the masks are other draws than the one-shot step's, being drawn per
chunk; the function trained is the same).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable

import torch
import torch.distributed as dist

from .modeling import ReadOutput

EMBEDDINGS = ("image_embeds", "anchors", "negatives", "paraphrases")
ROW_INPUTS = ("pixel_values", "decoder_labels", "decoder_input_ids")  # one row per image
TEXT_INPUTS = ("input_ids", "attention_mask")  # anchors | negatives | paraphrases
DECODER_INPUTS = ("decoder_labels", "decoder_input_ids")


def chunk_bounds(batch: int, chunk_size: int) -> list[tuple[int, int]]:
    """``[(start, end)]`` of consecutive chunks of ``chunk_size`` rows (the last may be shorter)."""
    return [(start, min(start + chunk_size, batch)) for start in range(0, batch, chunk_size)]


def chunk_inputs(inputs: dict, start: int, end: int) -> dict:
    """The model inputs of rows [start, end), texts kept in the batch's layout.

    Texts come as anchors (B) | negatives (B·K, grouped by anchor) | paraphrases (B or
    none); a chunk takes its rows from each part, so the model splits them as usual.
    """
    batch = inputs["pixel_values"].shape[0]
    k = int(inputs.get("num_negatives", 0))
    texts = inputs["input_ids"].shape[0]
    paraphrases = texts - batch * (1 + k)
    if paraphrases not in (0, batch):
        raise ValueError(f"{texts} texts for {batch} images and {k} negatives each: expected "
                         f"{batch * (1 + k)} or {batch * (2 + k)} (anchors | negatives | paraphrases)")
    spans = [(start, end), (batch + start * k, batch + end * k)]
    if paraphrases:
        spans.append((batch * (1 + k) + start, batch * (1 + k) + end))
    chunk = dict(inputs)
    for key in ROW_INPUTS:
        if inputs.get(key) is not None:
            chunk[key] = inputs[key][start:end]
    for key in TEXT_INPUTS:
        if inputs.get(key) is not None:
            chunk[key] = torch.cat([inputs[key][a:b] for a, b in spans])
    return chunk


@dataclass
class RandomState:
    """The CPU and CUDA generator states, as ``torch.utils.checkpoint`` saves them."""

    cpu: torch.Tensor
    cuda: list[torch.Tensor] | None

    @classmethod
    def capture(cls) -> "RandomState":
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
        return cls(torch.get_rng_state(), cuda)

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state_all(self.cuda)


@dataclass
class ChunkedStep:
    """What one chunked step computed: the total (as the one-shot step's), components, logit scale."""

    total: torch.Tensor
    components: dict[str, torch.Tensor]
    logit_scale: torch.Tensor


def _world(across_processes: bool) -> int:
    if across_processes and dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def cached_embedding_step(
    model,
    inputs: dict,
    chunk_size: int,
    embedding_loss: Callable[[ReadOutput], tuple[torch.Tensor, dict[str, torch.Tensor]]],
    reconstruction_weight: float,
    backward: Callable[[torch.Tensor], None],
    *,
    across_processes: bool = False,
    no_sync: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    forward_context: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> ChunkedStep:
    """Forward and backward of one batch in chunks of ``chunk_size`` rows (see the module docstring).

    ``embedding_loss(output)``: the contrastive and alignment terms of a ``ReadOutput``
    holding the full batch's embeddings (``losses.read_loss`` with reconstruction off, and
    its cross-process gather when ``across_processes``). ``reconstruction_weight`` > 0
    needs ``decoder_labels`` in ``inputs``. ``backward(scalar)`` runs one backward (the
    trainer's: accumulation division, loss scaling); ``no_sync()`` wraps every backward
    but the last; ``forward_context()`` wraps every forward and the loss (autocast).
    """
    bounds = chunk_bounds(inputs["pixel_values"].shape[0], chunk_size)
    towers_only = {k: v for k, v in inputs.items() if k not in DECODER_INPUTS}

    # 1. Embeddings of every chunk, without grad; the random state each chunk started from.
    states, cached = [], {name: [] for name in EMBEDDINGS}
    with torch.no_grad():
        for start, end in bounds:
            states.append(RandomState.capture())
            with forward_context():
                out = model(**chunk_inputs(towers_only, start, end))
            for name in EMBEDDINGS:
                cached[name].append(getattr(out, name))
            logit_scale = out.logit_scale

    # 2. The batch-coupled losses on leaf copies; their gradients w.r.t. the embeddings.
    leaves = {name: torch.cat(parts).requires_grad_() for name, parts in cached.items() if parts[0] is not None}
    scale_leaf = logit_scale.detach().clone().requires_grad_()
    with forward_context():
        embed_total, components = embedding_loss(ReadOutput(logit_scale=scale_leaf, **leaves))
    names = list(leaves)
    grads = torch.autograd.grad(embed_total, [leaves[n] for n in names] + [scale_leaf], allow_unused=True)
    scale_grad = grads[-1]
    row_grads = {n: g for n, g in zip(names, grads[:-1]) if g is not None}

    # The reconstruction weight of a label token: 1/N of the batch (W/N_global across processes).
    rec_on = reconstruction_weight > 0
    if rec_on:
        if inputs.get("decoder_labels") is None:
            raise ValueError("reconstruction_weight > 0 but the batch has no decoder_labels")
        world = _world(across_processes)
        tokens = (inputs["decoder_labels"] != -100).sum().to(torch.float32)  # exact below 2**24 tokens
        if world > 1:
            tokens = tokens.clone()
            dist.all_reduce(tokens, op=dist.ReduceOp.SUM)
        token_sum = 0.0

    # 3. Each chunk again, with grad, under its saved random state; one backward per chunk.
    for index, (start, end) in enumerate(bounds):
        last = index == len(bounds) - 1
        states[index].restore()
        with no_sync() if not last else contextlib.nullcontext():
            with forward_context():
                out = model(**chunk_inputs(inputs, start, end))
                surrogate = _cached_gradient_term(out, row_grads, bounds, index, inputs)
                if rec_on:
                    chunk_sum = _at_least_fp32(out.reconstruction_loss) * out.reconstruction_tokens  # S_c
                    surrogate = surrogate + reconstruction_weight * world * chunk_sum / tokens.to(chunk_sum.dtype)
                    token_sum = token_sum + chunk_sum.detach()
                if last and scale_grad is not None:
                    surrogate = surrogate + (out.logit_scale * scale_grad).sum()
            backward(surrogate)
            del out, surrogate

    total = embed_total.detach()
    if rec_on:
        # What the one-shot step adds to this process's total, and logs (the global token mean).
        total = total + reconstruction_weight * world * token_sum / tokens.to(token_sum.dtype)
        logged = token_sum
        if _world(across_processes) > 1:
            logged = token_sum.clone()
            dist.all_reduce(logged, op=dist.ReduceOp.SUM)
        components = dict(components, reconstruction=logged / tokens.to(logged.dtype))
    return ChunkedStep(total=total, components={k: v.detach() for k, v in components.items()},
                       logit_scale=logit_scale.detach())


def _cached_gradient_term(out: ReadOutput, row_grads: dict, bounds, index: int, inputs: dict) -> torch.Tensor:
    """Σ over the chunk's embeddings of ⟨E_c, G_c⟩: its gradient w.r.t. the chunk's weights is the cached one."""
    start, end = bounds[index]
    k = int(inputs.get("num_negatives", 0))
    term = torch.zeros((), dtype=_at_least_fp32(out.anchors).dtype, device=out.anchors.device)
    for name, grad in row_grads.items():
        a, b = (start * k, end * k) if name == "negatives" else (start, end)
        term = term + (_at_least_fp32(getattr(out, name)) * _at_least_fp32(grad[a:b])).sum()
    return term


def _at_least_fp32(t: torch.Tensor) -> torch.Tensor:
    # bf16 embeddings are summed in fp32; fp64 ones (in tests) stay fp64.
    return t.to(torch.promote_types(t.dtype, torch.float32))
