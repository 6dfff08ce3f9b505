"""How long training will take, said at its start.

``StepTimeEstimate`` prints one line when training starts (the device, torch threads and
step settings, each with the flag that changes it) and one after the first few optimizer
steps: the time per step and an estimate of the whole run. The first step is left out of
the measure: it includes one-off work (allocator growth, worker start-up, lazy weights).
"""

from __future__ import annotations

import time

import torch
from tqdm.auto import tqdm
from transformers import TrainerCallback

from .device_settings import device_kind

MEASURED_STEPS = 3  # optimizer steps 2..4 are timed


def describe_step(args) -> str:
    """One line: where and how the step runs, and the flag for each choice."""
    kind = device_kind(args.use_cpu)
    where = f"on the CPU with {torch.get_num_threads()} torch thread(s) (--torch_threads)" if kind == "cpu" \
        else "on the GPU"
    padding = ("each batch padded to its longest row" if args.padding_bucket == 0
               else f"texts padded to multiples of {args.padding_bucket}")
    groups = f", in {args.length_groups} length groups" if args.length_groups > 1 else ""
    return f"training {where}: {padding}{groups} (--padding_bucket, --length_groups)"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class StepTimeEstimate(TrainerCallback):
    """Prints the step settings at the start and, after step ``1 + MEASURED_STEPS``, the time per step."""

    def __init__(self):
        self._start = None
        self._first_step = None

    def on_train_begin(self, args, state, control, **kwargs):
        self._start, self._first_step = None, state.global_step + 1
        if state.is_world_process_zero:
            tqdm.write(describe_step(args))  # above Trainer's progress bar, not through it

    def on_step_end(self, args, state, control, **kwargs):
        done = state.global_step - self._first_step + 1  # optimizer steps run by this train() call
        if done == 1:
            self._start = time.perf_counter()
            return
        last = min(1 + MEASURED_STEPS, state.max_steps - self._first_step + 1)
        if self._start is None or done != last or not state.is_world_process_zero:
            return
        per_step = (time.perf_counter() - self._start) / (done - 1)
        left = state.max_steps - state.global_step
        message = f"{per_step:.2f} s per optimizer step (steps {self._first_step + 1}-{state.global_step})"
        if left > 0:
            message += (f": about {_duration(per_step * (state.max_steps - self._first_step + 1))} for "
                        f"{state.max_steps - self._first_step + 1} steps, {_duration(per_step * left)} left "
                        "(training steps only: evaluation and saving add to it)")
        tqdm.write(message)
