"""READ's losses as pure functions of embeddings (DESIGN.md §2).

Every embedding passed here is already L2-normalised; ``logit_scale`` is CLIP's
learnable *log* temperature (the parameter itself, exponentiated here, no clamp
beyond CLIP's own) so its gradient flows as in CLIP.
"""

from __future__ import annotations

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

    Computed in fp32 from whatever dtype the logits are in, and the logits are not
    kept afterwards (the reference held B×L×V fp32 logits for a logging metric).
    """
    return F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100)


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` from every process along dim 0, differentiably.

    With no process group (or one process) this is the identity. Otherwise the
    autograd all-gather sums, in backward, the gradient every process computed for
    each shard and hands each process its own shard's: with the global loss on every
    process and DDP's gradient averaging, the update equals one process on the
    combined batch. Shapes must match across processes (even batches).
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(tensor), dim=0)
