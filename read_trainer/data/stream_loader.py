"""StreamLoader: the DataLoader of a ValidatedStream, resumable at the sample it stopped at.

torchdata's ``StatefulDataLoader`` asks the stream for its ``state_dict()`` after every
batch (in each worker, when there are workers) and hands it back through
``load_state_dict``, so a resumed loader continues at the next sample instead of
re-reading, decoding and collating everything before it (what Trainer's
``skip_first_batches`` does with an iterable dataset). The loader also counts passes over the stream (epochs):
each pass reshuffles the shard order and the collator's per-row sampling.
"""

from __future__ import annotations

import os

import torch
from torchdata.stateful_dataloader import StatefulDataLoader

STREAM_STATE_NAME = "stream_state_{rank}.pt"


class StreamLoader(StatefulDataLoader):
    """A ``StatefulDataLoader`` that goes on to the next pass when a resumed pass is already spent."""

    def __init__(self, dataset, *, batch_size: int, collate_fn, num_workers: int = 0, **kwargs):
        # Persistent workers would keep the previous pass's copy of the stream (and its epoch).
        super().__init__(dataset, batch_size=batch_size, collate_fn=collate_fn, num_workers=num_workers,
                         persistent_workers=False, **kwargs)
        self.epoch = 0

    def __iter__(self):
        while True:
            resumed = self.next_iter_state is not None
            if not resumed:
                self.dataset.start_afresh()
            # Set before the workers start: each takes a copy of the stream and the collator.
            self.dataset.set_epoch(self.epoch)
            if hasattr(self.collate_fn, "epoch"):
                self.collate_fn.epoch = self.epoch
            produced = False
            for batch in super().__iter__():
                produced = True
                yield batch
            self.epoch += 1
            if produced:
                return
            if not resumed:
                raise ValueError("the training stream yielded no usable sample in a whole pass")
            # Resumed exactly at the end of a pass: start the next one now, so Trainer does not
            # take the empty pass for the end of the data.

    def save(self, folder: str, rank: int, world_size: int) -> str:
        """Write this process's position (all its workers') into a checkpoint folder."""
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, STREAM_STATE_NAME.format(rank=rank))
        torch.save({"loader": self.state_dict(), "epoch": self.epoch, "world_size": world_size,
                    "num_workers": self.num_workers}, path)
        return path

    def restore(self, folder: str, rank: int, world_size: int) -> None:
        """Continue from the position ``save`` wrote (same processes and workers, else an error)."""
        path = os.path.join(folder, STREAM_STATE_NAME.format(rank=rank))
        if not os.path.isfile(path):
            raise FileNotFoundError(f"checkpoint {folder!r} has no {os.path.basename(path)}: it was not written by a "
                                    "streaming run of this many processes, so its data position is unknown")
        state = torch.load(path, map_location="cpu", weights_only=True)  # data only: never runs a pickle's code
        for name, now in (("world_size", world_size), ("num_workers", self.num_workers)):
            if state[name] != now:
                raise ValueError(f"checkpoint {folder!r} was written with {name}={state[name]}, this run has {now}: "
                                 "each process and worker resumes its own shards, so both must match")
        self.load_state_dict(state["loader"])
        self.epoch = state["epoch"]


def stream_dataloader(dataset, collate_fn, args, batch_size: int) -> StreamLoader:
    """The loader Trainer trains from when its train dataset is a stream (``args``: TrainingArguments)."""
    # Its own generator: starting an iterator draws the workers' base seed, and drawing it from
    # the global RNG would shift the dropout masks of a resumed run against the uninterrupted one.
    generator = torch.Generator().manual_seed(args.data_seed if args.data_seed is not None else args.seed)
    options = dict(num_workers=args.dataloader_num_workers, pin_memory=args.dataloader_pin_memory,
                   drop_last=args.dataloader_drop_last, generator=generator)
    if args.dataloader_num_workers > 0:
        options.update(prefetch_factor=args.dataloader_prefetch_factor,
                       multiprocessing_context=args.dataloader_multiprocessing_context)
    return StreamLoader(dataset, batch_size=batch_size, collate_fn=collate_fn, **options)
