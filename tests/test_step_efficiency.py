"""Step efficiency: length-grouped passes, gradient checkpointing in a Trainer run, each text
encoded once, the decoder run once, nothing recomputed for logging."""

from __future__ import annotations

import itertools
import os
import random

import pytest
import torch
import torch.nn.functional as F
import yaml
from conftest import CORPUS, make_rows, random_image

from read_trainer.config import ReadConfig
from read_trainer.device_settings import STEP_SETTINGS
from read_trainer.modeling import ReadModel, length_groups, row_extents
from read_trainer.op_count import OpCounter, shape_signature
from read_trainer.trainer import ReadTrainer

# The static-shape step (buckets, one pass) that training on a GPU runs, checked here on the CPU.
GPU_STEP = STEP_SETTINGS["gpu"]


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


def _batch(tiny_models, n=6, **settings):
    args = ReadConfig(output_dir="unused", model_name_or_path=tiny_models[0], decoder_name_or_path=tiny_models[1],
                      report_to="none", use_cpu=True, **settings)
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
        activation_checkpointing=checkpointing, decoder_dropout=False, max_steps=1, per_device_train_batch_size=4,
        train_sampling_strategy="sequential", optim="sgd", learning_rate=0.5, lr_scheduler_type="constant",
        warmup_steps=0, max_grad_norm=0.0, save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True,
        **GPU_STEP,
    )
    trainer = ReadTrainer(args=args, train_dataset=make_rows(4, paraphrases=True))
    model = trainer.model
    # Modules *inside* the first layers: transformers checkpoints a layer's forward, so the
    # layer's own call is not repeated, its sublayers' calls are.
    counters = {
        "text": _RowCounter(model.clip.text_model.encoder.layers[0].mlp),
        "vision": _RowCounter(model.clip.vision_model.encoder.layers[0].mlp),
        "decoder": _RowCounter(model.decoder.block[0].layer[-1].DenseReluDense.wo),  # the feed-forward output
        "lm_head": _RowCounter(model.lm_head),
    }
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    trainer.train()
    update = {n: p.detach() - before[n] for n, p in model.named_parameters() if p.requires_grad}
    return model, counters, update


def test_gradient_checkpointing_in_a_trainer_run(tiny_models, tmp_path):
    """`activation_checkpointing=True` reaches CLIP's towers through ReadModel, recomputes them in
    the backward, and leaves the update unchanged; every text is encoded once per forward, the
    decoder runs once, and the vocabulary projection runs once, on the collator's padded targets."""
    b, k = 4, 3
    texts = b * (2 + k)  # anchors | negatives | paraphrases
    label_width = _batch(tiny_models, b, **GPU_STEP)["decoder_labels"].shape[1]

    plain, seen, update = _train_one_step(tiny_models, tmp_path, checkpointing=False)
    assert not plain.clip.text_model.encoder.gradient_checkpointing
    assert (seen["text"].rows, seen["vision"].rows, seen["decoder"].rows) == (texts, b, b)
    assert seen["lm_head"].shapes == [(b, label_width, plain.lm_head.in_features)]

    checkpointed, seen_ckpt, update_ckpt = _train_one_step(tiny_models, tmp_path, checkpointing=True)
    assert checkpointed.clip.text_model.encoder.gradient_checkpointing
    assert checkpointed.clip.vision_model.encoder.gradient_checkpointing
    # The towers run again in the backward (that is the memory saving); the frozen decoder does not.
    assert (seen_ckpt["text"].rows, seen_ckpt["vision"].rows, seen_ckpt["decoder"].rows) == (2 * texts, 2 * b, b)
    assert update_ckpt.keys() == update.keys()
    for name in update:
        torch.testing.assert_close(update_ckpt[name], update[name], atol=1e-6, rtol=0, msg=lambda m: f"{name}: {m}")
    assert max(u.abs().max().item() for u in update.values()) > 1e-3


# -- static shapes, host syncs and op counts of the reference recipe's step ----------------

REFERENCE_YAML = os.path.join(os.path.dirname(__file__), os.pardir, "recipes", "read_clip_vit_b32.yaml")


@pytest.fixture(scope="module")
def reference_depth_models(tmp_path_factory):
    """The reference architecture's depth (12 + 12 CLIP layers, 24 T5 decoder blocks) at a tiny
    width: op counts and host syncs depend on the depth and the code path, not on the width."""
    from read_trainer.demo.tiny_models import TinyClipSpec, TinyT5Spec, write_tiny_models

    corpus = CORPUS + [f"in short {c}" for c in CORPUS]
    clip_spec = TinyClipSpec(num_layers=12, hidden_size=32, intermediate_size=64, num_heads=2)
    t5_spec = TinyT5Spec(num_layers=24, d_model=32, d_ff=64, d_kv=8, num_heads=4)
    return tuple(str(p) for p in write_tiny_models(tmp_path_factory.mktemp("refdepth"), corpus, clip_spec, t5_spec))


