"""WiSE-FT: weight-space interpolation between the base and the fine-tuned CLIP.

θ(α) = (1 − α)·θ_base + α·θ_fine-tuned. α = 1 is the fine-tuned model, α = 0 the base;
values between trade READ's compositional gains against the base's zero-shot skill
(Wortsman et al., 2022). Both endpoints are reproduced exactly (no lerp rounding).
"""

from __future__ import annotations

import torch
from transformers import CLIPModel


def interpolate_state_dicts(base: dict[str, torch.Tensor], tuned: dict[str, torch.Tensor],
                            alpha: float) -> dict[str, torch.Tensor]:
    """Interpolate two state dicts of the same architecture (floating tensors only)."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if base.keys() != tuned.keys():
        raise ValueError(f"state dicts differ: only in base {sorted(base.keys() - tuned.keys())[:5]}, "
                         f"only in tuned {sorted(tuned.keys() - base.keys())[:5]}")
    out = {}
    for key, b in base.items():
        t = tuned[key]
        if b.shape != t.shape:
            raise ValueError(f"{key}: shape {tuple(b.shape)} vs {tuple(t.shape)}")
        if alpha == 1.0 or not torch.is_floating_point(t):
            out[key] = t.clone()
        elif alpha == 0.0:
            out[key] = b.clone().to(t.dtype)
        else:
            mixed = (1.0 - alpha) * b.double().to(t.device) + alpha * t.double()
            out[key] = mixed.to(t.dtype)
    return out


def wise_ft(base: CLIPModel | str, tuned: CLIPModel | str, alpha: float) -> CLIPModel:
    """A new CLIPModel with interpolated weights; ``base``/``tuned`` are models, paths or hub ids."""
    base_model = CLIPModel.from_pretrained(base) if isinstance(base, str) else base
    tuned_model = CLIPModel.from_pretrained(tuned) if isinstance(tuned, str) else tuned
    state = interpolate_state_dicts(base_model.state_dict(), tuned_model.state_dict(), alpha)
    mixed = CLIPModel(tuned_model.config)
    mixed.load_state_dict(state)
    return mixed.to(next(tuned_model.parameters()).dtype)
