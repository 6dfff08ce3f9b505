"""A diverged run stops (or skips the update) and nothing non-finite is ever saved or published."""

from pathlib import Path

import datasets
import pytest
import torch
from conftest import load_recipe, make_rows
from huggingface_hub import HfApi
from safetensors.torch import load_file
from transformers import CLIPModel, CLIPProcessor, TrainerCallback

from read_trainer.config import ReadConfig
from read_trainer.data.collator import ReadCollator
from read_trainer.nonfinite import NonFiniteError
from read_trainer.trainer import ReadTrainer


def _args(tiny_models, tmp_path, **kw):
    clip_dir, t5_dir = tiny_models
    options = dict(output_dir=str(tmp_path / "out"), model_name_or_path=clip_dir, decoder_name_or_path=t5_dir,
                   per_device_train_batch_size=4, max_steps=5, learning_rate=1e-3, warmup_steps=0,
                   report_to="none", use_cpu=True, save_strategy="no", logging_steps=1, dataloader_num_workers=0)
    options.update(kw)
    return ReadConfig(**options)


class PoisonedCollator(ReadCollator):
    """A ReadCollator whose ``bad_batch``-th batch (1-based) carries one NaN image; records every batch's rows."""

    bad_batch: int = 3
    produced: list = None

    def __call__(self, rows):
        batch = super().__call__(rows)
        self.produced = (self.produced or []) + [list(batch["row_ids"])]
        if len(self.produced) == self.bad_batch:
            batch["pixel_values"][0] = float("nan")
        return batch


def _trainer(tiny_models, tmp_path, callbacks=(), **kw):
    args = _args(tiny_models, tmp_path, **kw)
    processor = CLIPProcessor.from_pretrained(args.model_name_or_path)
    from transformers import AutoTokenizer

    collator = PoisonedCollator(processor=processor, decoder_tokenizer=AutoTokenizer.from_pretrained(tiny_models[1]),
                                num_hard_negatives=args.num_hard_negatives, use_paraphrases=True, seed=args.seed)
    return ReadTrainer(args=args, train_dataset=make_rows(16, paraphrases=True), data_collator=collator,
                       processing_class=processor, callbacks=list(callbacks)), collator


def test_nan_batch_stops_naming_step_losses_and_rows_and_keeps_the_finite_checkpoint(tiny_models, tmp_path):
    trainer, collator = _trainer(tiny_models, tmp_path, save_strategy="steps", save_steps=1, save_total_limit=1)
    with pytest.raises(NonFiniteError) as error:
        trainer.train()
    message = str(error.value)
    poisoned_rows = collator.produced[2]
    assert "optimizer step 3" in message and "contrastive=nan" in message, message
    assert f"rows {poisoned_rows!r}" in message, (message, poisoned_rows)
    assert trainer.state.global_step == 2
    out = Path(trainer.args.output_dir)
    # The run stopped before the NaN update: the kept checkpoint is step 2's and finite; no export exists.
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2"]
    weights = load_file(str(out / "checkpoint-2" / "model.safetensors"))
    assert all(torch.isfinite(t).all() for t in weights.values())
    assert not (out / "model.safetensors").exists()


class Snapshots(TrainerCallback):
    def __init__(self):
        self.weights = {}

    def on_step_end(self, args, state, control, model=None, **kwargs):
        self.weights[state.global_step] = model.clip.text_projection.weight.detach().clone()


def test_skip_drops_the_nan_update_and_counts_it(tiny_models, tmp_path):
    snapshots = Snapshots()
    trainer, collator = _trainer(tiny_models, tmp_path, callbacks=[snapshots], nonfinite="skip")
    trainer.train()
    assert trainer.state.global_step == 5
    w = snapshots.weights
    assert torch.equal(w[3], w[2]), "the NaN step changed the weights"
    assert not torch.equal(w[2], w[1]) and not torch.equal(w[4], w[3]), "finite steps must still train"
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    logs = [entry for entry in trainer.state.log_history if "nonfinite_skipped_steps" in entry]
    assert [entry["nonfinite_skipped_steps"] for entry in logs] == [0, 0, 1, 1, 1]
    trainer.save_model()
    exported = load_file(str(Path(trainer.args.output_dir) / "model.safetensors"))
    assert all(torch.isfinite(t).all() for t in exported.values())


