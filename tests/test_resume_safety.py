"""Resume continues exactly the run it names, or refuses in one line naming why."""

import logging
import os
import shutil

import pytest
import torch
from conftest import load_recipe, make_rows
from transformers import CLIPModel

from read_trainer.cli import parse_args_with_config, run_read_argument_types
from read_trainer.config import ReadConfig
from read_trainer.run_record import RUN_RECORD_NAME, ResumeError, read_json
from read_trainer.trainer import ReadTrainer


def _options(tiny_models, out, **kw):
    clip_dir, t5_dir = tiny_models
    options = dict(output_dir=str(out), model_name_or_path=clip_dir, decoder_name_or_path=t5_dir,
                   per_device_train_batch_size=4, max_steps=2, learning_rate=1e-3, warmup_steps=0,
                   report_to="none", use_cpu=True, save_strategy="steps", save_steps=1, logging_steps=1,
                   dataloader_num_workers=0)
    options.update(kw)
    return options


@pytest.fixture(scope="module")
def finished_run(tiny_models, tmp_path_factory):
    """A 2-step run with checkpoint-1 and checkpoint-2 (each test resumes a copy)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    ReadTrainer(args=ReadConfig(**_options(tiny_models, out)), train_dataset=make_rows(8, paraphrases=True)).train()
    return out


@pytest.fixture
def run_copy(finished_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished_run, out, ignore=shutil.ignore_patterns(".read_trainer.lock"))
    return out


def _trainer(tiny_models, out, rows=8, **kw):
    return ReadTrainer(args=ReadConfig(**_options(tiny_models, out, **kw)),
                       train_dataset=make_rows(rows, paraphrases=True))


def test_checkpoint_records_what_it_was_trained_with(tiny_models, run_copy):
    record = read_json(str(run_copy / "checkpoint-2" / RUN_RECORD_NAME))
    assert record["model_name_or_path"] == tiny_models[0] and record["decoder_name_or_path"] == tiny_models[1]
    assert record["num_hard_negatives"] == 3 and record["reconstruction_weight"] == 0.1
    assert record["alignment_weight"] == 0.5 and record["use_peft"] is False and record["lora_r"] is None
    assert len(record["base_weights_hash"]) == 32 and len(record["data_fingerprint"]) == 32


def test_true_from_the_command_line_takes_the_newest_complete_checkpoint_and_says_so(tiny_models, run_copy, caplog):
    # A checkpoint-3 whose save was cut short (no trainer_state.json) must be passed over.
    shutil.copytree(run_copy / "checkpoint-2", run_copy / "checkpoint-3")
    os.remove(run_copy / "checkpoint-3" / "trainer_state.json")
    clip_dir, t5_dir = tiny_models
    (_, config, _) = parse_args_with_config(run_read_argument_types(), [
        "--output_dir", str(run_copy), "--model_name_or_path", clip_dir, "--decoder_name_or_path", t5_dir,
        "--per_device_train_batch_size", "4", "--max_steps", "3", "--learning_rate", "1e-3", "--warmup_steps", "0",
        "--report_to", "none", "--use_cpu", "true", "--save_steps", "1", "--logging_steps", "1",
        "--dataloader_num_workers", "0",
        "--resume_from_checkpoint", "True"])
    trainer = ReadTrainer(args=config, train_dataset=make_rows(8, paraphrases=True))
    caplog.set_level(logging.WARNING)
    trainer.train(resume_from_checkpoint=config.resume_from_checkpoint)
    assert f"skipping incomplete checkpoint {run_copy / 'checkpoint-3'}" in caplog.text
    assert f"resuming from {run_copy / 'checkpoint-2'}" in caplog.text
    assert "is the end of a finished run (step 2 of 2)" in caplog.text
    assert "with max_steps 3 (it was trained with 2)" in caplog.text  # a longer run is a resume, said once
    # Resumed at step 2: the history of steps 1-2 carried on, one more step trained.
    assert trainer.state.global_step == 3
    assert [e["step"] for e in trainer.state.log_history if "loss" in e] == [1, 2, 3]


@pytest.mark.parametrize("change, option", [
    ({"num_hard_negatives": 2}, "num_hard_negatives was 3 there, 2 now"),
    ({"reconstruction_weight": 0.0}, "reconstruction_weight was 0.1 there, 0.0 now"),
    ({"alignment_weight": 0.25}, "alignment_weight was 0.5 there, 0.25 now"),
    ({"use_peft": True, "lora_r": 4}, "use_peft was False there, True now"),
    ({"rows": 12}, "the training data differ"),
    ({"learning_rate": 2e-3}, "learning_rate was 0.001 there, 0.002 now"),
    ({"seed": 7}, "seed was 2025 there, 7 now"),
    ({"paraphrase_sampling": "image_pool"}, "paraphrase_sampling was 'caption' there, 'image_pool' now"),
])
def test_resume_of_a_run_trained_differently_is_refused_naming_the_option(tiny_models, run_copy, change, option):
    change = dict(change)
    rows = change.pop("rows", 8)
    trainer = _trainer(tiny_models, run_copy, rows=rows, max_steps=3, **change)
    with pytest.raises(ResumeError) as error:
        trainer.train(resume_from_checkpoint="last")
    message = str(error.value)
    assert option in message and "--resume_ignore_mismatch" in message and "\n" not in message, message
    assert trainer.state.global_step == 0


def test_mismatch_can_be_overridden(tiny_models, run_copy):
    trainer = _trainer(tiny_models, run_copy, rows=12, max_steps=3, resume_ignore_mismatch=True)
    trainer.train(resume_from_checkpoint="last")
    assert trainer.state.global_step == 3


def test_lora_resume_onto_other_base_weights_is_refused_even_when_overriding(tiny_models, tmp_path):
    base = tmp_path / "base"
    shutil.copytree(tiny_models[0], base)
    lora = dict(use_peft=True, lora_r=4, lora_dropout=0.0, max_steps=1)
    first = _trainer(tiny_models, tmp_path / "run", model_name_or_path=str(base), **lora)
    first.train()
    lora_off = _trainer(tiny_models, tmp_path / "run", model_name_or_path=str(base), max_steps=2)
    with pytest.raises(ResumeError, match="use_peft was True there, False now"):
        lora_off.train(resume_from_checkpoint="last")
    # Same path, same shapes, other weights (a base replaced in place, or a re-download of another revision).
    other = CLIPModel.from_pretrained(base)
    with torch.no_grad():
        other.text_projection.weight.mul_(1.5)
    other.save_pretrained(base)
    trainer = _trainer(tiny_models, tmp_path / "run", model_name_or_path=str(base), resume_ignore_mismatch=True,
                       **dict(lora, max_steps=2))
    with pytest.raises(ResumeError, match="LoRA adapters trained on other base weights"):
        trainer.train(resume_from_checkpoint=str(tmp_path / "run" / "checkpoint-1"))


def test_leaving_off_the_model_on_resume_is_refused_before_loading_anything(tiny_models, run_copy):
    run_read = load_recipe("run_read")
    with pytest.raises(ResumeError) as error:
        run_read.main(["--output_dir", str(run_copy), "--decoder_name_or_path", tiny_models[1],
                       "--dataset_name", "unused", "--resume_from_checkpoint", "last", "--use_cpu", "true",
                       "--report_to", "none"])
    message = str(error.value)
    assert f"model_name_or_path was {tiny_models[0]!r} there, 'openai/clip-vit-base-patch32' now" in message
    assert "left off" in message and f"--model_name_or_path {tiny_models[0]}" in message


def test_missing_optimizer_state_is_an_error_unless_weights_only(tiny_models, run_copy):
    os.remove(run_copy / "checkpoint-2" / "optimizer.pt")
    trainer = _trainer(tiny_models, run_copy, max_steps=3)
    with pytest.raises(ResumeError, match=r"checkpoint-2 has no optimizer\.pt.*--resume_weights_only"):
        trainer.train(resume_from_checkpoint=str(run_copy / "checkpoint-2"))
    trainer = _trainer(tiny_models, run_copy, max_steps=3, resume_weights_only=True)
    trainer.train(resume_from_checkpoint=str(run_copy / "checkpoint-2"))
    assert trainer.state.global_step == 3


def test_cut_trainer_state_names_the_file(tiny_models, run_copy):
    state = run_copy / "checkpoint-2" / "trainer_state.json"
    state.write_text(state.read_text()[:40])
    trainer = _trainer(tiny_models, run_copy, max_steps=3)
    with pytest.raises(ResumeError, match=rf"{state} is not valid JSON"):
        trainer.train(resume_from_checkpoint=str(run_copy / "checkpoint-2"))
