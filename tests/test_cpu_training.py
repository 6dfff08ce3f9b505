"""Training on the CPU: step settings and threads chosen for the device, the time per step said at the
start, DataLoader workers within the CPUs, each collator warning once per run."""

from __future__ import annotations

import logging

import torch
from conftest import make_rows
from transformers import TrainerCallback

from read_trainer.config import ReadConfig, available_cpus
from read_trainer.device_settings import CPU_THREADS, STEP_SETTINGS
from read_trainer.trainer import ReadTrainer


def _args(tiny_models, tmp_path, **kw):
    clip_dir, t5_dir = tiny_models
    options = dict(output_dir=str(tmp_path / "out"), model_name_or_path=clip_dir, decoder_name_or_path=t5_dir,
                   per_device_train_batch_size=2, max_steps=6, report_to="none", use_cpu=True, save_strategy="no",
                   dataloader_num_workers=0, disable_tqdm=True)
    options.update(kw)
    return ReadConfig(**options)


def test_step_settings_are_the_devices_unless_set(tmp_path):
    cpu = ReadConfig(output_dir=str(tmp_path), use_cpu=True)
    assert (cpu.padding_bucket, cpu.length_groups) == (0, 4) == tuple(STEP_SETTINGS["cpu"].values())
    assert (STEP_SETTINGS["gpu"]["padding_bucket"], STEP_SETTINGS["gpu"]["length_groups"]) == (16, 1)
    explicit = ReadConfig(output_dir=str(tmp_path), use_cpu=True, padding_bucket=16, length_groups=1)
    assert (explicit.padding_bucket, explicit.length_groups) == (16, 1)
    compiled = ReadConfig(output_dir=str(tmp_path), use_cpu=True, compile_towers=True)  # static shapes
    assert (compiled.padding_bucket, compiled.length_groups) == (16, 1)


def test_run_settings_by_device_are_restored_after(tmp_path, monkeypatch):
    import read_trainer.device_settings as device_settings

    before, seen = torch.get_num_threads(), []

    def run(**kw):
        with device_settings.device_step_settings(ReadConfig(output_dir=str(tmp_path), use_cpu=True, **kw)):
            # Denormals flushed: the smallest float32 denormal reads back as 0.
            seen.append((torch.get_num_threads(), float(torch.tensor(1e-45, dtype=torch.float32)) == 0.0))
        assert torch.get_num_threads() == before and float(torch.tensor(1e-45, dtype=torch.float32)) != 0.0

    run()  # the CPU with the decoder: one thread, denormals flushed
    run(reconstruction_weight=0.0, torch_threads=2)  # no decoder: nothing to flush
    monkeypatch.setattr(device_settings, "device_kind", lambda use_cpu: "gpu")
    run()  # a GPU run keeps torch's thread count unless asked
    run(torch_threads=3)
    assert seen == [(CPU_THREADS, True), (2, False), (before, False), (3, False)]


class ThreadsSeen(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        self.threads = torch.get_num_threads()


def test_threads_for_the_run_and_the_time_per_step_printed_at_the_start(tiny_models, tmp_path, capsys):
    before = torch.get_num_threads()
    seen = ThreadsSeen()
    trainer = ReadTrainer(args=_args(tiny_models, tmp_path), train_dataset=make_rows(12, paraphrases=True),
                          callbacks=[seen])
    trainer.train()
    assert seen.threads == CPU_THREADS == 1 and torch.get_num_threads() == before
    out = capsys.readouterr().out.splitlines()
    assert ("training on the CPU with 1 torch thread(s) (--torch_threads): each batch padded to its longest row, "
            "in 4 length groups (--padding_bucket, --length_groups)") in out
    estimate = [line for line in out if "s per optimizer step (steps 2-4): about" in line]
    assert len(estimate) == 1 and "for 6 steps" in estimate[0] and "left" in estimate[0], out

    seen = ThreadsSeen()
    trainer = ReadTrainer(args=_args(tiny_models, tmp_path, torch_threads=2, max_steps=1, overwrite_output_dir=True),
                          train_dataset=make_rows(4, paraphrases=True), callbacks=[seen])
    trainer.train()
    assert seen.threads == 2 and torch.get_num_threads() == before


def test_workers_are_capped_to_the_cpus_with_one_message(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="read_trainer.config"):
        args = ReadConfig(output_dir=str(tmp_path), use_cpu=True, dataloader_num_workers=available_cpus() + 6)
    assert args.dataloader_num_workers == available_cpus()
    messages = [r.getMessage() for r in caplog.records if "dataloader_num_workers" in r.getMessage()]
    assert messages == [f"dataloader_num_workers={available_cpus() + 6} is more than the {available_cpus()} "
                        f"CPU(s) this process may use: using {available_cpus()}"]


def test_a_collator_warning_in_dataloader_workers_is_shown_once(tiny_models, tmp_path, caplog):
    """Rows without paraphrases: every worker's collator falls back, the run says so once."""
    args = _args(tiny_models, tmp_path, dataloader_num_workers=min(2, available_cpus()), max_steps=4)
    trainer = ReadTrainer(args=args, train_dataset=make_rows(16))
    with caplog.at_level(logging.WARNING, logger="read_trainer.data.collator"):
        trainer.train()
    fallback = [r for r in caplog.records if "aligning anchors with another caption" in r.getMessage()]
    assert len(fallback) == 1
