"""A batch trained in chunks (``embedding_chunk_size``) gets the one-shot batch's update.

Each comparison trains one optimizer step twice from the same weights on the same rows,
once in chunks and once as one batch, with plain SGD, a constant learning rate and no
clipping (the update is ``-lr * grad``, so any wrong gradient scale shows), and compares
the loss, the logged components, every trainable parameter's gradient (``logit_scale``
included) and the update, within 1e-5 in fp32.

The frozen decoder's dropout is on in the main comparison. Its masks are drawn per
chunk in the chunked step and for the whole batch in the one-shot step, so the two
draws differ by construction; ``_DropoutMasks`` records the chunked step's masks and
hands the one-shot step the same masks, row for row (each chunk's masks stacked along
the batch dimension), so both compute the same function and any difference is the
chunking's. The two-process version is in ``test_distributed.py``.
"""

from __future__ import annotations

import pytest
import torch
from conftest import make_rows
from torch.utils._python_dispatch import TorchDispatchMode
from transformers import TrainerCallback, set_seed

from read_trainer.chunking import chunk_inputs
from read_trainer.config import ReadConfig
from read_trainer.device_settings import STEP_SETTINGS
from read_trainer.modeling import ReadModel
from read_trainer.nonfinite import NonFiniteError
from read_trainer.op_count import OpCounter
from read_trainer.trainer import ReadTrainer

TOL = 1e-5
COMPONENTS = ("contrastive", "reconstruction", "alignment")
aten = torch.ops.aten


class _DropoutMasks(TorchDispatchMode):
    """Records every dropout draw (``native_dropout`` masks, the CPU dropout's ``rand`` uniforms, SDPA's
    ``bernoulli_`` noise), or replays given ones."""

    def __init__(self, replay: list[torch.Tensor] | None = None):
        super().__init__()
        self.recorded: list[torch.Tensor] = []
        self.replay = list(replay) if replay is not None else None

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is aten.native_dropout.default:
            x, p = args[0], args[1]
            if self.replay is not None:
                mask = self.replay.pop(0)
                assert mask.shape == x.shape, (mask.shape, x.shape)
                return x * mask * (1.0 / (1.0 - p)), mask
            out, mask = func(*args, **kwargs)
            self.recorded.append(mask.clone())
            return out, mask
        if func is aten.rand.default:  # the lean decoder's dropout draws on the CPU
            if self.replay is not None:
                noise = self.replay.pop(0)
                assert tuple(noise.shape) == tuple(args[0]), (noise.shape, args[0])
                return noise.clone()
            out = func(*args, **kwargs)
            self.recorded.append(out.clone())
            return out
        if func is aten.bernoulli_.float:
            if self.replay is not None:
                noise = self.replay.pop(0)
                assert noise.shape == args[0].shape, (noise.shape, args[0].shape)
                return args[0].copy_(noise)
            out = func(*args, **kwargs)
            self.recorded.append(out.clone())
            return out
        return func(*args, **kwargs)


def one_shot_masks(chunked: list[torch.Tensor], chunks: int) -> list[torch.Tensor]:
    """The chunked step's draws regrouped for one batch: draw j = chunk draws j stacked along rows."""
    assert len(chunked) % chunks == 0, len(chunked)
    per_chunk = len(chunked) // chunks
    return [torch.cat([chunked[c * per_chunk + j] for c in range(chunks)]) for j in range(per_chunk)]


class _Record(TrainerCallback):
    """The gradients the optimizer is about to apply."""

    def __init__(self):
        self.grads = []

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        self.grads.append({n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None})


def _config(tiny_models, output_dir, batch_size, **overrides) -> ReadConfig:
    clip_dir, t5_dir = tiny_models
    options = dict(
        output_dir=str(output_dir), model_name_or_path=clip_dir, decoder_name_or_path=t5_dir,
        per_device_train_batch_size=batch_size, max_steps=1, train_sampling_strategy="sequential",
        optim="sgd", learning_rate=0.5, lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0,
        max_grad_norm=0.0, decoder_dropout=True, logging_steps=1, save_strategy="no", report_to="none",
        use_cpu=True, dataloader_num_workers=0, disable_tqdm=True,
        # One pass per chunk in the collator's shapes, so each dropout draw of the one-shot step is
        # the chunks' draws stacked (length groups would cut every chunk differently).
        **STEP_SETTINGS["gpu"],
    )
    options.update(overrides)
    return ReadConfig(**options)


