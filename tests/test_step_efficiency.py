"""Step efficiency (issue 7): length-grouped passes, gradient checkpointing in a Trainer run,
each text encoded once, nothing recomputed for logging, logits only at label positions."""

from __future__ import annotations

import itertools

import pytest
import torch

from read_trainer.config import ReadConfig
from read_trainer.modeling import ReadModel, length_groups, row_extents
from read_trainer.trainer import ReadTrainer

from conftest import make_rows


def _padded(groups) -> int:
    return sum(len(rows) * width for rows, width in groups)


def test_length_groups_partition_the_rows_with_least_padding():
    generator = torch.Generator().manual_seed(0)
    for n, max_groups in [(1, 4), (7, 1), (9, 3), (10, 4), (300, 4)]:
        lengths = torch.randint(3, 40, (n,), generator=generator)
        groups = length_groups(lengths, max_groups)
        assert 1 <= len(groups) <= max_groups
        rows = torch.cat([r for r, _ in groups])
        assert sorted(rows.tolist()) == list(range(n))  # every row exactly once
        for r, width in groups:
            assert lengths[r].max().item() == width  # each group cut to its own longest row
        if max_groups == 1:
            assert _padded(groups) == n * lengths.max().item()
        if n <= 10:  # optimal: brute force over every way to cut the sorted rows
            ordered = sorted(lengths.tolist())
            best = min(
                sum((end - start) * ordered[end - 1] for start, end in zip((0, *cuts), (*cuts, n)))
                for k in range(max_groups) for cuts in itertools.combinations(range(1, n), k)
            )
            assert _padded(groups) == best


def test_row_extents_cut_after_the_last_kept_position():
    mask = torch.tensor([[1, 1, 0, 0], [1, 0, 1, 0], [1, 1, 1, 1], [0, 0, 0, 0]])
    assert row_extents(mask).tolist() == [2, 3, 4, 0]


@pytest.fixture
def model64(tiny_models):
    clip_dir, t5_dir = tiny_models
    return ReadModel.from_pretrained(clip_dir, t5_dir, decoder_dropout=False).double().train()


def _batch(tiny_models, n=6):
    args = ReadConfig(output_dir="unused", model_name_or_path=tiny_models[0], decoder_name_or_path=tiny_models[1],
                      report_to="none", use_cpu=True)
    trainer = ReadTrainer(args=args, model=ReadModel.from_config(args))
    return trainer.data_collator(make_rows(n, paraphrases=True))


def test_length_grouped_passes_equal_one_padded_pass(model64, tiny_models):
    """Same pooled states, embeddings, reconstruction loss and gradients (float64: to rounding)."""
    batch = _batch(tiny_models)
    ids, mask, labels = batch["input_ids"], batch["attention_mask"], batch["decoder_labels"]
    b = batch["pixel_values"].shape[0]
    assert len(length_groups(row_extents(mask), 4)) > 1 and len(length_groups(row_extents(labels != -100), 4)) > 1
    results = []
    for groups in (1, 4):
        model64.length_groups = groups
        model64.zero_grad(set_to_none=True)
        pooled, embeds = model64.encode_text(ids, mask)
        loss = model64.reconstruction_loss(pooled[:b], labels)
        (loss + embeds.sum()).backward()
        grads = {n: p.grad.clone() for n, p in model64.named_parameters() if p.grad is not None}
        results.append((pooled.detach(), embeds.detach(), loss.detach(), grads))
    (p1, e1, l1, g1), (p4, e4, l4, g4) = results
    torch.testing.assert_close(p4, p1, atol=1e-12, rtol=0)
    torch.testing.assert_close(e4, e1, atol=1e-12, rtol=0)
    torch.testing.assert_close(l4, l1, atol=1e-12, rtol=0)
    assert g1.keys() == g4.keys() and "text_to_decoder.weight" in g1
    for name in g1:
        torch.testing.assert_close(g4[name], g1[name], atol=1e-10, rtol=0, msg=lambda m: f"{name}: {m}")


class _RowCounter:
    """Wraps a module's ``forward``: how many rows it was called on, and its input shapes.

    A wrapper, not a forward hook (hooks do not fire when checkpointing recomputes a
    layer), counting on entry (a recomputation stops inside the last layer it needs,
    before that layer returns).
    """

    def __init__(self, module):
        self.rows, self.shapes = 0, []
        self.forward = module.forward
        module.forward = self

    def __call__(self, hidden, *args, **kwargs):
        self.rows += hidden.shape[0]
        self.shapes.append(tuple(hidden.shape))
        return self.forward(hidden, *args, **kwargs)


def _train_one_step(tiny_models, tmp_path, checkpointing: bool):
    clip_dir, t5_dir = tiny_models
    args = ReadConfig(
        output_dir=str(tmp_path / f"ckpt{checkpointing}"), model_name_or_path=clip_dir, decoder_name_or_path=t5_dir,
        gradient_checkpointing=checkpointing, decoder_dropout=False, max_steps=1, per_device_train_batch_size=4,
        train_sampling_strategy="sequential", optim="sgd", learning_rate=0.5, lr_scheduler_type="constant",
        warmup_steps=0, max_grad_norm=0.0, save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True,
    )
    trainer = ReadTrainer(args=args, train_dataset=make_rows(4, paraphrases=True))
    model = trainer.model
    # Modules *inside* the first layers: transformers checkpoints a layer's forward, so the
    # layer's own call is not repeated, its sublayers' calls are.
    counters = {
        "text": _RowCounter(model.clip.text_model.encoder.layers[0].mlp),
        "vision": _RowCounter(model.clip.vision_model.encoder.layers[0].mlp),
        "decoder": _RowCounter(model.decoder.block[0].layer[-1]),  # the feed-forward sublayer
        "lm_head": _RowCounter(model.lm_head),
    }
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    trainer.train()
    update = {n: p.detach() - before[n] for n, p in model.named_parameters() if p.requires_grad}
    return model, counters, update


def test_gradient_checkpointing_in_a_trainer_run(tiny_models, tmp_path):
    """`gradient_checkpointing=True` reaches CLIP's towers through ReadModel, recomputes them in
    the backward, and leaves the update unchanged; every text is encoded once per forward, the
    decoder runs once, and the vocabulary projection sees only label positions."""
    b, k = 4, 3
    texts = b * (2 + k)  # anchors | negatives | paraphrases
    label_tokens = int((_batch(tiny_models, b)["decoder_labels"] != -100).sum())

    plain, seen, update = _train_one_step(tiny_models, tmp_path, checkpointing=False)
    assert not plain.clip.text_model.encoder.gradient_checkpointing
    assert (seen["text"].rows, seen["vision"].rows, seen["decoder"].rows) == (texts, b, b)
    assert seen["lm_head"].shapes == [(label_tokens, plain.lm_head.in_features)]

    checkpointed, seen_ckpt, update_ckpt = _train_one_step(tiny_models, tmp_path, checkpointing=True)
    assert checkpointed.clip.text_model.encoder.gradient_checkpointing
    assert checkpointed.clip.vision_model.encoder.gradient_checkpointing
    # The towers run again in the backward (that is the memory saving); the frozen decoder does not.
    assert (seen_ckpt["text"].rows, seen_ckpt["vision"].rows, seen_ckpt["decoder"].rows) == (2 * texts, 2 * b, b)
    assert update_ckpt.keys() == update.keys()
    for name in update:
        torch.testing.assert_close(update_ckpt[name], update[name], atol=1e-6, rtol=0, msg=lambda m: f"{name}: {m}")
    assert max(u.abs().max().item() for u in update.values()) > 1e-3
