"""Data-loading throughput: the streaming loader against the map-style loader, same rows.

    .venv/bin/python benchmarks/bench_streaming.py                      # 512 COCO-sized JPEGs, 0/1/2 workers
    .venv/bin/python benchmarks/bench_streaming.py --samples 2048 --workers 0 4 8

Both loaders end in the same ``ReadCollator`` (ViT-B/32's image preprocessing: resize 224,
centre crop; hard negatives generated on the fly by the rules backend; T5 targets), so the
difference is in getting rows to it:

* map-style: a ``save_to_disk`` dataset with embedded JPEG bytes (what run_read.py trains on
  after its up-front scan), a shuffling ``DataLoader``, images decoded by ``datasets``;
* streaming: webdataset shards written by ``recipes/make_shards.py``'s writer, read by
  ``read_trainer.data.shard_reading``, checked, block-shuffled and decoded by
  ``ValidatedStream``, batched by ``StreamLoader`` (torchdata's StatefulDataLoader).

Reported per loader and worker count: samples/s over one pass (worker start-up included),
the median of ``--repeats`` passes run interleaved (map-style, streaming, map-style, ...) so
that load from other jobs on the machine hits both alike, and samples/s per worker (the main
process counts as one worker with 0 workers).
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

CAPTIONS = [
    "a man riding a brown horse on the beach",
    "a cat sleeping on a wooden table next to a laptop",
    "a child flying a red kite in a grassy field",
    "two dogs playing with a ball in the snow",
    "a woman holding an umbrella on a busy street",
    "a plate of pasta beside a glass of red wine",
    "a small boat tied to a wooden dock at sunset",
    "a group of people standing around a large pizza",
]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=512)
    p.add_argument("--image_size", type=int, nargs=2, default=[640, 480], help="stand-in JPEG width height")
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--samples_per_shard", type=int, default=64)
    p.add_argument("--shuffle_buffer_size", type=int, default=256)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--threads", type=int, default=1, help="torch threads in each process")
    p.add_argument("--repeats", type=int, default=3, help="interleaved passes per loader; the median is reported")
    return p.parse_args()


def stand_in_jpeg(rng: np.random.Generator, width: int, height: int) -> bytes:
    # Smooth colour fields plus noise: compresses like a photo (~100-200 KB at 640x480), not like flat colour.
    base = rng.integers(0, 256, (height // 32 + 1, width // 32 + 1, 3), dtype=np.uint8)
    image = Image.fromarray(base).resize((width, height), Image.BILINEAR)
    pixels = np.asarray(image, dtype=np.int16) + rng.integers(-20, 21, (height, width, 3))
    buffer = io.BytesIO()
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def build(args, root: Path):
    import datasets
    from transformers import AutoTokenizer, CLIPProcessor

    from read_trainer.data.collator import ReadCollator
    from read_trainer.data.negatives import HardNegativeGenerator
    from read_trainer.data.shards import write_webdataset_shards
    from read_trainer.demo.tiny_models import write_tiny_models

    clip_dir, t5_dir = write_tiny_models(root / "models", corpus=CAPTIONS * 4)
    processor = CLIPProcessor.from_pretrained(clip_dir)
    # ViT-B/32's preprocessing (the tiny model's own works on 32x32 images).
    processor.image_processor.size = {"shortest_edge": 224}
    processor.image_processor.crop_size = {"height": 224, "width": 224}
    collator = ReadCollator(processor=processor, decoder_tokenizer=AutoTokenizer.from_pretrained(t5_dir),
                            negative_generator=HardNegativeGenerator(seed=0, backend="rules"))

    rng = np.random.default_rng(0)
    rows = [{"row_id": i, "image": {"bytes": stand_in_jpeg(rng, *args.image_size), "path": f"{i}.jpg"},
             "captions": [CAPTIONS[i % len(CAPTIONS)], CAPTIONS[(i + 3) % len(CAPTIONS)]]}
            for i in range(args.samples)]
    mean_kb = sum(len(r["image"]["bytes"]) for r in rows) / len(rows) / 1024
    table = datasets.Dataset.from_list(rows).cast_column("image", datasets.Image())
    table.save_to_disk(str(root / "map"))
    shards = write_webdataset_shards(rows, str(root / "shards"), args.samples_per_shard, image_format="jpg")
    return collator, datasets.load_from_disk(str(root / "map")), shards, mean_kb


def one_pass(loader) -> tuple[int, float]:
    start = time.perf_counter()
    count = sum(batch["pixel_values"].shape[0] for batch in loader)
    return count, time.perf_counter() - start


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    from read_trainer.data.stream_checks import ValidatedStream
    from read_trainer.data.stream_loader import StreamLoader
    from read_trainer.data.streaming import open_shards

    with tempfile.TemporaryDirectory() as tmp:
        collator, table, shards, mean_kb = build(args, Path(tmp))
        print(f"{args.samples} stand-in {args.image_size[0]}x{args.image_size[1]} JPEGs (mean {mean_kb:.0f} KB), "
              f"{len(shards)} shards, batch {args.batch_size}, {args.threads} torch thread(s) per process\n")
        print("| loader | workers | samples/s, median (range) | samples/s per worker |")
        print("|---|---|---|---|")
        for workers in args.workers:
            extra = {"worker_init_fn": lambda _: torch.set_num_threads(args.threads)} if workers else {}
            map_style = torch.utils.data.DataLoader(table, batch_size=args.batch_size, shuffle=True,
                                                    collate_fn=collator, num_workers=workers, **extra)
            stream = ValidatedStream(open_shards(shards, seed=0), shuffle_buffer_size=args.shuffle_buffer_size,
                                     report_file=None)
            streaming = StreamLoader(stream, batch_size=args.batch_size, collate_fn=collator, num_workers=workers,
                                     **extra)
            rates = {"map-style": [], "streaming": []}
            for _ in range(args.repeats):
                for name, loader in (("map-style", map_style), ("streaming", streaming)):
                    count, seconds = one_pass(loader)
                    assert count == args.samples, (name, count)
                    rates[name].append(count / seconds)
            for name, values in rates.items():
                rate = statistics.median(values)
                spread = f"{min(values):.1f}-{max(values):.1f}"
                print(f"| {name} | {workers} | {rate:.1f} ({spread}) | {rate / max(workers, 1):.1f} |", flush=True)


if __name__ == "__main__":
    main()