def _train(config: ReadConfig, rows, mode: TorchDispatchMode | None = None, dtype=torch.float32) -> dict:
    record = _Record()
    set_seed(config.seed)  # as ReadTrainer does before building the model itself
    model = ReadModel.from_config(config).to(dtype)
    trainer = ReadTrainer(model=model, args=config, train_dataset=rows, callbacks=[record])
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    if mode is None:
        trainer.train()
    else:
        with mode:
            trainer.train()
    logs = [e for e in trainer.state.log_history if "loss" in e]
    return {"grads": record.grads[0], "logs": logs[0],
            "update": {n: p.detach() - before[n] for n, p in model.named_parameters() if p.requires_grad}}


def _assert_same_step(chunked: dict, one_shot: dict, components=COMPONENTS, tol: float = TOL) -> None:
    assert set(chunked["logs"]) >= {"loss", *(f"loss/{n}" for n in components)}
    for key in ("loss", "logit_scale", *(f"loss/{n}" for n in components)):
        # Logged values are rounded to 6 decimals (ReadTrainer.log), so they are held to TOL.
        ours, reference = chunked["logs"][key], one_shot["logs"][key]
        assert abs(ours - reference) < TOL, (key, ours, reference)
    assert chunked["grads"].keys() == one_shot["grads"].keys()
    assert "clip.logit_scale" in one_shot["grads"]
    for kind in ("grads", "update"):
        for name, reference in one_shot[kind].items():
            # Within tol of the tensor's own scale (at least 1), plus 1e-4 of each element in
            # fp32: sums over a batch of 256 round at that size whatever the chunking (the
            # one-shot fp32 gradient is itself ~6e-5 from float64). Exactness is the float64
            # test below, to 1e-10 with no relative slack.
            atol = tol * max(1.0, reference.abs().max().item())
            rtol = 1e-4 if reference.dtype == torch.float32 else 0.0
            torch.testing.assert_close(chunked[kind][name], reference, atol=atol, rtol=rtol,
                                       msg=lambda m: f"{kind} of {name}: {m}")
    # Large against the tolerance, so the comparison can fail.
    assert max(u.abs().max().item() for u in one_shot["update"].values()) > 1e3 * tol


def test_256_rows_in_4_chunks_of_64_train_like_one_batch_of_256(tiny_models, tmp_path):
    """The must-have: reconstruction with decoder dropout on, alignment on, K = 3, fp32."""
    chunked, one_shot, draws = _chunked_and_one_shot(tiny_models, tmp_path, make_rows(256, paraphrases=True), 64)
    assert draws and any(bool((m == 0).any()) for m in draws)  # dropout really drops
    _assert_same_step(chunked, one_shot)


