"""Each loss against an independent, loop-by-loop computation from raw embeddings."""

import math

import pytest
import torch
import torch.nn.functional as F
from transformers import T5ForConditionalGeneration

from read_trainer import losses
from read_trainer.modeling import ReadModel


def _unit(*shape, seed):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g, dtype=torch.float64), dim=-1)


def _ce(row_logits, target):
    """-log softmax(row)[target], written out."""
    m = max(row_logits)
    return -(row_logits[target] - m - math.log(sum(math.exp(v - m) for v in row_logits)))


def _dot(a, b):
    return float((a * b).sum())


@pytest.mark.parametrize("k", [0, 1, 3])
def test_contrastive_with_negatives_matches_hand_computation(k):
    b, d = 5, 8
    img, anc = _unit(b, d, seed=1), _unit(b, d, seed=2)
    neg = _unit(b * k, d, seed=3)
    log_scale = torch.tensor(math.log(20.0), dtype=torch.float64)
    got = losses.contrastive_with_negatives(img, anc, neg if k else None, log_scale)

    s = 20.0
    i2t = [_ce([s * _dot(img[i], t) for t in list(anc) + list(neg)], i) for i in range(b)]
    t2i = [_ce([s * _dot(anc[j], img[i]) for i in range(b)], j) for j in range(b)]
    expected = 0.5 * (sum(i2t) / b + sum(t2i) / b)
    assert got.item() == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("with_negatives", [False, True])
def test_alignment_matches_hand_computation(symmetric, with_negatives):
    b, d = 4, 8
    par, anc, neg = _unit(b, d, seed=8), _unit(b, d, seed=9), _unit(2 * b, d, seed=10)
    log_scale = torch.tensor(math.log(10.0), dtype=torch.float64)
    got = losses.alignment(par, anc, log_scale, symmetric=symmetric,
                           negative_embeds=neg if with_negatives else None)
    s = 10.0
    extra = list(neg) if with_negatives else []
    p2a = sum(_ce([s * _dot(par[i], t) for t in list(anc) + extra], i) for i in range(b)) / b
    if symmetric:
        a2p = sum(_ce([s * _dot(anc[i], t) for t in list(par) + extra], i) for i in range(b)) / b
        expected = 0.5 * (p2a + a2p)
    else:
        expected = p2a
    assert got.item() == pytest.approx(expected, rel=1e-10)


def test_alignment_is_one_directional_by_default():
    """Paraphrase -> anchor only: permuting paraphrase rows' partners changes nothing in the columns."""
    b, d = 4, 8
    par, anc = _unit(b, d, seed=11), _unit(b, d, seed=12)
    zero = torch.tensor(0.0, dtype=torch.float64)
    expected = F.cross_entropy(par @ anc.t(), torch.arange(b))
    assert losses.alignment(par, anc, zero).item() == pytest.approx(expected.item(), rel=1e-12)
    assert losses.alignment(par, anc, zero).item() != pytest.approx(
        F.cross_entropy(anc @ par.t(), torch.arange(b)).item(), rel=1e-6)


def test_token_cross_entropy_ignores_padding():
    logits = torch.randn(2, 3, 7, dtype=torch.float64)
    labels = torch.tensor([[1, 4, -100], [2, -100, -100]])
    terms = [-torch.log_softmax(logits[0, 0], -1)[1], -torch.log_softmax(logits[0, 1], -1)[4],
             -torch.log_softmax(logits[1, 0], -1)[2]]
    assert losses.token_cross_entropy(logits, labels).item() == pytest.approx(sum(terms).item() / 3, rel=1e-6)


def test_reconstruction_equals_t5s_own_loss_with_the_projection_as_encoder_output(tiny_models):
    """ReadModel's decoder path = T5ForConditionalGeneration(labels=..) fed the projected state."""
    clip_dir, t5_dir = tiny_models
    model = ReadModel.from_pretrained(clip_dir, t5_dir, decoder_dropout=False).eval()
    t5 = T5ForConditionalGeneration.from_pretrained(t5_dir).eval()
    pooled = torch.randn(3, model.clip.config.text_config.hidden_size)
    labels = torch.tensor([[5, 9, 12, 1], [7, 1, -100, -100], [4, 4, 8, 1]])
    ours = model.reconstruction_loss(pooled, labels)
    memory = model.text_to_decoder(pooled).unsqueeze(1)
    reference = t5(encoder_outputs=(memory,), labels=labels).loss
    assert ours.item() == pytest.approx(reference.item(), rel=1e-5)


def test_read_loss_weighs_the_named_terms():
    """read_loss = L_con + λ_rec·L_rec + λ_align·L_align from a ReadOutput's named embeddings;
    a zero weight drops its term and its component."""
    from read_trainer.modeling import ReadOutput

    g = torch.Generator().manual_seed(3)
    b, k, d = 4, 2, 8

    def unit(n):
        return F.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=-1)

    out = ReadOutput(image_embeds=unit(b), anchors=unit(b), negatives=unit(b * k), paraphrases=unit(b),
                     logit_scale=torch.tensor(1.5, dtype=torch.float64),
                     reconstruction_loss=torch.tensor(2.25, dtype=torch.float64), reconstruction_tokens=torch.tensor(9))
    scale, targets = math.exp(1.5), torch.arange(b)
    per_image = scale * out.image_embeds @ torch.cat([out.anchors, out.negatives]).t()
    contrastive = 0.5 * (F.cross_entropy(per_image, targets) + F.cross_entropy(per_image[:, :b].t(), targets))
    alignment = F.cross_entropy(scale * out.paraphrases @ out.anchors.t(), targets)

    total, parts = losses.read_loss(out, reconstruction_weight=0.1, alignment_weight=0.5)
    assert set(parts) == {"contrastive", "reconstruction", "alignment"}
    assert total.item() == pytest.approx((contrastive + 0.1 * 2.25 + 0.5 * alignment).item(), rel=1e-12)
    assert parts["alignment"].item() == pytest.approx(alignment.item(), rel=1e-12)

    total, parts = losses.read_loss(out, reconstruction_weight=0.0, alignment_weight=0.0)
    assert set(parts) == {"contrastive"} and total.item() == pytest.approx(contrastive.item(), rel=1e-12)

    with pytest.raises(ValueError, match="one paraphrase per anchor, got 0 for 4"):
        losses.read_loss(ReadOutput(**{**out, "paraphrases": unit(0)}), reconstruction_weight=0.0,
                         alignment_weight=0.5)
    with pytest.raises(ValueError, match="no reconstruction loss"):
        losses.read_loss(ReadOutput(**{**out, "reconstruction_loss": None}), reconstruction_weight=0.1,
                         alignment_weight=0.0)
