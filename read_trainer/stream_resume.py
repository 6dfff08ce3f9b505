"""Trainer support for streamed training data (``--streaming``): its loader, saved and resumed.

Each process reads its own shards (``split_dataset_by_node``), so the loader is not handed
to accelerate, which would split an iterable dataset a second time (or, by default, read
it all on the main process and send slices). Each process writes its loader position into
every checkpoint and reads it back on resume; Trainer's own data skip, which re-reads the
stream up to the checkpoint, is turned off for it.
"""

from __future__ import annotations

import os

from transformers import Trainer
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from .data.stream_checks import ValidatedStream


class StreamResumeMixin(Trainer):
    """Mixed into ``ReadTrainer``; changes nothing for map-style datasets."""

    _stream_loader = None

    def get_train_dataloader(self):
        if not isinstance(self.train_dataset, ValidatedStream):
            return super().get_train_dataloader()
        from .data.stream_loader import stream_dataloader

        if self.args.max_steps is None or self.args.max_steps <= 0:
            raise ValueError("a streamed train dataset needs max_steps: a stream has no length to count epochs in")
        # The loader restores its own position (below); Trainer's skip would read the stream again.
        self.args.ignore_data_skip = True
        self._stream_loader = stream_dataloader(self.train_dataset, self.data_collator, self.args,
                                                self._train_batch_size)
        return self._stream_loader

    def _save_checkpoint(self, model, trial):
        if self._stream_loader is not None:
            step_folder = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
            folder = os.path.join(self._get_output_dir(trial=trial), step_folder)
            self._stream_loader.save(folder, self.args.process_index, self.args.world_size)
        super()._save_checkpoint(model, trial)

    def _load_rng_state(self, checkpoint):
        # Trainer calls this when it resumes, right before it iterates the train loader.
        super()._load_rng_state(checkpoint)
        if self._stream_loader is not None and checkpoint is not None:
            self._stream_loader.restore(checkpoint, self.args.process_index, self.args.world_size)