def _reference_recipe(models, tmp_path) -> ReadConfig:
    """The reference YAML's own knobs (bf16, checkpointing, K, weights, dropout...), on CPU."""
    with open(REFERENCE_YAML) as f:
        options = yaml.safe_load(f)
    import dataclasses

    from read_trainer.data.loading import DataArguments

    data_keys = {f.name for f in dataclasses.fields(DataArguments)}  # recipe keys, not ReadConfig fields
    options = {k: v for k, v in options.items() if k not in data_keys}
    options.update(model_name_or_path=models[0], decoder_name_or_path=models[1], output_dir=str(tmp_path / "ref"),
                   report_to="none", use_cpu=True, dataloader_num_workers=0, **GPU_STEP)
    return ReadConfig(**options)


def _random_length_rows(n: int, seed: int) -> list[dict]:
    """Rows whose captions, negatives and paraphrases span COCO-like lengths (5 to 40 words)."""
    rng = random.Random(seed)
    words = " ".join(CORPUS).split()

    def caption():
        return " ".join(rng.choice(words) for _ in range(min(40, max(5, int(rng.gauss(12, 6))))))

    rows = []
    for i in range(n):
        captions = [caption() for _ in range(2)]
        rows.append({"row_id": f"{seed}-{i}", "image": random_image(i), "captions": captions,
                     "negatives": [[caption() for _ in range(3)] for _ in captions],
                     "paraphrases": [[caption()] for _ in captions]})
    return rows


def test_reference_recipe_step_has_no_host_syncs_and_a_bounded_op_count(reference_depth_models, tmp_path,
                                                                        monkeypatch):
    """Forward + backward of the reference recipe's step (its YAML: bf16 autocast, activation
    checkpointing, decoder dropout on, K = 3, both READ losses), eager, on CPU, as a GPU runs it
    (static shapes; dropout by native_dropout, not the CPU's uniform draws)."""
    from read_trainer import lean_decoder

    monkeypatch.setattr(lean_decoder, "uniform_dropout", lambda device: False)
    args = _reference_recipe(reference_depth_models, tmp_path)
    assert args.bf16 and args.activation_checkpointing and args.decoder_dropout and args.num_hard_negatives == 3
    trainer = ReadTrainer(args=args, train_dataset=_random_length_rows(8, 0))
    model = trainer.model.train()
    model.activation_checkpointing_enable()  # what Trainer.train does for gradient_checkpointing=True
    batch = trainer.data_collator(_random_length_rows(8, 1))

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = trainer.compute_loss(model, dict(batch))
        loss.backward()

    step()  # first call: lazy initialisation (fused decoder weights, autocast caches)
    with OpCounter() as counter:
        step()
    assert counter.host_syncs == 0, counter.syncs_by_op
    assert counter.ops <= 12_000, counter.summary()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_host_syncs_are_counted():
    """The counter sees the syncs the step avoids: boolean-mask selection and ``.tolist()``."""
    x = torch.randn(6, 4)
    with OpCounter() as counter:
        x[x[:, 0] > 0].sum()
        torch.arange(3).tolist()
        x.nonzero()
    assert counter.host_syncs >= 3, counter.syncs_by_op