class Diverge(TrainerCallback):
    """Turns one weight NaN right before step ``at``'s checkpoint (as an fp16 optimizer overflow would)."""

    def __init__(self, at):
        self.at = at

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step == self.at:
            with torch.no_grad():
                model.clip.text_projection.weight[0, 0] = float("nan")


def test_non_finite_weights_are_never_saved_nor_rotate_out_a_finite_checkpoint(tiny_models, tmp_path):
    args = _args(tiny_models, tmp_path, save_strategy="steps", save_steps=1, save_total_limit=1, max_steps=4)
    trainer = ReadTrainer(args=args, train_dataset=make_rows(16, paraphrases=True), callbacks=[Diverge(at=3)])
    with pytest.raises(NonFiniteError, match=r"checkpoint-3.*text_projection\.weight"):
        trainer.train()
    out = Path(args.output_dir)
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2"]
    assert all(torch.isfinite(t).all() for t in load_file(str(out / "checkpoint-2" / "model.safetensors")).values())
    # The final export is refused before a single file is written.
    export = tmp_path / "export"
    with pytest.raises(NonFiniteError, match="text_projection.weight"):
        trainer.save_model(str(export))
    assert not export.exists() or not any(export.rglob("*"))


@pytest.fixture
def uploads(monkeypatch):
    calls = []
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: type("R", (), {"repo_id": repo_id})())
    monkeypatch.setattr(HfApi, "upload_folder", lambda self, **kw: calls.append(kw) or "commit")
    return calls


def test_push_recipe_refuses_a_non_finite_folder_before_writing_its_card(tiny_models, tmp_path, uploads):
    folder = tmp_path / "diverged"
    model = CLIPModel.from_pretrained(tiny_models[0])
    with torch.no_grad():
        model.vision_model.post_layernorm.weight[3] = float("inf")
    model.save_pretrained(folder)
    CLIPProcessor.from_pretrained(tiny_models[0]).save_pretrained(folder)
    push = load_recipe("push")
    with pytest.raises(NonFiniteError, match="post_layernorm.weight"):
        push.main(["--folder", str(folder), "--repo_id", "me/read", "--token", "hf_xyz"])
    assert uploads == [] and not (folder / "README.md").exists()


def test_trainer_push_refuses_non_finite_weights(tiny_models, tmp_path, uploads):
    args = _args(tiny_models, tmp_path, push_to_hub=True, hub_model_id="me/read", max_steps=1)
    trainer = ReadTrainer(args=args, train_dataset=make_rows(4, paraphrases=True))
    with torch.no_grad():
        trainer.model.clip.text_projection.weight[1, 1] = float("nan")
    with pytest.raises(NonFiniteError):
        trainer.push_to_hub()
    assert uploads == [] and not (Path(args.output_dir) / "model.safetensors").exists()


def test_diverging_recipe_run_fails_and_exports_nothing(tiny_models, tmp_path, capsys):
    data = tmp_path / "train"
    datasets.Dataset.from_list(make_rows(16, paraphrases=True)).save_to_disk(str(data))
    clip_dir, t5_dir = tiny_models
    out = tmp_path / "run"
    run_read = load_recipe("run_read")
    with pytest.raises(NonFiniteError, match="non-finite"):
        run_read.main(["--model_name_or_path", clip_dir, "--decoder_name_or_path", t5_dir, "--dataset_name", str(data),
                       "--output_dir", str(out), "--per_device_train_batch_size", "4", "--max_steps", "12",
                       "--learning_rate", "1e3", "--warmup_steps", "0", "--report_to", "none", "--use_cpu", "true",
                       "--save_steps", "2", "--save_total_limit", "1", "--dataloader_num_workers", "0"])
    assert "Exported plain CLIPModel" not in capsys.readouterr().out
    assert not (out / "model.safetensors").exists()
    for checkpoint in out.glob("checkpoint-*"):
        assert all(torch.isfinite(t).all() for t in load_file(str(checkpoint / "model.safetensors")).values())
