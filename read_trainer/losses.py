"""READ's losses as pure functions of embeddings, and ``read_loss``, which weighs them.

READ's objective is L = L_con + λ_rec·L_rec + λ_align·L_align: the NegCLIP contrastive
loss with hard negatives as extra image->text columns, the frozen T5 decoder's token
cross-entropy regenerating a caption from the anchor's text state, and paraphrase->anchor
alignment with in-batch anchors as negatives.

Every embedding passed here is already L2-normalised; ``logit_scale`` is CLIP's
learnable *log* temperature (the parameter itself, exponentiated here, no clamp
beyond CLIP's own) so its gradient flows as in CLIP.

Across processes (DDP, FSDP, DeepSpeed: all of them *average* gradients over
processes) two helpers make one multi-process step equal one single-process step
on the combined batch: ``gather_with_grad`` for the contrastive and alignment
losses, ``token_mean_over_processes`` for the reconstruction loss.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F


def contrastive_with_negatives(
    image_embeds: torch.Tensor,
    anchor_embeds: torch.Tensor,
    negative_embeds: torch.Tensor | None,
    logit_scale: torch.Tensor,
) -> torch.Tensor:
    """NegCLIP contrastive loss.

    image→text: each image against the B anchors *and* all B·K hard negatives
    (negatives are extra columns). text→image: only the B anchors against the B
    images. No image hard negatives. ½ (CE_i2t + CE_t2i).
    """
    scale = logit_scale.exp()
    texts = anchor_embeds if negative_embeds is None or negative_embeds.numel() == 0 else torch.cat(
        [anchor_embeds, negative_embeds]
    )
    logits_per_image = scale * image_embeds @ texts.t()  # (B, B + B·K)
    targets = torch.arange(image_embeds.shape[0], device=image_embeds.device)
    loss_i2t = F.cross_entropy(logits_per_image, targets)
    loss_t2i = F.cross_entropy(logits_per_image[:, : anchor_embeds.shape[0]].t(), targets)
    return 0.5 * (loss_i2t + loss_t2i)


def alignment(
    paraphrase_embeds: torch.Tensor,
    anchor_embeds: torch.Tensor,
    logit_scale: torch.Tensor,
    *,
    symmetric: bool = False,
    negative_embeds: torch.Tensor | None = None,
) -> torch.Tensor:
    """Sentence-level paraphrase alignment.

    Default (the reference): paraphrase→anchor cross-entropy with in-batch anchors
    as negatives and CLIP's scale. ``negative_embeds`` adds hard negatives as extra
    columns; ``symmetric`` averages with the anchor→paraphrase direction.
    """
    scale = logit_scale.exp()
    targets = torch.arange(paraphrase_embeds.shape[0], device=paraphrase_embeds.device)
    columns = anchor_embeds if negative_embeds is None else torch.cat([anchor_embeds, negative_embeds])
    loss = F.cross_entropy(scale * paraphrase_embeds @ columns.t(), targets)
    if symmetric:
        reverse_columns = paraphrase_embeds if negative_embeds is None else torch.cat(
            [paraphrase_embeds, negative_embeds]
        )
        loss = 0.5 * (loss + F.cross_entropy(scale * anchor_embeds @ reverse_columns.t(), targets))
    return loss


def token_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """T5's reconstruction loss: token-mean cross-entropy over labels != -100.

    ``logits`` is (..., V) with ``labels`` of the leading shape: (B, L, V) with (B, L), or
    (N, V) with (N,) when the caller already kept only the label positions. Computed in
    (at least) fp32 whatever dtype the logits are in, and the logits are not kept afterwards
    (the reference held B×L×V fp32 logits for a logging metric).
    """
    # At least fp32 (bf16 logits are upcast; fp64 ones, in tests, stay fp64).
    logits = logits.reshape(-1, logits.shape[-1]).to(torch.promote_types(logits.dtype, torch.float32))
    return F.cross_entropy(logits, labels.reshape(-1), ignore_index=-100)


def read_loss(
    output,
    *,
    reconstruction_weight: float,
    alignment_weight: float,
    alignment_symmetric: bool = False,
    alignment_include_negatives: bool = False,
    across_processes: bool = False,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """READ's total loss and its unweighted components from a ``ReadOutput``.

    ``output`` carries the embeddings by name (``image_embeds``, ``anchors``,
    ``negatives``, ``paraphrases``, ``logit_scale``) and, when the decoder ran,
    ``reconstruction_loss`` with its label-token count ``reconstruction_tokens``. A zero
    weight leaves its term (and its component) out. ``across_processes``: the
    contrastive and alignment losses are computed over the global batch (embeddings
    gathered with ``gather_with_grad``) and the reconstruction loss is normalised by the
    global token count (``token_mean_over_processes``), so N processes train like one;
    the logged reconstruction component is then the global token mean.

    Returns ``(total, {"contrastive": ..., "reconstruction": ..., "alignment": ...})``.
    """
    images, anchors, negatives, paraphrases = output.image_embeds, output.anchors, output.negatives, output.paraphrases
    if across_processes:
        images, anchors, negatives, paraphrases = gather_with_grad([images, anchors, negatives, paraphrases])
    has_negatives = negatives is not None and negatives.shape[0] > 0
    contrastive = contrastive_with_negatives(images, anchors, negatives if has_negatives else None, output.logit_scale)
    total, components = contrastive, {"contrastive": contrastive}
    if reconstruction_weight > 0:
        if output.reconstruction_loss is None:
            raise ValueError("reconstruction_weight > 0 but the model computed no reconstruction loss "
                             "(no decoder_labels in the batch, or a model without a decoder)")
        reconstruction = logged = output.reconstruction_loss
        if across_processes:
            reconstruction, logged = token_mean_over_processes(reconstruction, output.reconstruction_tokens)
        components["reconstruction"] = logged
        total = total + reconstruction_weight * reconstruction
    if alignment_weight > 0:
        if paraphrases is None or paraphrases.shape[0] != anchors.shape[0]:
            got = 0 if paraphrases is None else paraphrases.shape[0]
            raise ValueError(f"alignment needs one paraphrase per anchor, got {got} for {anchors.shape[0]} anchors")
        aligned = alignment(paraphrases, anchors, output.logit_scale, symmetric=alignment_symmetric,
                            negative_embeds=negatives if alignment_include_negatives and has_negatives else None)
        components["alignment"] = aligned
        total = total + alignment_weight * aligned
    return total, components


def _process_group_size() -> int:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


class _GatherWithGrad(torch.autograd.Function):
    """All-gather rows whose backward sums every process's gradient for the local rows.

    Forward: each process contributes ``local`` (rows may differ in number across
    processes: they are padded to the largest for the collective and the padding is
    dropped again), and gets the rows of every process concatenated in rank order.
    Backward: every process holds the gradient of its own copy of the loss w.r.t. *all*
    rows; the gradient of the sum over processes w.r.t. this process's rows is the
    all-reduced (summed) gradient, sliced at this process's rows. All-reduce (not
    reduce-scatter) because every backend has it (gloo has no reduce-scatter on every
    version) and the tensor is a few hundred KB of embeddings.
    """

    @staticmethod
    def forward(ctx, local: torch.Tensor, sizes: list[int], rank: int) -> torch.Tensor:
        ctx.sizes, ctx.rank = sizes, rank
        width = max(sizes)
        padded = local.new_zeros((width, *local.shape[1:]))
        padded[: local.shape[0]] = local
        out = local.new_empty((len(sizes) * width, *local.shape[1:]))
        dist.all_gather_into_tensor(out, padded)
        return torch.cat([chunk[:n] for chunk, n in zip(out.split(width), sizes)])

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.contiguous()  # all_reduce works in place on a dense tensor
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start = sum(ctx.sizes[: ctx.rank])
        return grad[start: start + ctx.sizes[ctx.rank]], None, None


def gather_with_grad(tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Concatenate each tensor's rows from every process (rank order), differentiably.

    The open_clip pattern: every process then computes the *same* global-batch loss.
    Why the update is exact: in backward, the gather sums what every process computed
    for each shard, so process r's rows receive W·dL/d(rows_r) (W = world size); the
    gradient DDP/FSDP/DeepSpeed then *average* over processes is
    (1/W)·Σ_r W·dL/d(rows_r)·d(rows_r)/dθ = dL/dθ, the single-process gradient on the
    combined batch. Parameters used directly in the loss (``logit_scale``) get the full
    dL/dscale on every process, which averaging leaves unchanged.

    All tensors go through one collective (packed along dim 0; they must share their
    trailing shape), after one small exchange of row counts, so processes may hold
    different numbers of rows (an uneven last batch). With no process group, or one
    process, this returns the tensors unchanged.
    """
    tensors = list(tensors)
    world = _process_group_size()
    if world == 1:
        return tensors
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    counts = [t.shape[0] for t in tensors]
    local = torch.cat([t.to(dtype) for t in tensors])
    # Row counts of every part on every process: (world, len(tensors)).
    mine = torch.tensor(counts, dtype=torch.long, device=local.device)
    table = mine.new_empty(world * len(counts))  # gathered along dim 0: rank 0's counts, rank 1's, ...
    dist.all_gather_into_tensor(table, mine)
    table = table.view(world, len(counts)).tolist()
    gathered = _GatherWithGrad.apply(local, [sum(row) for row in table], dist.get_rank())
    # Unpack: the rows of process p are its parts in order; regroup part by part.
    pieces = gathered.split([n for row in table for n in row])
    return [
        torch.cat([pieces[p * len(counts) + i] for p in range(world)]).to(t.dtype)
        for i, t in enumerate(tensors)
    ]


def token_mean_over_processes(local_mean: torch.Tensor, local_tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Make a per-process token-mean loss exact for the combined batch.

    Each process's T5 loss is S_r/n_r (its summed token cross-entropy over its own n_r
    label tokens). Averaging those over processes is not the token mean over the
    combined batch S/N when processes hold different numbers of tokens (they do:
    captions differ in length). Returns:

    * ``loss``: W·S_r/N, to add to this process's total. Its gradient averaged over
      processes (what DDP/FSDP/DeepSpeed do) is ∇S/N, the combined-batch gradient; its
      value averaged over processes (what Trainer logs as ``loss``) is S/N.
    * ``value``: S/N itself, detached and identical on every process, for logging.

    One all-reduce of two numbers. Without a process group: ``(local_mean, local_mean)``.
    """
    world = _process_group_size()
    if world == 1:
        return local_mean, local_mean.detach()
    local_sum = local_mean * local_tokens  # S_r, differentiable; local_mean is fp32
    totals = torch.stack([local_sum.detach(), local_tokens.to(local_sum.dtype)])
    dist.all_reduce(totals, op=dist.ReduceOp.SUM)
    global_sum, global_tokens = totals[0], totals[1]
    return world * local_sum / global_tokens, global_sum / global_tokens