def test_distinct_step_shapes_over_20_batches_stay_within_the_buckets(tiny_models, tmp_path):
    clip_dir, t5_dir = tiny_models
    args = ReadConfig(output_dir=str(tmp_path / "o"), model_name_or_path=clip_dir, decoder_name_or_path=t5_dir,
                      report_to="none", use_cpu=True, **GPU_STEP)
    trainer = ReadTrainer(args=args, train_dataset=_random_length_rows(4, 0))
    collator = trainer.data_collator
    signatures, dynamic = set(), set()
    for i in range(20):
        rows = _random_length_rows(6, 100 + i)
        signatures.add(shape_signature(collator(rows)))
        collator.padding_bucket = 0
        dynamic.add(shape_signature(collator(rows)))
        collator.padding_bucket = args.padding_bucket
    buckets = -(-max(args.max_text_length, args.max_target_length) // args.padding_bucket)
    assert len(signatures) <= buckets
    assert len(dynamic) > len(signatures)  # what dynamic padding would have compiled and allocated


def test_static_step_equals_the_stock_modules_on_unpadded_inputs(tiny_models, tmp_path):
    """The whole new path (bucketed batch, no padding mask, lean decoder, padded lm_head pass,
    read_loss) against the stock transformers modules on the dynamically padded batch with
    its masks, the stock T5 decoder and the loss formula written out: loss and every
    gradient agree within 1e-5 (fp32)."""
    clip_dir, t5_dir = tiny_models
    args = ReadConfig(output_dir=str(tmp_path / "o"), model_name_or_path=clip_dir, decoder_name_or_path=t5_dir,
                      decoder_dropout=False, report_to="none", use_cpu=True, **GPU_STEP)
    model = ReadModel.from_config(args).train()
    trainer = ReadTrainer(model=model, args=args, train_dataset=_random_length_rows(4, 0))
    rows = _random_length_rows(6, 7)
    bucketed = trainer.data_collator(rows)
    trainer.data_collator.padding_bucket = 0
    dynamic = trainer.data_collator(rows)
    assert bucketed["input_ids"].shape[1] > dynamic["input_ids"].shape[1]

    model.zero_grad(set_to_none=True)
    trainer.compute_loss(model, dict(bucketed)).backward()
    ours = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)

    clip, b, k = model.clip, 6, args.num_hard_negatives
    images = F.normalize(clip.visual_projection(clip.vision_model(pixel_values=dynamic["pixel_values"]).pooler_output),
                         dim=-1)
    pooled = clip.text_model(input_ids=dynamic["input_ids"], attention_mask=dynamic["attention_mask"]).pooler_output
    texts = F.normalize(clip.text_projection(pooled), dim=-1)
    anchors, negatives, paraphrases = texts[:b], texts[b:b * (1 + k)], texts[b * (1 + k):]
    scale, targets = clip.logit_scale.exp(), torch.arange(b)
    per_image = scale * images @ torch.cat([anchors, negatives]).t()
    contrastive = 0.5 * (F.cross_entropy(per_image, targets) + F.cross_entropy(per_image[:, :b].t(), targets))
    labels = dynamic["decoder_labels"]
    memory = model.text_to_decoder(pooled[:b]).unsqueeze(1)
    hidden = model.decoder(input_ids=model.shift_right(labels), encoder_hidden_states=memory,
                           use_cache=False).last_hidden_state
    reconstruction = F.cross_entropy(model.lm_head(hidden).flatten(0, 1), labels.flatten(), ignore_index=-100)
    alignment = F.cross_entropy(scale * paraphrases @ anchors.t(), targets)
    reference = contrastive + args.reconstruction_weight * reconstruction + args.alignment_weight * alignment
    reference.backward()
    stock = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    logged = trainer._metrics["train"]
    torch.testing.assert_close(logged["loss/contrastive"][-1], contrastive.detach(), atol=1e-5, rtol=0)
    torch.testing.assert_close(logged["loss/reconstruction"][-1], reconstruction.detach(), atol=1e-5, rtol=0)
    torch.testing.assert_close(logged["loss/alignment"][-1], alignment.detach(), atol=1e-5, rtol=0)
    assert ours.keys() == stock.keys() and "text_to_decoder.weight" in ours
    for name in ours:
        torch.testing.assert_close(ours[name], stock[name], atol=1e-5, rtol=0, msg=lambda m: f"{name}: {m}")


def test_compiled_towers_have_no_graph_breaks_and_one_graph_per_bucket(tiny_models, tmp_path):
    """``compile_towers`` on the collator's shapes: fullgraph (a break would raise), a new graph
    only for a new bucket, the same loss and gradients as eager, checkpoint names unchanged."""
    from torch._dynamo.testing import CompileCounter

    torch._dynamo.reset()
    clip_dir, t5_dir = tiny_models
    args = ReadConfig(output_dir=str(tmp_path / "o"), model_name_or_path=clip_dir, decoder_name_or_path=t5_dir,
                      decoder_dropout=False, padding_bucket=8, length_groups=1, report_to="none", use_cpu=True)
    eager = ReadModel.from_config(args).train()
    trainer = ReadTrainer(model=eager, args=args, train_dataset=_random_length_rows(4, 0))
    batches = [trainer.data_collator(_random_length_rows(4, seed)) for seed in (3, 11, 12, 13)]
    widths = [b["input_ids"].shape[1] for b in batches]
    assert len(set(widths)) >= 2, widths
    compiled = ReadModel.from_config(args).train()
    compiled.load_state_dict(eager.state_dict())
    names = list(compiled.state_dict())
    counter = CompileCounter()
    compiled.compile_towers(example_batch=dict(batches[0]), backend=counter)
    seen = set()
    for batch in batches:
        results = []
        for model in (eager, compiled):
            model.zero_grad(set_to_none=True)
            loss = trainer.compute_loss(model, dict(batch))
            loss.backward()
            grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
            results.append((loss.detach(), grads))
        (l0, g0), (l1, g1) = results
        torch.testing.assert_close(l1, l0, atol=1e-5, rtol=0)
        for name in g0:
            torch.testing.assert_close(g1[name], g0[name], atol=1e-5, rtol=0, msg=lambda m: f"{name}: {m}")
        seen.add((batch["input_ids"].shape[1], batch["decoder_labels"].shape[1]))
        # Three compiled regions (text tower, vision tower, decoder), each once per bucket; vision once.
        assert counter.frame_count <= 2 * len(seen) + 1
    assert list(compiled.state_dict()) == names
    torch._dynamo.reset()
