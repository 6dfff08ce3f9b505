"""Preemption: a signal ends the run with a checkpoint at the next step boundary, and a known exit status.

Schedulers announce the end of an allocation with SIGTERM (SLURM, Kubernetes, spot
instances), or with a signal the job asks for (SLURM's ``--signal=USR1@120``), then kill
the job after a grace period. Left alone, Python dies at SIGTERM and loses every step since
the last checkpoint. ``PreemptionCallback``'s handler only notes the signal; at the end of
the optimizer step under way the callback asks Trainer to save a checkpoint and stop (no
evaluation first), and ``ReadTrainer.train`` raises ``Preempted``: a ``SystemExit`` with
status ``PREEMPTED_EXIT_CODE`` (75, ``EX_TEMPFAIL``: try again later), so a recipe exits
without exporting and a job script can requeue on that status. With several processes every
process stops at the same step: the flag is all-reduced at each step end.
"""

from __future__ import annotations

import logging
import signal
import threading

import torch
from transformers import TrainerCallback

logger = logging.getLogger(__name__)

PREEMPTED_EXIT_CODE = 75  # sysexits.h EX_TEMPFAIL: the job may be run again (resumed)


class Preempted(SystemExit):
    """The run stopped at a preemption signal after saving a checkpoint (exit status 75)."""

    def __init__(self, message: str):
        super().__init__(PREEMPTED_EXIT_CODE)
        self.message = message

    def __str__(self) -> str:
        return self.message


def parse_signals(spec: str | None) -> list[signal.Signals]:
    """``"SIGTERM,SIGUSR1"`` (or ``"TERM,USR1"``) as signals; ``"none"`` or ``""`` is no signal."""
    found = []
    for part in (p.strip().upper() for p in (spec or "").split(",")):
        if not part or part == "NONE":
            continue
        name = part if part.startswith("SIG") else f"SIG{part}"
        if name in ("SIGKILL", "SIGSTOP") or not hasattr(signal.Signals, name):
            raise ValueError(f"preemption_signals: {part!r} is not a signal that can be caught (e.g. SIGTERM, "
                             "SIGUSR1; 'none' for no handling)")
        found.append(signal.Signals[name])
    return found


class PreemptionCallback(TrainerCallback):
    """Notes a preemption signal; at the next step end, saves and stops (see the module docstring)."""

    def __init__(self, signals: list[signal.Signals]):
        self.signals = signals
        self.received: str | None = None  # the first signal's name
        self.stopped_at: int | None = None  # the step saved and stopped at
        self._previous: dict = {}

    def install(self) -> None:
        """Handle the signals (main thread only: Python delivers signals there)."""
        self.received, self.stopped_at = None, None
        if not self.signals:
            return
        if threading.current_thread() is not threading.main_thread():
            logger.warning("training runs outside the main thread: preemption signals are not handled")
            return
        for sig in self.signals:
            self._previous[sig] = signal.signal(sig, self._note)

    def uninstall(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous = {}

    def _note(self, signum, frame) -> None:
        if self.received is None:
            self.received = signal.Signals(signum).name

    def _any_process_received(self, args) -> bool:
        flag = self.received is not None
        if args.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            tensor = torch.tensor([int(flag)], device=args.device)
            torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.MAX)
            flag = bool(tensor.item())
            if flag and self.received is None:
                self.received = "a signal to another process"
        return flag

    def on_step_end(self, args, state, control, **kwargs):
        if self.signals and self.stopped_at is None and self._any_process_received(args):
            self.stopped_at = state.global_step
            control.should_save, control.should_training_stop, control.should_evaluate = True, True, False
        return control
