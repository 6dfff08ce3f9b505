"""Two processes train exactly like one process on the combined batch.

A real 2-process CPU run (gloo, ``torchrun --nproc_per_node 2`` in a subprocess; note
``accelerate launch --cpu --num_processes 2`` would silently start one process) trains
the tiny models for two steps with ``ReadTrainer``; the same trainer in this process
trains on the combined batches. Compared, within 1e-5: every process's L_con and L_align
(global-batch losses), the logged per-component metrics and total loss, the gradients
after DDP's all-reduce, and the parameter update.

What makes the comparison meaningful:

* plain SGD, no clipping, constant learning rate: the update is ``-lr * grad``, so a wrong
  gradient scale shows (Adam's first step would hide it, clipping could too);
* reconstruction targets of different lengths, so the processes hold different numbers
  of T5 label tokens (asserted): averaging per-process token means would be wrong;
* determinism: the frozen decoder in eval mode (``decoder_dropout=False``) and CLIP has
  no dropout, so no RNG stream has to match; the collator's sampling is seeded by
  (seed, epoch, row_id), identical whichever process collates a row;
* batches: a sequential sampler and 12 rows = 2 steps × 2 processes × 3 rows, so every
  process gets full batches (no ``even_batches`` padding, nothing dropped), and step s of
  the single process sees rows [6s, 6s+6) = process 0's rows then process 1's, the order
  in which the gather concatenates them;
* the 2-process run also uses gradient checkpointing (the single process does not):
  recomputation must not change the update either.

The same launch trains a third time with ``embedding_chunk_size`` (each process's batch in
chunks, checkpointed): again equal to the single process on the combined batch.

The same launch also checks ``gather_across_processes=False`` (each process's losses are
its own batch's) and ``gather_with_grad`` with different row counts per process. A second
test shards a ReadModel with FSDP2 (CPU, gloo) for the checkpoint/export/resume pieces.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import torch
from conftest import make_rows
from transformers import TrainerCallback

from read_trainer.config import ReadConfig
from read_trainer.trainer import ReadTrainer

WORLD, PER_PROCESS, STEPS = 2, 3, 2
COMPONENTS = ("contrastive", "reconstruction", "alignment")
TOL = 1e-5


def _config(tiny_models, output_dir: str, batch_size: int, **overrides) -> ReadConfig:
    clip_dir, t5_dir = tiny_models
    options = dict(
        output_dir=output_dir, model_name_or_path=clip_dir, decoder_name_or_path=t5_dir,
        per_device_train_batch_size=batch_size, max_steps=STEPS, train_sampling_strategy="sequential",
        optim="sgd", learning_rate=0.5, lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0,
        max_grad_norm=0.0, decoder_dropout=False, logging_steps=1, save_strategy="no", report_to="none",
        use_cpu=True, dataloader_num_workers=0, disable_tqdm=True,
    )
    options.update(overrides)
    return ReadConfig(**options)


class _Recorder(ReadTrainer):
    """ReadTrainer that records what each step computed (values only; training is untouched)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.record = {"steps": [], "grads": [], "one_shot_steps": 0}

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        self.record["one_shot_steps"] += 1
        tokens = int((inputs["decoder_labels"] != -100).sum())
        total = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        step = {name: self._metrics["train"][f"loss/{name}"][-1].item() for name in COMPONENTS}
        step.update(total=total.item(), label_tokens=tokens)
        self.record["steps"].append(step)
        return total


    def training_step(self, model, inputs, num_items_in_batch=None):
        if not self.args.embedding_chunk_size:  # compute_loss records the one-shot step
            return super().training_step(model, inputs, num_items_in_batch)
        tokens = int((inputs["decoder_labels"] != -100).sum())
        loss = super().training_step(model, inputs, num_items_in_batch)
        step = {name: self._metrics["train"][f"loss/{name}"][-1].item() for name in COMPONENTS}
        step.update(total=loss.item(), label_tokens=tokens)
        self.record["steps"].append(step)
        return loss


