"""One read of the device per optimizer step in a Trainer run (the non-finite guard's verdict), with
Trainer's non-finite loss filter applied on the device: logged losses as Trainer's own filter logs them."""

from __future__ import annotations

from contextlib import nullcontext

import pytest
import torch
from conftest import make_rows
from transformers import TrainerCallback

from read_trainer.config import ReadConfig
from read_trainer.device_settings import STEP_SETTINGS
from read_trainer.op_count import OpCounter
from read_trainer.trainer import ReadTrainer


class SyncsPerStep(TrainerCallback):
    """Host syncs from each optimizer step's start to its end: forward, backward, clipping, the
    guard, the optimizer and the scheduler (data loading comes before the step begins)."""

    def __init__(self):
        self.per_step, self._counter = [], None

    def on_step_begin(self, args, state, control, **kwargs):
        self._counter = OpCounter().__enter__()

    def on_step_end(self, args, state, control, **kwargs):
        self._counter.__exit__(None, None, None)
        self.per_step.append(self._counter.host_syncs)


class NanAtStep3(TrainerCallback):
    """Makes the third optimizer step's loss NaN (a NaN logit scale), as diverging data would."""

    def on_step_begin(self, args, state, control, model=None, **kwargs):
        if state.global_step == 2:
            self.saved = model.clip.logit_scale.detach().clone()
            with torch.no_grad():
                model.clip.logit_scale.fill_(float("nan"))

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        if state.global_step == 2:
            with torch.no_grad():
                model.clip.logit_scale.copy_(self.saved)


def _run(tiny_models, tmp_path, name, trainer_filter: bool):
    clip_dir, t5_dir = tiny_models
    # The static one-pass step a GPU runs (the CPU's length groups read lengths on the host, which
    # costs nothing there); SGD, because AdamW reads its step counts with .item(): they live on
    # the CPU, so on a GPU that is no device read, but the counter here cannot tell.
    args = ReadConfig(output_dir=str(tmp_path / name), model_name_or_path=clip_dir, decoder_name_or_path=t5_dir,
                      per_device_train_batch_size=4, max_steps=5, logging_steps=5, optim="sgd", learning_rate=1e-2,
                      warmup_steps=0, nonfinite="skip", report_to="none", use_cpu=True, save_strategy="no",
                      dataloader_num_workers=0, disable_tqdm=True, seed=7, **STEP_SETTINGS["gpu"])
    syncs = SyncsPerStep()
    trainer = ReadTrainer(args=args, train_dataset=make_rows(20, paraphrases=True), callbacks=[syncs, NanAtStep3()])
    if trainer_filter:  # Trainer's own logging_nan_inf_filter, as before
        trainer._loss_filter_on_device = nullcontext
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return syncs.per_step, losses, trainer


def test_one_device_read_per_step_and_the_same_logged_loss_as_trainers_filter(tiny_models, tmp_path):
    ours, our_losses, trainer = _run(tiny_models, tmp_path, "ours", trainer_filter=False)
    theirs, their_losses, _ = _run(tiny_models, tmp_path, "trainer", trainer_filter=True)
    assert trainer._nonfinite.skipped_steps == 1  # step 3's update was dropped
    finite_steps = [0, 1, 3, 4]  # step 3 (index 2) also reads the device to describe what went wrong
    assert [ours[i] for i in finite_steps] == [1, 1, 1, 1], ours  # the guard's verdict, nothing else
    assert [theirs[i] for i in finite_steps] == [3, 3, 3, 3], theirs  # + isnan and isinf of the loss
    # The NaN step counts as the mean of the losses before it, as Trainer's filter has it.
    assert len(our_losses) == 1 and our_losses == pytest.approx(their_losses, abs=1e-6)
    assert our_losses[0] == our_losses[0]  # finite, not NaN
    assert trainer.args.logging_nan_inf_filter  # the user's setting is back after training
