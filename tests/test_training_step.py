"""One READ step: gradients, padding exactness, skipped branches."""

import copy

import pytest
import torch
from conftest import make_rows

from read_trainer import losses
from read_trainer.config import ReadConfig
from read_trainer.modeling import ReadModel
from read_trainer.trainer import ReadTrainer


def _setup(tiny_models, tmp_path, **overrides):
    clip_dir, t5_dir = tiny_models
    options = dict(output_dir=str(tmp_path / "out"), model_name_or_path=clip_dir, decoder_name_or_path=t5_dir,
                   decoder_dropout=False, report_to="none", use_cpu=True)
    options.update(overrides)
    args = ReadConfig(**options)
    model = ReadModel.from_config(args)
    trainer = ReadTrainer(model=model, args=args, train_dataset=make_rows(8, paraphrases=True))
    return trainer, model


def _batch(trainer, n=4, **collator_overrides):
    collator = copy.copy(trainer.data_collator)
    for key, value in collator_overrides.items():
        setattr(collator, key, value)
    return collator(make_rows(n, paraphrases=True))


def _grads(model):
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_single_backward_equals_reference_two_backward_scheme(tiny_models, tmp_path, dtype):
    """Ours: one forward/backward. Reference: (L_con + λ_rec L_rec).backward(), then anchors
    re-encoded with the paraphrases and (λ_align L_align).backward(). Same gradient.

    In float64 the two agree to rounding (1e-9): the same mathematics. In float32 they
    differ only by summation order (different batch shapes and length groups through
    the text tower), within 2e-6 of the gradient's scale.
    """
    trainer, model = _setup(tiny_models, tmp_path)
    model.to(dtype).train()
    batch = _batch(trainer)
    batch["pixel_values"] = batch["pixel_values"].to(dtype)
    trainer.compute_loss(model, dict(batch)).backward()
    ours = _grads(model)
    model.zero_grad(set_to_none=True)

    args, b, k = trainer.args, batch["pixel_values"].shape[0], batch["num_negatives"]
    ids, mask = batch["input_ids"], batch["attention_mask"]
    n_first = b * (1 + k)
    # pass 1: images + anchors|negatives, contrastive + reconstruction
    image = model.encode_image(batch["pixel_values"])
    pooled, text = model.encode_text(ids[:n_first], mask[:n_first])
    first = losses.contrastive_with_negatives(image, text[:b], text[b:], model.clip.logit_scale) \
        + args.reconstruction_weight * model.reconstruction_loss(pooled[:b], batch["decoder_labels"])
    first.backward()
    # pass 2: anchors encoded again with the paraphrases, alignment alone
    _, anchors = model.encode_text(ids[:b], mask[:b])
    _, paraphrases = model.encode_text(ids[n_first:], mask[n_first:])
    (args.alignment_weight * losses.alignment(paraphrases, anchors, model.clip.logit_scale)).backward()
    reference = _grads(model)

    assert ours.keys() == reference.keys()
    for name in ours:
        scale = max(1.0, reference[name].abs().max().item())
        tol = 1e-9 if dtype == torch.float64 else 2e-6 * scale
        torch.testing.assert_close(ours[name], reference[name], atol=tol, rtol=0, msg=lambda m: f"{name}: {m}")


def test_reconstruction_gradient_reaches_text_tower_and_projection_only(tiny_models, tmp_path):
    trainer, model = _setup(tiny_models, tmp_path)
    batch = _batch(trainer)
    b = batch["pixel_values"].shape[0]
    pooled, _ = model.encode_text(batch["input_ids"][:b], batch["attention_mask"][:b])
    model.reconstruction_loss(pooled, batch["decoder_labels"]).backward()

    grads = {n: p.grad for n, p in model.named_parameters()}
    assert grads["text_to_decoder.weight"].abs().sum() > 0
    text_tower = [g for n, g in grads.items() if n.startswith("clip.text_model.")]
    assert any(g is not None and g.abs().sum() > 0 for g in text_tower)
    for name, grad in grads.items():
        if name.startswith(("clip.text_projection", "clip.vision_model", "clip.visual_projection", "clip.logit_scale")):
            assert grad is None or grad.abs().sum() == 0, name
    # T5 is frozen: no parameter of it is trainable or received a gradient.
    for name, param in list(model.decoder.named_parameters()) + list(model.lm_head.named_parameters()):
        assert not param.requires_grad and param.grad is None, name


