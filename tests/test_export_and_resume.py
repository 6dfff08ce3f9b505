"""The exported folder is a plain CLIPModel; a SIGKILLed run, and a run preempted by SIGTERM, resume to the
same weights as an uninterrupted run."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import datasets
import pytest
import torch
from conftest import make_rows
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def saved_dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data") / "train"
    datasets.Dataset.from_list(make_rows(16, paraphrases=True)).save_to_disk(str(folder))
    return str(folder)


def _run_read(tmp_path, args, kill_at_step=None, signal_in_step=None):
    """Run recipes/run_read.py in a fresh process; optionally SIGKILL it right after a checkpoint, or send it
    ``signal_in_step = (step, signal name)`` while it trains that step (as a scheduler's preemption would)."""
    script = tmp_path / "launch.py"
    script.write_text(textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(REPO / 'recipes')!r})
        from transformers import TrainerCallback
        import read_trainer.trainer as trainer_module

        class KillAfterSave(TrainerCallback):
            def on_save(self, args, state, control, **kwargs):
                if state.global_step == {kill_at_step!r}:
                    os.kill(os.getpid(), signal.SIGKILL)

        original_init = trainer_module.ReadTrainer.__init__
        def init(self, *a, **kw):
            kw["callbacks"] = list(kw.get("callbacks") or []) + [KillAfterSave()]
            original_init(self, *a, **kw)
        trainer_module.ReadTrainer.__init__ = init

        signal_in_step = {signal_in_step!r}
        training_step = trainer_module.ReadTrainer.training_step
        def step(self, *a, **kw):
            if signal_in_step and self.state.global_step + 1 == signal_in_step[0]:
                os.kill(os.getpid(), getattr(signal, signal_in_step[1]))
            return training_step(self, *a, **kw)
        trainer_module.ReadTrainer.training_step = step
        import run_read
        run_read.main(sys.argv[1:])
    """))
    env = dict(os.environ, HF_HUB_OFFLINE="1", CUDA_VISIBLE_DEVICES="")
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, env=env, timeout=300)


def _common(tiny_models, dataset, out):
    clip_dir, t5_dir = tiny_models
    return ["--model_name_or_path", clip_dir, "--decoder_name_or_path", t5_dir, "--dataset_name", dataset,
            "--output_dir", str(out), "--per_device_train_batch_size", "4", "--max_steps", "8",
            "--save_steps", "3", "--logging_steps", "1", "--report_to", "none", "--use_cpu", "true",
            "--learning_rate", "1e-3", "--warmup_steps", "2", "--dataloader_num_workers", "0"]


@pytest.fixture(scope="module")
def straight(tiny_models, saved_dataset, tmp_path_factory):
    """The uninterrupted 8-step run both interrupted runs are compared with."""
    tmp_path = tmp_path_factory.mktemp("straight")
    result = _run_read(tmp_path, _common(tiny_models, saved_dataset, tmp_path / "out"))
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp_path / "out"


def _assert_same_training(tiny_models, straight: Path, resumed: Path) -> None:
    a = load_file(str(straight / "model.safetensors"))
    b = load_file(str(resumed / "model.safetensors"))
    assert a.keys() == b.keys()
    base = load_file(str(Path(tiny_models[0]) / "model.safetensors"))
    assert any(not torch.equal(a[k], base[k]) for k in a), "training changed nothing"
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=0, msg=lambda m: f"{key}: {m}")
    # The projection (not exported) resumed too: the final checkpoints' heads agree.
    head_a = load_file(str(straight / "checkpoint-8" / "read_head.safetensors"))
    head_b = load_file(str(resumed / "checkpoint-8" / "read_head.safetensors"))
    torch.testing.assert_close(head_a["text_to_decoder.weight"], head_b["text_to_decoder.weight"], atol=1e-6, rtol=0)


def test_sigkill_then_resume_matches_uninterrupted_run(tiny_models, saved_dataset, straight, tmp_path):
    killed = _run_read(tmp_path, _common(tiny_models, saved_dataset, tmp_path / "resumed"), kill_at_step=3)
    assert killed.returncode == -9, f"expected SIGKILL, got {killed.returncode}: {killed.stderr[-2000:]}"
    checkpoint = tmp_path / "resumed" / "checkpoint-3"
    assert (checkpoint / "read_head.safetensors").is_file() and not (tmp_path / "resumed" / "model.safetensors").exists()

    resumed = _run_read(tmp_path, _common(tiny_models, saved_dataset, tmp_path / "resumed")
                        + ["--resume_from_checkpoint", str(checkpoint)])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _assert_same_training(tiny_models, straight, tmp_path / "resumed")


def test_sigterm_saves_at_the_step_end_exits_75_and_resumes_to_the_uninterrupted_run(
        tiny_models, saved_dataset, straight, tmp_path):
    from read_trainer.run_record import RUN_RECORD_NAME, checkpoint_problem

    out = tmp_path / "preempted"
    # SIGTERM arrives while step 5 trains (not a save step: those are 3 and 6).
    preempted = _run_read(tmp_path, _common(tiny_models, saved_dataset, out), signal_in_step=(5, "SIGTERM"))
    assert preempted.returncode == 75, f"got {preempted.returncode}: {preempted.stderr[-3000:]}"
    notice = [line for line in preempted.stderr.splitlines() if "preempted by SIGTERM" in line]
    assert len(notice) == 1 and f"saved {out / 'checkpoint-5'} at step 5" in notice[0], preempted.stderr[-3000:]
    assert "--resume_from_checkpoint last" in notice[0] and "Traceback" not in preempted.stderr
    # Step 5 finished and was saved, complete; nothing was exported.
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-3", "checkpoint-5"]
    assert checkpoint_problem(str(out / "checkpoint-5"), needs_head=True) is None
    assert (out / "checkpoint-5" / RUN_RECORD_NAME).is_file() and not (out / "model.safetensors").exists()
    assert "Exported" not in preempted.stdout

    resumed = _run_read(tmp_path, _common(tiny_models, saved_dataset, out) + ["--resume_from_checkpoint", "last"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {out / 'checkpoint-5'}" in resumed.stderr
    _assert_same_training(tiny_models, straight, out)


def test_a_configured_signal_preempts_and_the_default_handler_is_restored_after_training(tiny_models, tmp_path):
    import signal

    from transformers import TrainerCallback

    from read_trainer.config import ReadConfig
    from read_trainer.output_dir import release_output_dir
    from read_trainer.preemption import PREEMPTED_EXIT_CODE, Preempted
    from read_trainer.trainer import ReadTrainer

    class SignalInStep2(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == 1:
                os.kill(os.getpid(), signal.SIGUSR1)

    clip_dir, t5_dir = tiny_models
    args = ReadConfig(output_dir=str(tmp_path / "run"), model_name_or_path=clip_dir, decoder_name_or_path=t5_dir,
                      per_device_train_batch_size=4, max_steps=4, learning_rate=1e-3, warmup_steps=0,
                      report_to="none", use_cpu=True, save_strategy="no", preemption_signals="SIGTERM,SIGUSR1")
    trainer = ReadTrainer(args=args, train_dataset=make_rows(8, paraphrases=True), callbacks=[SignalInStep2()])
    before = signal.getsignal(signal.SIGUSR1)
    with pytest.raises(Preempted) as stopped:
        trainer.train()
    release_output_dir(str(tmp_path / "run"))
    assert stopped.value.code == PREEMPTED_EXIT_CODE == 75 and "preempted by SIGUSR1" in str(stopped.value)
    # save_strategy "no", yet the preempted step is saved: that is what the signal asks for.
    assert trainer.state.global_step == 2 and sorted(p.name for p in (tmp_path / "run").glob("checkpoint-*")) == [
        "checkpoint-2"]
    assert signal.getsignal(signal.SIGUSR1) is before
    with pytest.raises(ValueError, match="preemption_signals: 'SIGNOPE' is not a signal"):
        ReadConfig(output_dir=str(tmp_path / "x"), preemption_signals="SIGTERM,SIGNOPE")


def test_export_is_a_plain_clipmodel_loadable_without_read_trainer(tiny_models, tmp_path):
    from read_trainer.config import ReadConfig
    from read_trainer.trainer import ReadTrainer

    clip_dir, t5_dir = tiny_models
    args = ReadConfig(output_dir=str(tmp_path / "run"), model_name_or_path=clip_dir, decoder_name_or_path=t5_dir,
                      per_device_train_batch_size=4, max_steps=3, learning_rate=1e-3, warmup_steps=0,
                      report_to="none", use_cpu=True, save_strategy="no")
    trainer = ReadTrainer(args=args, train_dataset=make_rows(12, paraphrases=True))
    trainer.train()
    export = tmp_path / "export"
    trainer.save_model(str(export))

    config = json.loads((export / "config.json").read_text())
    assert config["architectures"] == ["CLIPModel"]
    weights = load_file(str(export / "model.safetensors"))
    assert not any(k.startswith(("decoder", "lm_head", "text_to_decoder", "clip.")) for k in weights)
    assert not list(export.glob("*.bin")) and not (export / "read_head.safetensors").exists()

    model = trainer.model.eval()
    batch = trainer.data_collator(make_rows(4))
    torch.save({k: batch[k] for k in ("input_ids", "attention_mask", "pixel_values")}, tmp_path / "inputs.pt")
    with torch.no_grad():
        _, text = model.encode_text(batch["input_ids"], batch["attention_mask"])
        image = model.encode_image(batch["pixel_values"])

    child = textwrap.dedent(f"""
        import sys, torch
        sys.modules["read_trainer"] = None  # importing it would now fail: prove we do not need it
        from transformers import CLIPModel, CLIPProcessor
        model, info = CLIPModel.from_pretrained({str(export)!r}, output_loading_info=True)
        assert not info["missing_keys"] and not info["unexpected_keys"], info
        CLIPProcessor.from_pretrained({str(export)!r})
        x = torch.load({str(tmp_path / 'inputs.pt')!r})
        with torch.no_grad():
            t = model.get_text_features(input_ids=x["input_ids"], attention_mask=x["attention_mask"]).pooler_output
            i = model.get_image_features(pixel_values=x["pixel_values"]).pooler_output
        torch.save({{"text": t / t.norm(dim=-1, keepdim=True), "image": i / i.norm(dim=-1, keepdim=True)}},
                   {str(tmp_path / 'out.pt')!r})
    """)
    result = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert result.returncode == 0, result.stderr[-3000:]
    fresh = torch.load(tmp_path / "out.pt")
    torch.testing.assert_close(fresh["text"], text, atol=1e-6, rtol=0)
    torch.testing.assert_close(fresh["image"], image, atol=1e-6, rtol=0)