def _chunked_and_one_shot(tiny_models, tmp_path, rows, chunk_size, dtype=torch.float32, **options):
    recorder = _DropoutMasks()
    chunked = _train(_config(tiny_models, tmp_path / "chunked", len(rows), embedding_chunk_size=chunk_size, **options),
                     rows, recorder, dtype)
    replay = _DropoutMasks(one_shot_masks(recorder.recorded, -(-len(rows) // chunk_size)))
    one_shot = _train(_config(tiny_models, tmp_path / "one", len(rows), **options), rows, replay, dtype)
    assert replay.replay == []  # every draw of the one-shot step was one of the chunked step's
    return chunked, one_shot, recorder.recorded


def test_chunked_step_is_exact_in_float64(tiny_models, tmp_path):
    """The same comparison in float64: equal to rounding (1e-10), so what fp32 shows at
    B = 256 is summation order. (There the one-shot fp32 gradient of the token embedding is
    itself 5.9e-5 from the float64 one, the chunked one 1.2e-5.)"""
    chunked, one_shot, _ = _chunked_and_one_shot(tiny_models, tmp_path, make_rows(64, paraphrases=True), 16,
                                                 torch.float64)
    _assert_same_step(chunked, one_shot, tol=1e-10)


def test_uneven_last_chunk_alignment_variants_and_no_negatives(tiny_models, tmp_path):
    """A last chunk shorter than the others; symmetric alignment with negatives as columns; K = 0."""
    rows = make_rows(10, paraphrases=True)
    for name, options in {"variants": dict(alignment_symmetric=True, alignment_include_negatives=True),
                          "no-negatives": dict(num_hard_negatives=0, reconstruction_target="anchor")}.items():
        base = dict(decoder_dropout=False, **options)
        chunked = _train(_config(tiny_models, tmp_path / f"{name}-c", 10, embedding_chunk_size=4, **base), rows)
        one_shot = _train(_config(tiny_models, tmp_path / f"{name}-o", 10, **base), rows)
        _assert_same_step(chunked, one_shot)


def test_lora_tower_dropout_is_replayed(tiny_models, tmp_path):
    """LoRA adapters with dropout on both towers: the grad pass of each chunk reproduces its
    cached embeddings exactly (each chunk's saved random state is restored before it is
    encoded again), and every adapter gets a gradient."""
    rows = make_rows(8, paraphrases=True)
    config = _config(tiny_models, tmp_path / "lora", 8, embedding_chunk_size=4, use_peft=True, lora_r=4,
                     lora_alpha=8, lora_dropout=0.5, decoder_dropout=False, num_hard_negatives=1)
    trainer = ReadTrainer(args=config, train_dataset=rows)
    model = trainer.model.train()
    torch.manual_seed(0)
    with torch.no_grad():  # LoRA's B starts at zero, which would hide its dropout: as if trained a while
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.5)
    seen = []
    forward = model.forward

    def recording_forward(**inputs):
        out = forward(**inputs)
        seen.append((torch.is_grad_enabled(), [None if t is None else t.detach().clone() for t in
                                               (out.image_embeds, out.anchors, out.negatives, out.paraphrases)]))
        return out

    batch = trainer.data_collator(rows)
    with torch.no_grad():  # dropout is active: the same chunk encoded twice differs
        first, second = (forward(**chunk_inputs({k: v for k, v in batch.items() if not k.startswith("decoder")
                                                 and k != "row_ids"}, 0, 4)).anchors for _ in range(2))
    assert not torch.equal(first, second)

    model.forward = recording_forward
    trainer.training_step(model, dict(batch))
    assert [grad for grad, _ in seen] == [False, False, True, True]
    for cached, recomputed in ((seen[0], seen[2]), (seen[1], seen[3])):
        for a, b in zip(cached[1], recomputed[1]):
            assert torch.equal(a, b)
    lora = [n for n, p in model.named_parameters() if "lora_" in n and p.grad is not None]
    assert lora and all(model.get_parameter(n).grad.abs().sum() > 0 for n in lora)


def test_bf16_and_gradient_checkpointing_compose(tiny_models, tmp_path):
    """bf16 autocast and checkpointed towers: the chunked step follows the one-shot one (bf16's
    rounding differs with the batch shape, hence the looser tolerance)."""
    rows = make_rows(8, paraphrases=True)
    base = dict(bf16=True, activation_checkpointing=True, decoder_dropout=False)
    chunked = _train(_config(tiny_models, tmp_path / "c", 8, embedding_chunk_size=4, **base), rows)
    one_shot = _train(_config(tiny_models, tmp_path / "o", 8, **base), rows)
    for key in ("loss", *(f"loss/{n}" for n in COMPONENTS)):
        assert abs(chunked["logs"][key] - one_shot["logs"][key]) < 2e-2 * max(1.0, abs(one_shot["logs"][key])), key
    for name, reference in one_shot["grads"].items():
        cosine = torch.nn.functional.cosine_similarity(chunked["grads"][name].flatten().float(),
                                                       reference.flatten().float(), dim=0)
        assert cosine > 0.99 or reference.abs().max() < 1e-6, (name, cosine)


def test_nonfinite_guard_names_the_rows_of_a_chunked_batch(tiny_models, tmp_path):
    config = _config(tiny_models, tmp_path / "nan", 4, embedding_chunk_size=2, decoder_dropout=False)
    trainer = ReadTrainer(args=config, train_dataset=make_rows(4, paraphrases=True))
    batch = trainer.data_collator(make_rows(4, paraphrases=True))
    with torch.no_grad():
        trainer.model.clip.logit_scale.fill_(float("nan"))
    trainer.training_step(trainer.model, batch)
    # The guard's verdict comes right before the optimizer step, as in Trainer's loop.
    with pytest.raises(NonFiniteError, match=r"rows \[0, 1, 2, 3\]"):
        trainer.callback_handler.on_pre_optimizer_step(trainer.args, trainer.state, trainer.control)


def test_gradient_accumulation_warns_that_it_is_not_a_larger_batch(tiny_models, tmp_path):
    with pytest.warns(UserWarning, match="embedding_chunk_size"):
        _config(tiny_models, tmp_path, 4, gradient_accumulation_steps=2)
    with pytest.raises(ValueError, match="embedding_chunk_size"):
        _config(tiny_models, tmp_path, 4, embedding_chunk_size=-1)


def test_chunk_inputs_keeps_the_text_layout():
    """Rows [1, 3) of B=4 with K=2 and paraphrases: anchors 1-2, their negatives, their paraphrases."""
    batch, k = 4, 2
    texts = torch.arange(batch * (2 + k)).unsqueeze(1)
    inputs = {"pixel_values": torch.arange(batch).view(batch, 1, 1, 1), "input_ids": texts,
              "attention_mask": texts, "decoder_labels": torch.arange(batch).unsqueeze(1), "num_negatives": k}
    chunk = chunk_inputs(inputs, 1, 3)
    assert chunk["input_ids"].flatten().tolist() == [1, 2, 6, 7, 8, 9, 13, 14]
    assert chunk["pixel_values"].flatten().tolist() == [1, 2] and chunk["decoder_labels"].flatten().tolist() == [1, 2]
    with pytest.raises(ValueError, match="expected 12 or 16"):
        chunk_inputs({**inputs, "input_ids": texts[:13]}, 0, 2)


def test_chunked_step_needs_no_host_sync(tiny_models, tmp_path):
    """Chunk bounds come from shapes and every weight is a device tensor: the step never waits for the device."""
    rows = make_rows(8, paraphrases=True)
    trainer = ReadTrainer(args=_config(tiny_models, tmp_path, 8, embedding_chunk_size=4), train_dataset=rows)
    batch = trainer.data_collator(rows)
    batch.pop("row_ids")
    with OpCounter() as counter:
        trainer._chunked_training_step(trainer.model, batch)
    assert counter.host_syncs == 0, counter.syncs_by_op
    assert all(p.grad is not None for p in trainer.model.parameters() if p.requires_grad)


def test_resumed_chunked_run_continues_exactly(tiny_models, tmp_path):
    """Chunking keeps no state of its own, and its random draws come from the generators
    Trainer checkpoints: 2 steps in one go equal 1 step, a checkpoint, and a resumed step
    (decoder dropout on, so the restored random state matters)."""
    rows = make_rows(8, paraphrases=True)
    options = dict(embedding_chunk_size=2, max_steps=2, save_strategy="steps", save_steps=1)
    straight = ReadTrainer(args=_config(tiny_models, tmp_path / "run", 4, **options), train_dataset=rows)
    straight.train()
    expected = {n: p.detach().clone() for n, p in straight.model.named_parameters() if p.requires_grad}

    resumed = ReadTrainer(args=_config(tiny_models, tmp_path / "run", 4, **options), train_dataset=rows)
    resumed.train(resume_from_checkpoint=str(tmp_path / "run" / "checkpoint-1"))
    assert resumed.state.global_step == 2
    for name, param in resumed.model.named_parameters():
        if param.requires_grad:
            torch.testing.assert_close(param.detach(), expected[name], atol=1e-6, rtol=0, msg=lambda m: f"{name}: {m}")