class _GradRecorder(TrainerCallback):
    """Gradients as the optimizer will see them (after DDP's all-reduce)."""

    trainer = None

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        self.trainer.record["grads"].append(
            {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
        )


def train_and_record(config: ReadConfig, rows: list[dict]) -> dict:
    """Train with ``config`` on ``rows``; return per-step values, gradients, update and logs."""
    grads = _GradRecorder()
    trainer = _Recorder(args=config, train_dataset=rows, callbacks=[grads])
    grads.trainer = trainer
    model = trainer.model
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    trainer.train()
    update = {n: p.detach() - before[n] for n, p in model.named_parameters() if p.requires_grad}
    logs = [{k: v for k, v in entry.items() if k.startswith("loss")} for entry in trainer.state.log_history
            if "loss" in entry]
    return dict(trainer.record, update=update, logs=logs,
                checkpointing=bool(model.clip.text_model.encoder.gradient_checkpointing),
                world=trainer.accelerator.num_processes)


def _rows():
    return make_rows(WORLD * PER_PROCESS * STEPS, paraphrases=True)


def test_two_processes_equal_one_process_on_the_combined_batch(tiny_models, tmp_path):
    _torchrun("ddp", tiny_models, tmp_path)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    assert all(r["world"] == WORLD and r["checkpointing"] for r in ranks)  # really 2 processes, really checkpointed

    single = train_and_record(_config(tiny_models, str(tmp_path / "single"), WORLD * PER_PROCESS), _rows())
    assert single["world"] == 1 and len(single["steps"]) == STEPS
    _assert_processes_equal_single(ranks, single)
    # The same 2-process run with each process's batch in chunks (embedding_chunk_size=2: chunks
    # of 2 and 1 rows, gradient checkpointing, DDP's all-reduce only after the last chunk).
    _assert_processes_equal_single([r["chunked"] for r in ranks], single)
    assert all(r["chunked"]["world"] == WORLD and r["chunked"]["checkpointing"] for r in ranks)
    assert all(r["chunked"]["one_shot_steps"] == 0 and len(r["chunked"]["steps"]) == STEPS for r in ranks)
    # Chunks of 2 and 1 rows: only the second chunk's backward all-reduces, in each step.
    assert all(len(r["chunked"]["no_sync"]) == STEPS for r in ranks)
    _assert_ungathered_and_uneven(ranks, tiny_models, tmp_path)


def _assert_processes_equal_single(ranks: list[dict], single: dict) -> None:
    for step in range(STEPS):
        expected = single["steps"][step]
        seen = [r["steps"][step] for r in ranks]
        for name in COMPONENTS:  # each process holds the global value, not its own batch's
            for rank, values in enumerate(seen):
                assert abs(values[name] - expected[name]) < TOL, (step, rank, name, values[name], expected[name])
        # Per-process totals differ (each carries its own share of the reconstruction
        # loss); their mean, which Trainer logs and DDP's averaged gradient follows, does not.
        assert abs(sum(v["total"] for v in seen) / WORLD - expected["total"]) < TOL
        assert sum(v["label_tokens"] for v in seen) == expected["label_tokens"]
    # The reconstruction normalisation is exercised: token counts differ between processes.
    assert any(len({r["steps"][s]["label_tokens"] for r in ranks}) > 1 for s in range(STEPS))

    # Logged metrics (reduced across processes in ReadTrainer.log) match the single process.
    logged = ranks[0]["logs"]
    assert len(logged) == len(single["logs"]) == STEPS
    for ours, reference in zip(logged, single["logs"]):
        assert set(ours) == set(reference) == {"loss", *(f"loss/{n}" for n in COMPONENTS)}
        for key in reference:
            assert abs(ours[key] - reference[key]) < TOL, (key, ours[key], reference[key])

    # Gradients after DDP's all-reduce, then the parameter update, match.
    for rank in ranks:
        for step in range(STEPS):
            assert rank["grads"][step].keys() == single["grads"][step].keys()
            for name, reference in single["grads"][step].items():
                torch.testing.assert_close(rank["grads"][step][name], reference, atol=TOL, rtol=0,
                                           msg=lambda m: f"grad of {name} at step {step}: {m}")
        assert rank["update"].keys() == single["update"].keys()
        for name, reference in single["update"].items():
            torch.testing.assert_close(rank["update"][name], reference, atol=TOL, rtol=0,
                                       msg=lambda m: f"update of {name}: {m}")
    # The update is large against the tolerance, so the comparison can fail.
    assert max(u.abs().max().item() for u in single["update"].values()) > 1e3 * TOL
    assert single["update"]["text_to_decoder.weight"].abs().max() > 1e2 * TOL



def _assert_ungathered_and_uneven(ranks: list[dict], tiny_models, tmp_path) -> None:
    # gather_across_processes=False: each process's losses are those of its own batch.
    local = _Recorder(args=_config(tiny_models, str(tmp_path / "local"), PER_PROCESS), train_dataset=_rows())
    rows = _rows()
    for rank in range(WORLD):
        batch = local.data_collator(rows[rank * PER_PROCESS: (rank + 1) * PER_PROCESS])
        with torch.no_grad():
            local.compute_loss(local.model, batch)
        for name in COMPONENTS:
            assert abs(ranks[rank]["ungathered"][name] - local.record["steps"][-1][name]) < TOL, (rank, name)
    assert abs(ranks[0]["ungathered"]["contrastive"] - ranks[1]["ungathered"]["contrastive"]) > 1e3 * TOL

    # Uneven row counts across processes: rank order, padding dropped, gradients summed.
    for rank in ranks:
        assert rank["uneven"]["a"][:, 0].tolist() == [0.0, 10.0, 11.0]
        assert rank["uneven"]["b"][:, 0].tolist() == [0.0, 1.0, 10.0]
    weights = torch.arange(1.0, 7.0).view(3, 2)
    torch.testing.assert_close(ranks[0]["uneven"]["grad_a"], WORLD * weights[:1])
    torch.testing.assert_close(ranks[1]["uneven"]["grad_a"], WORLD * weights[1:])
    torch.testing.assert_close(ranks[0]["uneven"]["grad_b"], -WORLD * weights[:2])
    torch.testing.assert_close(ranks[1]["uneven"]["grad_b"], -WORLD * weights[2:])


def _uneven_gather(rank: int) -> dict:
    """gather_with_grad with different row counts per process (an uneven last batch).

    Process r holds ``a`` with r+1 rows and ``b`` with 2-r rows (values 10·r + row). Every
    process computes the same loss, sum(weights · gathered); the gradient each process
    gets for its own rows must be world × the weights at those rows (summed over the
    processes' identical losses), which DDP's averaging turns back into the weights.
    """
    from read_trainer import losses

    a = (10.0 * rank + torch.arange(rank + 1.0)).unsqueeze(1).repeat(1, 2).requires_grad_()
    b = (10.0 * rank + torch.arange(2.0 - rank)).unsqueeze(1).repeat(1, 2).requires_grad_()
    all_a, all_b = losses.gather_with_grad([a, b])
    weights_a = torch.arange(1.0, 1.0 + 2 * all_a.shape[0]).view(-1, 2)
    weights_b = -torch.arange(1.0, 1.0 + 2 * all_b.shape[0]).view(-1, 2)
    ((weights_a * all_a).sum() + (weights_b * all_b).sum()).backward()
    return {"a": all_a.detach(), "b": all_b.detach(), "grad_a": a.grad, "grad_b": b.grad}


def _worker(clip_dir: str, t5_dir: str, out: str) -> None:
    """Entry point of each torchrun process: train on its share, save what it saw."""
    config = _config((clip_dir, t5_dir), os.path.join(out, "ddp"), PER_PROCESS, activation_checkpointing=True)
    record = train_and_record(config, _rows())
    off = _config((clip_dir, t5_dir), os.path.join(out, "off"), PER_PROCESS, gather_across_processes=False,
                  max_steps=1)
    record["ungathered"] = train_and_record(off, _rows())["steps"][0]
    chunked = _config((clip_dir, t5_dir), os.path.join(out, "chunked"), PER_PROCESS, activation_checkpointing=True,
                      embedding_chunk_size=2)
    with _counting_no_sync() as entered:
        record["chunked"] = train_and_record(chunked, _rows())
    record["chunked"]["no_sync"] = entered
    record["uneven"] = _uneven_gather(config.process_index)
    torch.save(record, os.path.join(out, f"rank{config.process_index}.pt"))
    print(json.dumps({"rank": config.process_index, "steps": record["steps"]}))


@contextmanager
def _counting_no_sync():
    """Counts how often DDP's ``no_sync`` is entered (once per chunk but the last)."""
    from torch.nn.parallel import DistributedDataParallel

    entered, original = [], DistributedDataParallel.no_sync

    def counting(self):
        entered.append(1)
        return original(self)

    DistributedDataParallel.no_sync = counting
    try:
        yield entered
    finally:
        DistributedDataParallel.no_sync = original


def _torchrun(mode: str, tiny_models, out: Path) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parents[1]),
                                                         os.environ.get("PYTHONPATH", "")]))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(WORLD),
               __file__, mode, *tiny_models, str(out)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]


