"""What the step looks like on the device it runs on, chosen from measurements (benchmarks/README.md).

A CPU step is compute-bound: every padded token costs its FLOPs, so it pads each batch to
its longest row and re-cuts texts and decoder targets into length groups (fewer FLOPs,
more ops). A GPU step of this size is bound by how many kernels the host launches and by
allocator churn: it keeps the collator's few static bucketed shapes and one pass each.

On a CPU, training also runs with a fixed number of torch threads (one by default: on a
machine other jobs share, a multi-threaded step waits at every parallel region for its
slowest, descheduled thread) and, when the decoder runs, with denormal floats flushed to
zero: the backward of its vocabulary-sized cross-entropy yields probabilities below
1.2e-38, and x86 CPUs multiply those ~100x slower than normal floats (measured on the tiny
config: the ``lm_head`` backward took 8.4 s instead of 0.36 s). Flushing changes values
below 1.2e-38 to 0, far below float32's resolution next to any term they are summed with.
(The flag is per thread: with several torch threads the other threads keep denormals.)
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

import torch

logger = logging.getLogger(__name__)

# padding_bucket / length_groups per device kind (ReadConfig leaves them None to pick these).
STEP_SETTINGS = {
    "cpu": {"padding_bucket": 0, "length_groups": 4},
    "gpu": {"padding_bucket": 16, "length_groups": 1},
}
CPU_THREADS = 1  # ReadConfig.torch_threads = 0 on a CPU run


def accelerator_available() -> bool:
    """Whether torch sees a GPU-like device (CUDA, MPS, XPU, ...) that training would use."""
    if torch.cuda.is_available():
        return True
    accelerator = getattr(torch, "accelerator", None)
    return bool(accelerator is not None and accelerator.is_available()
                and accelerator.current_accelerator().type != "cpu")


def device_kind(use_cpu: bool) -> str:
    """``"cpu"`` when training runs on the CPU (asked for, or no accelerator), else ``"gpu"``."""
    return "cpu" if use_cpu or not accelerator_available() else "gpu"


def cpu_threads(requested: int) -> int:
    """The torch threads of a CPU run: ``requested``, or ``CPU_THREADS`` for 0."""
    return requested if requested > 0 else CPU_THREADS


@contextmanager
def torch_cpu_settings(threads: int, flush_denormals: bool = True):
    """Run the block with ``threads`` torch CPU threads (and denormals flushed); restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    flushing = flush_denormals and torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_num_threads(before)
        if flushing:
            torch.set_flush_denormal(False)


@contextmanager
def device_step_settings(args):
    """``args``' torch threads for one run: on the CPU ``cpu_threads(torch_threads)``, with denormals
    flushed when the decoder runs; on a GPU ``torch_threads`` if set, else torch's own count."""
    if device_kind(args.use_cpu) == "cpu":
        threads, flush = cpu_threads(args.torch_threads), args.uses_decoder
    else:
        threads, flush = args.torch_threads or torch.get_num_threads(), False
    with torch_cpu_settings(threads, flush_denormals=flush):
        yield
