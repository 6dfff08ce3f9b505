"""What checkpoint integrity costs at ViT-B/32 size, side by side with writing the checkpoint.

    python benchmarks/bench_checkpoint_files.py [--repeats 3] [--folder /tmp/ckpt-bench]

Builds a ViT-B/32-sized CLIPModel (``CLIPConfig()``'s defaults: 151M parameters, random
weights, nothing downloaded) and an AdamW state for it, writes them as a checkpoint does
(``model.safetensors`` + ``optimizer.pt``), then times, each ``--repeats`` times:

* ``write``: writing those two files (what Trainer's save costs for them);
* ``seal``: ``file_manifest`` (every file's size and SHA-256, streamed), what a save adds;
* ``verify``: ``manifest_problem`` on a cold in-process cache, what a resume adds (once per
  checkpoint it considers);
* ``no-code check``: ``unsafe_file_problem`` (every pickle-format file opened with
  ``torch.load(weights_only=True, mmap=True)``), what a resume adds.

Files are read back from the page cache (just written): a cold disk adds its read time.
Reports medians of wall and CPU time, and each as a ratio of ``write``'s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time

import torch
from safetensors.torch import save_file
from transformers import CLIPConfig, CLIPModel

from read_trainer import checkpoint_files
from read_trainer.checkpoint_files import file_manifest, manifest_problem, unsafe_file_problem


def _timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process): on a shared machine the CPU time is the steadier."""
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--folder", default=None, help="where to write the checkpoint (default: a temp folder)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    model = CLIPModel(CLIPConfig())
    params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()  # creates exp_avg and exp_avg_sq: the optimizer.pt of a real checkpoint
    state = {k: v.contiguous() for k, v in model.state_dict().items()}

    folder = args.folder or tempfile.mkdtemp(prefix="ckpt-bench-")
    os.makedirs(folder, exist_ok=True)

    def write():
        save_file(state, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})
        torch.save(optimizer.state_dict(), os.path.join(folder, "optimizer.pt"))
        for name in ("model.safetensors", "optimizer.pt"):
            with open(os.path.join(folder, name), "rb+") as f:
                os.fsync(f.fileno())

    manifest = {}

    def seal():
        manifest.update(file_manifest(folder))

    def verify():
        checkpoint_files._verified.clear()
        assert manifest_problem(folder, manifest) is None

    def no_code():
        assert unsafe_file_problem(folder) is None

    times = {name: [] for name in ("write", "seal", "verify", "no-code check")}
    for _ in range(args.repeats):
        times["write"].append(_timed(write))
        times["seal"].append(_timed(seal))
        times["verify"].append(_timed(verify))
        times["no-code check"].append(_timed(no_code))
    size = sum(os.path.getsize(os.path.join(folder, n)) for n in os.listdir(folder))
    print(f"{params / 1e6:.1f}M parameters; model.safetensors + optimizer.pt = {size / 2**30:.2f} GiB; "
          f"{args.repeats} repeats, 1 torch thread")
    write_wall = statistics.median(wall for wall, _ in times["write"])
    write_cpu = statistics.median(cpu for _, cpu in times["write"])
    for name, values in times.items():
        wall, cpu = statistics.median(w for w, _ in values), statistics.median(c for _, c in values)
        print(f"{name:>14}: wall {wall:6.2f} s (x{wall / write_wall:.2f} of write), "
              f"CPU {cpu:6.2f} s (x{cpu / write_cpu:.2f} of write, {size / 2**30 / max(cpu, 1e-9):5.2f} GiB/s)")
    if args.folder is None:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
