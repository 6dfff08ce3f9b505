"""The output folder: no training over another run's files, one run at a time, exports replaced atomically."""

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from conftest import make_rows
from safetensors.torch import load_file
from transformers import CLIPModel

from read_trainer.config import ReadConfig
from read_trainer.output_dir import LOCK_NAME, OutputDirError, release_output_dir
from read_trainer.trainer import ReadTrainer

REPO = Path(__file__).resolve().parents[1]


def _args(tiny_models, out, **kw):
    clip_dir, t5_dir = tiny_models
    options = dict(output_dir=str(out), model_name_or_path=clip_dir, decoder_name_or_path=t5_dir,
                   per_device_train_batch_size=4, max_steps=1, learning_rate=1e-3, warmup_steps=0,
                   report_to="none", use_cpu=True, save_strategy="no", dataloader_num_workers=0)
    options.update(kw)
    return ReadConfig(**options)


def test_a_folder_holding_an_export_is_refused_unless_overwriting(tiny_models, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"an earlier export")
    trainer = ReadTrainer(args=_args(tiny_models, out), train_dataset=make_rows(4, paraphrases=True))
    with pytest.raises(OutputDirError, match=rf"{out} is not empty \(model.safetensors\).*--overwrite_output_dir"):
        trainer.train()
    assert (out / "model.safetensors").read_bytes() == b"an earlier export"
    assert trainer.state.global_step == 0

    trainer = ReadTrainer(args=_args(tiny_models, out, overwrite_output_dir=True),
                          train_dataset=make_rows(4, paraphrases=True))
    trainer.train()
    trainer.save_model()
    assert trainer.state.global_step == 1
    CLIPModel.from_pretrained(out)  # the earlier bytes were replaced by a loadable export
    release_output_dir(str(out))
    assert not (out / LOCK_NAME).exists()


def test_a_second_run_on_a_locked_folder_is_refused_and_a_dead_runs_lock_taken_over(tiny_models, tmp_path):
    out = tmp_path / "one_folder"
    # The first run: another process that claims the folder and keeps running.
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from read_trainer.output_dir import claim_output_dir
        claim_output_dir({str(out)!r}, resuming=False, overwrite=False)
        time.sleep(120)
    """)], env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        lock = out / LOCK_NAME
        deadline = time.time() + 60
        while not (lock.is_file() and lock.read_text().strip()) and time.time() < deadline:
            time.sleep(0.1)
        assert lock.read_text().split()[0] == str(holder.pid)
        trainer = ReadTrainer(args=_args(tiny_models, out, overwrite_output_dir=True),
                              train_dataset=make_rows(4, paraphrases=True))
        with pytest.raises(OutputDirError, match=rf"lock file {lock} is held by pid {holder.pid}"):
            trainer.train()
        assert trainer.state.global_step == 0
    finally:
        holder.kill()  # SIGKILL: its lock file stays behind, stale
        holder.wait()
    assert lock.is_file()
    trainer.train()
    assert trainer.state.global_step == 1
    assert lock.read_text().split()[0] == str(os.getpid())
    release_output_dir(str(out))


def test_a_kill_during_the_final_save_leaves_the_previous_export_intact(tiny_models, tmp_path):
    out = tmp_path / "out"
    first = ReadTrainer(args=_args(tiny_models, out), train_dataset=make_rows(4, paraphrases=True))
    first.save_model()
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert "model.safetensors" in before and "processor_config.json" in before

    # A second process changes the weights and is SIGKILLed after writing them, while writing the processor.
    script = textwrap.dedent(f"""
        import os, signal, torch
        from transformers import CLIPProcessor
        from read_trainer.config import ReadConfig
        from read_trainer.trainer import ReadTrainer
        args = ReadConfig(output_dir={str(out)!r}, model_name_or_path={tiny_models[0]!r},
                          decoder_name_or_path={tiny_models[1]!r}, report_to="none", use_cpu=True)
        trainer = ReadTrainer(args=args)
        with torch.no_grad():
            trainer.model.clip.text_projection.weight.mul_(-1)
        CLIPProcessor.save_pretrained = lambda self, *a, **k: os.kill(os.getpid(), signal.SIGKILL)
        trainer.save_model()
    """)
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, PYTHONPATH=str(REPO), CUDA_VISIBLE_DEVICES=""))
    assert killed.returncode == -9, killed.stderr[-2000:]
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert after == before
    exported = load_file(str(out / "model.safetensors"))
    torch.testing.assert_close(exported["text_projection.weight"],
                               first.model.clip.text_projection.weight.detach(), atol=0, rtol=0)

    # The next export completes and clears the abandoned staging folder.
    with torch.no_grad():
        first.model.clip.text_projection.weight.mul_(2)
    first.save_model()
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == []
    torch.testing.assert_close(load_file(str(out / "model.safetensors"))["text_projection.weight"],
                               first.model.clip.text_projection.weight.detach(), atol=0, rtol=0)
