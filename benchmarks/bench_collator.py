"""Data loading at GPU rate: ReadCollator throughput on COCO-sized JPEGs, per DataLoader worker.

Each DataLoader worker is one process running the collator: it decodes every row's JPEG
(640x480, the COCO size), runs CLIP's image processing (resize to 224 on the short side,
centre crop, normalise), generates K = 3 hard negatives per anchor with the shipped rule
generator (rows without ``negatives``), picks a paraphrase and a reconstruction target,
and tokenises every text for CLIP and the targets for T5 into the bucketed widths. This
script runs that in one process (one worker) on generated rows and reports samples/s,
the time per stage, and the workers needed to feed a training step at a given rate.

The tokenisers are the tiny BPE/SentencePiece-free ones the tests build (a CLIP-style
byte-level BPE; T5's stand-in); both are Rust "fast" tokenisers like the real ones.

    python benchmarks/bench_collator.py                  # 256 rows, batch 64
    python benchmarks/bench_collator.py --rows 512 --batch-size 128 --step-rate 294
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import tempfile
import time

import numpy as np
import torch
from PIL import Image

# A COCO-like caption grammar: objects, colours and relations the rule generator can swap.
COLOURS = ["red", "blue", "white", "black", "brown", "green", "yellow", "grey"]
OBJECTS = ["dog", "cat", "car", "man", "woman", "horse", "table", "bus", "bench", "kite", "boy", "girl", "train"]
RELATIONS = ["next to", "on top of", "behind", "in front of", "under", "beside", "near"]
PLACES = ["on the street", "in a field", "in a kitchen", "on the beach", "in a park", "at the station"]
# GPU step rates (samples/s) at batch 256 from the H100 measurements in benchmarks/README.md.
STEP_RATES = {"reference pattern, 0.871 s/step": 256 / 0.871,
              "3x the reference pattern (the step target), 0.290 s/step": 3 * 256 / 0.871}


def caption(rng: random.Random) -> str:
    text = f"a {rng.choice(COLOURS)} {rng.choice(OBJECTS)} {rng.choice(RELATIONS)} a {rng.choice(COLOURS)} " \
           f"{rng.choice(OBJECTS)}"
    return text + (" " + rng.choice(PLACES) if rng.random() < 0.7 else "")


def write_jpeg(path: str, rng: np.random.Generator) -> None:
    """A 640x480 JPEG with photo-like structure (smooth gradients plus noise), ~100 KB at quality 90."""
    y, x = np.mgrid[0:480, 0:640]
    base = np.stack([(x * rng.uniform(0.1, 0.4) + y * rng.uniform(0.1, 0.4)) % 256 for _ in range(3)], -1)
    noisy = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
    Image.fromarray(noisy).save(path, quality=90)


def make_rows(folder: str, n: int, seed: int = 0) -> list[dict]:
    rng, nrng = random.Random(seed), np.random.default_rng(seed)
    images = [os.path.join(folder, f"{i}.jpg") for i in range(min(n, 64))]
    for path in images:
        write_jpeg(path, nrng)
    rows = []
    for i in range(n):
        captions = [caption(rng) for _ in range(5)]  # COCO: 5 captions per image
        rows.append({"row_id": i, "image": images[i % len(images)], "captions": captions,
                     "paraphrases": [[f"there is {c}"] for c in captions]})
    return rows


def build_collator(folder: str, rows: list[dict], padding_bucket: int):
    from transformers import AutoTokenizer, CLIPProcessor

    from read_trainer.data.collator import ReadCollator
    from read_trainer.data.negatives import HardNegativeGenerator
    from read_trainer.demo.tiny_models import TinyClipSpec, TinyT5Spec, write_tiny_clip, write_tiny_t5

    corpus = [c for row in rows for c in row["captions"]][:2000]
    clip_dir = write_tiny_clip(os.path.join(folder, "clip"), corpus, TinyClipSpec(image_size=224, patch_size=32,
                                                                                  num_layers=1))
    t5_dir = write_tiny_t5(os.path.join(folder, "t5"), corpus, TinyT5Spec(num_layers=1))
    return ReadCollator(processor=CLIPProcessor.from_pretrained(clip_dir),
                        decoder_tokenizer=AutoTokenizer.from_pretrained(t5_dir), num_hard_negatives=3,
                        negative_generator=HardNegativeGenerator(), padding_bucket=padding_bucket)


def _timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def stage_times(collator, rows: list[dict], repeats: int) -> dict[str, float]:
    """Seconds per sample of each stage, on the same rows, in this process."""
    from read_trainer.data.collator import load_image

    n = len(rows)
    images = [load_image(r["image"], r["row_id"]) for r in rows]
    anchors = [r["captions"][0] for r in rows]
    texts = anchors * 5  # anchors | 3 negatives | paraphrase
    return {
        "JPEG decode": _timed(lambda: [load_image(r["image"], r["row_id"]) for r in rows], repeats) / n,
        "CLIP image processing": _timed(lambda: collator.processor.image_processor(images=images,
                                                                                   return_tensors="pt"), repeats) / n,
        "hard negatives (rules)": _timed(lambda: [collator.negative_generator(a, 6) for a in anchors], repeats) / n,
        "tokenisation (CLIP + T5)": _timed(lambda: (collator.processor.tokenizer(texts, padding=True,
                                                                                  return_tensors="pt"),
                                                    collator.decoder_tokenizer(anchors, padding=True,
                                                                               return_tensors="pt")), repeats) / n,
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over the rows (median)")
    parser.add_argument("--padding-bucket", type=int, default=16)
    parser.add_argument("--step-rate", type=float, action="append",
                        help="samples/s a training step consumes (repeatable; default: the H100 rates in the README)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # one worker = one process with one thread (DataLoader workers' default)

    with tempfile.TemporaryDirectory() as folder:
        rows = make_rows(folder, args.rows)
        collator = build_collator(folder, rows, args.padding_bucket)
        batches = [rows[i:i + args.batch_size] for i in range(0, len(rows), args.batch_size)]
        collator(batches[0])  # warm-up: tokeniser caches, lazy imports
        per_pass = _timed(lambda: [collator(b) for b in batches], args.repeats)
        stages = stage_times(collator, rows[:args.batch_size], args.repeats)
    rate = len(rows) / per_pass
    rates = {f"{r:.0f} samples/s": r for r in args.step_rate} if args.step_rate else STEP_RATES
    command = "python benchmarks/bench_collator.py " + " ".join(sys.argv[1:] if argv is None else argv)
    lines = [f"command: {command}", f"{len(rows)} rows, batch {args.batch_size}, 640x480 JPEGs, K = 3 generated "
             f"negatives, 1 thread: {rate:.1f} samples/s per worker ({1e3 / rate:.2f} ms/sample)", "",
             "| stage | ms/sample |", "|---|---|"]
    lines += [f"| {name} | {1e3 * t:.2f} |" for name, t in stages.items()]
    lines += ["", "| step rate | workers needed |", "|---|---|"]
    lines += [f"| {name} ({r:.0f} samples/s) | {math.ceil(r / rate)} |" for name, r in rates.items()]
    print("\n".join(lines))
    return {"samples_per_s_per_worker": rate, "stages_s_per_sample": stages}


if __name__ == "__main__":
    main()