def test_fsdp2_checkpoint_pieces_on_sharded_parameters(tiny_models, tmp_path):
    """What ReadTrainer does with an FSDP2-sharded ReadModel (parameters are DTensors).

    Accelerate runs FSDP only on GPUs, so this shards with ``fully_shard`` (gloo, CPU) as the
    fsdp.yaml launch config does (CLIPEncoderLayer and T5Block units, then the root) and
    checks the pieces: the checkpoint head assembled from shards, resume into the shards
    (``load_checkpoint_sharded``), and the export from the full state dict that Trainer
    hands ``_save`` under FULL_STATE_DICT.
    """
    _torchrun("fsdp", tiny_models, tmp_path)
    result = torch.load(tmp_path / "fsdp.pt")
    assert result["sharded"] and result["head_equal"] and result["trained_step"] == []
    assert result["checked"] > 0 and result["mismatched"] == []
    assert result["exported"] > 0 and result["mismatched_export"] == []


def _fsdp_worker(clip_dir: str, t5_dir: str, out: str) -> None:
    import torch.distributed as dist
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
    from torch.distributed.fsdp import fully_shard
    from transformers import CLIPModel

    from read_trainer.checkpoint import (
        HEAD_WEIGHTS_NAME,
        clip_state_dict,
        full_tensor,
        is_sharded,
        load_checkpoint_sharded,
        shardable_logit_scale,
    )
    from read_trainer.modeling import ReadModel

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.manual_seed(0)
    trained = ReadModel.from_pretrained(clip_dir, t5_dir)
    with torch.no_grad():  # stands for training: every trainable weight moves (seeded: same on both ranks)
        for param in trained.parameters():
            if param.requires_grad:
                param.add_(0.01 * torch.randn_like(param))
    folder = os.path.join(out, "checkpoint-1")
    if rank == 0:
        trained.export_clip().save_pretrained(folder)
        trained.save_head(os.path.join(folder, HEAD_WEIGHTS_NAME))
    dist.barrier()

    torch.manual_seed(1)  # a different projection than the checkpoint's: loading must replace it
    model = ReadModel.from_pretrained(clip_dir, t5_dir, decoder_dtype=torch.bfloat16)  # as under bf16
    shardable_logit_scale(model)  # what ReadTrainer does under FSDP: FSDP cannot shard 0-dim parameters
    for module in model.modules():
        if type(module).__name__ in ("CLIPEncoderLayer", "T5Block"):
            fully_shard(module)
    fully_shard(model)
    sharded = is_sharded(model)
    load_checkpoint_sharded(model, folder)
    # One forward/backward through the shards (bf16 frozen decoder beside fp32 CLIP).
    output = model(pixel_values=torch.randn(2, 3, 32, 32), input_ids=torch.randint(1, 100, (4, 6)),
                   attention_mask=torch.ones(4, 6, dtype=torch.long), decoder_labels=torch.randint(2, 50, (2, 5)))
    (output.reconstruction_loss + output.anchors.sum() + output.paraphrases.sum() + output.image_embeds.sum()
     + output.logit_scale.sum()).backward()
    trained_step = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    head = {k: full_tensor(v) for k, v in model.head_state_dict().items()}  # collective, as in _save_checkpoint
    full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if rank == 0:
        expected = {k: v for k, v in trained.state_dict().items() if not k.startswith(("decoder.", "lm_head."))}
        expected["clip.logit_scale"] = expected["clip.logit_scale"].reshape(1)
        mismatched = [k for k in expected if not torch.equal(full[k], expected[k])]
        clip_state = clip_state_dict(full)  # what _save writes from the full state dict
        model.export_clip().save_pretrained(os.path.join(out, "export"), state_dict=clip_state)
        exported = CLIPModel.from_pretrained(os.path.join(out, "export")).state_dict()
        reference = trained.export_clip().state_dict()
        mismatched_export = [k for k in reference if not torch.equal(exported[k], reference[k])]
        torch.save({"sharded": sharded, "trained_step": trained_step, "checked": len(expected), "mismatched": mismatched,
                    "exported": len(reference), "mismatched_export": mismatched_export,
                    "head_equal": torch.equal(head["text_to_decoder.weight"], trained.text_to_decoder.weight)},
                   os.path.join(out, "fsdp.pt"))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    {"ddp": _worker, "fsdp": _fsdp_worker}[sys.argv[1]](*sys.argv[2:5])
