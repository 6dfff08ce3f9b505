"""Per-term gradient norms on the text tower, and the callback that records them during training."""

import pytest
import torch
from conftest import make_rows

from read_trainer import losses
from read_trainer.config import ReadConfig
from read_trainer.modeling import ReadModel
from read_trainer.term_gradients import TermGradientCallback, term_gradient_norms, text_tower_parameters
from read_trainer.trainer import ReadTrainer


def _args(tiny_models, tmp_path, **overrides):
    clip_dir, t5_dir = tiny_models
    options = dict(output_dir=str(tmp_path / "out"), model_name_or_path=clip_dir, decoder_name_or_path=t5_dir,
                   decoder_dropout=False, report_to="none", use_cpu=True, reconstruction_weight=0.3,
                   alignment_weight=0.5, per_device_train_batch_size=4, max_steps=3, learning_rate=1e-3,
                   seed=7, save_strategy="no", logging_steps=1, disable_tqdm=True)
    options.update(overrides)
    return ReadConfig(**options)


def _text_grad_norm(model, loss) -> float:
    """The text tower's gradient norm of ``loss``, through .grad (independent of the function under test)."""
    model.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.sqrt(sum((p.grad.double() ** 2).sum() for p in text_tower_parameters(model) if p.grad is not None))
    model.zero_grad(set_to_none=True)
    return float(norm)


def test_norms_match_each_weighted_term_backpropagated_alone(tiny_models, tmp_path):
    args = _args(tiny_models, tmp_path)
    model = ReadModel.from_config(args).double().eval()
    trainer = ReadTrainer(model=model, args=args, train_dataset=make_rows(8, paraphrases=True))
    batch = trainer.data_collator(make_rows(4, paraphrases=True))
    batch["pixel_values"] = batch["pixel_values"].double()

    measured = term_gradient_norms(model, dict(batch), args)

    expected = {}
    for name, weight in (("contrastive", 1.0), ("reconstruction", 0.3), ("alignment", 0.5)):
        inputs = {k: v for k, v in batch.items() if k != "row_ids"}
        out = model(**inputs)
        if name == "contrastive":
            term = losses.contrastive_with_negatives(out.image_embeds, out.anchors, out.negatives, out.logit_scale)
        elif name == "reconstruction":
            term = out.reconstruction_loss
        else:
            term = losses.alignment(out.paraphrases, out.anchors, out.logit_scale, symmetric=False)
        expected[name] = _text_grad_norm(model, weight * term)
    for name, value in expected.items():
        assert measured[f"norm/{name}"] == pytest.approx(value, rel=1e-9)
        assert measured[f"share/{name}"] == pytest.approx(value / sum(expected.values()), rel=1e-9)
    assert -1.0 <= measured["cosine/reconstruction_contrastive"] <= 1.0
    # Nothing was accumulated into .grad: the measurement does not leak into training.
    assert all(p.grad is None for p in model.parameters())


def test_reconstruction_off_reports_only_the_terms_that_run(tiny_models, tmp_path):
    args = _args(tiny_models, tmp_path, reconstruction_weight=0.0, alignment_weight=0.0)
    model = ReadModel.from_config(args)
    trainer = ReadTrainer(model=model, args=args, train_dataset=make_rows(8))
    measured = term_gradient_norms(model, trainer.data_collator(make_rows(4)), args)
    assert set(measured) == {"loss/contrastive", "norm/contrastive", "share/contrastive"}
    assert measured["share/contrastive"] == 1.0 and measured["norm/contrastive"] > 0


def _train(tiny_models, tmp_path, callbacks):
    args = _args(tiny_models, tmp_path)
    trainer = ReadTrainer(args=args, train_dataset=make_rows(8, paraphrases=True), callbacks=callbacks)
    trainer.train()
    return {n: p.detach().clone() for n, p in trainer.model.named_parameters()}, trainer


def test_callback_records_without_changing_the_run(tiny_models, tmp_path):
    plain, _ = _train(tiny_models, tmp_path / "plain", callbacks=None)
    callback = TermGradientCallback(every=2)
    measured, trainer = _train(tiny_models, tmp_path / "measured", callbacks=[callback])

    # Bit-identical training: no gradient written, no random number drawn from the run's generators.
    assert plain.keys() == measured.keys()
    assert all(torch.equal(plain[n], measured[n]) for n in plain)
    assert [r["step"] for r in callback.records] == [0, 2, 3]
    for record in callback.records:
        shares = [record[f"share/{t}"] for t in ("contrastive", "reconstruction", "alignment")]
        assert sum(shares) == pytest.approx(1.0) and all(0 < s < 1 for s in shares)
    # The measurement at a later step sees the trained weights, not the initial ones.
    assert callback.records[0]["loss/contrastive"] != callback.records[-1]["loss/contrastive"]


def test_every_must_be_positive():
    with pytest.raises(ValueError, match="every must be >= 1"):
        TermGradientCallback(every=0)
