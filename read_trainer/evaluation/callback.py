"""Run the benchmarks during training and log them with the trainer's own metrics.

``Trainer.evaluate`` logs its metrics *before* it calls ``on_evaluate``, and callbacks
are not handed the trainer, so a callback cannot reach TensorBoard/W&B by returning
values. The callback therefore keeps a reference to its trainer (``attach``) and calls
``trainer.log`` itself, which appends to ``state.log_history`` and fans out to every
reporting integration. Keys are ``eval/<benchmark>/<subset>`` plus
``eval/<benchmark>/{total,macro,micro,...}`` and ``eval/paper_average`` when all six
paper benchmarks run. The latest results stay on ``callback.latest`` for the model card.
"""

from __future__ import annotations

from typing import Sequence

from transformers import TrainerCallback

from .embedding import ClipEmbedder
from .report import model_card_eval_results
from .results import BenchmarkResult, paper_average
from .suite import Task, run_suite


class CompositionalEvalCallback(TrainerCallback):
    """Evaluate ``tasks`` on the model being trained.

    By default it runs whenever the trainer evaluates (``on_evaluate``, i.e. at
    ``eval_strategy`` steps; that needs an ``eval_dataset``). With ``eval_steps`` it
    runs every that many optimizer steps instead, with or without an eval dataset.
    Only the main process evaluates (benchmarks need no gather). The model may be a
    ``CLIPModel``, READ's wrapper (``.clip``), or DDP/accelerate-wrapped (``.module``).
    """

    def __init__(self, tasks: Sequence[Task], processor=None, *, eval_steps: int | None = None,
                 batch_size: int = 256, dtype: str | None = None, num_workers: int = 0, prefix: str = "eval",
                 progress: bool = False):
        self.tasks = list(tasks)
        self.processor = processor
        self.eval_steps = eval_steps
        self.embedder_kwargs = dict(batch_size=batch_size, dtype=dtype, num_workers=num_workers, progress=progress)
        self.prefix = prefix
        self.trainer = None
        self.latest: dict[str, BenchmarkResult] = {}
        self.latest_step: int | None = None
        self.history: list[dict[str, float]] = []

    def attach(self, trainer) -> "CompositionalEvalCallback":
        """Register with ``trainer`` and remember it, so results go through ``trainer.log``."""
        self.trainer = trainer
        trainer.add_callback(self)
        return self

    def _processor(self, processing_class):
        processor = self.processor or processing_class
        if processor is None or not hasattr(processor, "image_processor"):
            raise ValueError("CompositionalEvalCallback needs a CLIPProcessor (tokenizer + image processor): "
                             "pass processor=... or give the Trainer processing_class=<CLIPProcessor>")
        return processor

    def evaluate_now(self, model, processing_class=None, step: int | None = None) -> dict[str, float]:
        """Run every task on ``model`` and return the flat ``eval/...`` metrics (also stored on ``latest``)."""
        embedder = ClipEmbedder(model, self._processor(processing_class), **self.embedder_kwargs)
        self.latest = run_suite(self.tasks, embedder)
        self.latest_step = step
        flat: dict[str, float] = {}
        for result in self.latest.values():
            flat.update(result.flat(self.prefix))
        if (avg := paper_average(self.latest)) is not None:
            flat[f"{self.prefix}/paper_average"] = avg
        self.history.append({"step": step, **flat})
        return flat

    def _run_and_log(self, state, model, processing_class, metrics: dict | None = None) -> None:
        if self.trainer is None:
            raise RuntimeError("CompositionalEvalCallback is not attached: use callback.attach(trainer) "
                               "instead of trainer.add_callback(callback), so it can log through trainer.log")
        # Only the main process evaluates, but every process calls trainer.log: a Trainer whose
        # log() all-reduces pending metrics (ReadTrainer does) would hang if only one rank logged.
        flat = self.evaluate_now(model, processing_class, state.global_step) if state.is_world_process_zero else {}
        if metrics is not None:
            metrics.update(flat)  # also returned by trainer.evaluate()
        # CallbackHandler.on_log clears control.should_log; called from on_step_end, that would
        # cancel the step's own loss log, so the flag is put back as it was.
        control = getattr(self.trainer, "control", None)
        should_log = getattr(control, "should_log", None)
        self.trainer.log(dict(flat))
        if should_log is not None:
            control.should_log = should_log

    def on_evaluate(self, args, state, control, model=None, processing_class=None, metrics=None, **kwargs):
        if self.eval_steps is None:
            self._run_and_log(state, model, processing_class, metrics)

    def on_step_end(self, args, state, control, model=None, processing_class=None, **kwargs):
        if self.eval_steps is not None and state.global_step % self.eval_steps == 0:
            self._run_and_log(state, model, processing_class)

    def model_card_eval_results(self) -> list:
        """``EvalResult`` entries of the latest run, for ``ModelCardData(eval_results=...)``."""
        return model_card_eval_results(self.latest)