def test_decoder_keeps_no_encoder(tiny_models, tmp_path):
    _, model = _setup(tiny_models, tmp_path)
    names = [n for n, _ in model.named_parameters()]
    assert not any(n.startswith(("encoder.", "decoder.encoder", "clip.encoder")) for n in names)
    assert not any(".encoder." in n and not n.startswith("clip.") for n in names)
    t5_param_names = {n for n in names if n.startswith(("decoder.", "lm_head."))}
    assert t5_param_names and all("block" in n or "embed_tokens" in n or "final_layer_norm" in n
                                  or n.startswith("lm_head.") for n in t5_param_names)
    assert model.decoder.is_decoder


def test_dynamic_padding_gives_the_same_losses_as_padding_to_77(tiny_models, tmp_path):
    trainer, model = _setup(tiny_models, tmp_path)
    model.eval()
    dynamic = _batch(trainer)
    padded = _batch(trainer, pad_to_max_length=True)
    assert dynamic["input_ids"].shape[1] < padded["input_ids"].shape[1] == 77
    assert padded["decoder_labels"].shape[1] == 77
    with torch.no_grad():
        trainer.compute_loss(model, dict(dynamic))
        trainer.compute_loss(model, dict(padded))
    metrics = trainer._metrics["eval"]
    for name in ("loss/contrastive", "loss/reconstruction", "loss/alignment"):
        a, b = metrics[name]
        assert a.item() == pytest.approx(b.item(), abs=1e-5), name


def test_zero_weights_skip_their_branches(tiny_models, tmp_path):
    """λ_rec = 0 loads and runs no decoder; λ_align = 0 encodes no paraphrases: a NegCLIP baseline."""
    clip_dir, _ = tiny_models
    args = ReadConfig(output_dir=str(tmp_path / "o"), model_name_or_path=clip_dir, decoder_name_or_path="/nonexistent",
                      reconstruction_weight=0.0, alignment_weight=0.0, report_to="none", use_cpu=True)
    model = ReadModel.from_config(args)  # would fail if it tried to load the decoder
    assert model.decoder is None and model.text_to_decoder is None
    trainer = ReadTrainer(model=model, args=args, train_dataset=make_rows(4))
    batch = trainer.data_collator(make_rows(4, paraphrases=True))
    assert "decoder_labels" not in batch
    assert batch["input_ids"].shape[0] == 4 * (1 + 3)  # anchors + negatives, no paraphrases
    loss = trainer.compute_loss(model, dict(batch))
    assert set(trainer._metrics["train"]) == {"loss/contrastive", "logit_scale"}
    assert loss.item() == pytest.approx(trainer._metrics["train"]["loss/contrastive"][0].item())


def test_decoder_dropout_switch(tiny_models, tmp_path):
    clip_dir, t5_dir = tiny_models
    on = ReadModel.from_pretrained(clip_dir, t5_dir, decoder_dropout=True).train()
    off = ReadModel.from_pretrained(clip_dir, t5_dir, decoder_dropout=False).train()
    assert on.decoder.training and not off.decoder.training and off.clip.training
    pooled = torch.randn(2, on.clip.config.text_config.hidden_size)
    labels = torch.tensor([[5, 6, 7, 1], [8, 9, 1, -100]])
    off.text_to_decoder.weight.data.copy_(on.text_to_decoder.weight.data)
    torch.manual_seed(0)
    assert off.reconstruction_loss(pooled, labels) == off.reconstruction_loss(pooled, labels)
    torch.manual_seed(0)
    first = on.reconstruction_loss(pooled, labels)
    assert first != on.reconstruction_loss(pooled, labels)  # dropout active in the frozen decoder
