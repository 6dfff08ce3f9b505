"""Batched evaluation suite vs a one-sample-at-a-time loop: same model, same data, one run.

    .venv/bin/python benchmarks/bench_eval.py                       # tiny CLIP, full SugarCrepe + SugarCrepe++
    .venv/bin/python benchmarks/bench_eval.py --model openai/clip-vit-base-patch32 --device cuda --dtype bf16
    .venv/bin/python benchmarks/bench_eval.py --vit_b32 --device cuda --num_workers 8    # offline ViT-B/32

Uses the official annotation files under ``--data_root`` with stand-in JPEGs
(COCO-sized by default, so image decoding costs what it costs on real data) written to a
temporary folder. The loop is ``read_trainer.evaluation.one_at_a_time.decide_one_at_a_time``:
per item, decode its image(s), run the processor, embed, compare (how reference
evaluators score). The batched path is ``run_suite`` with a ``ClipEmbedder``. Both
apply the same rules; the script reports wall time of each, the speed ratio, and
whether every decision matches. Exit status 1 if any decision differs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from read_trainer.evaluation.embedding import ClipEmbedder, resolve_dtype
from read_trainer.evaluation.one_at_a_time import decide_one_at_a_time
from read_trainer.evaluation.suite import load_named, run_suite

REPO = Path(__file__).resolve().parents[1]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="CLIPModel id/folder (default: a tiny random CLIP written here)")
    p.add_argument("--vit_b32", action="store_true",
                   help="random-weight CLIP ViT-B/32 (openai/clip-vit-base-patch32's shapes and image processor) "
                        "with a BPE tokenizer trained here on the benchmarks' captions: the real model's cost "
                        "without downloading it")
    p.add_argument("--bpe_merges", type=int, default=8000, help="merges of the --vit_b32 tokenizer")
    p.add_argument("--tiny_width", type=int, default=64, help="hidden size of the default tiny CLIP")
    p.add_argument("--tiny_layers", type=int, default=2, help="layers per tower of the default tiny CLIP")
    p.add_argument("--benchmarks", nargs="+", default=["sugarcrepe", "sugarcrepe_pp_itt", "sugarcrepe_pp_tot"],
                   help="any of sugarcrepe, sugarcrepe_pp_itt, sugarcrepe_pp_tot, valse")
    p.add_argument("--data_root", default=None,
                   help="benchmark annotation folder (default: the annotation files shipped with the package)")
    p.add_argument("--limit", type=int, default=None, help="items per subset (default: all)")
    p.add_argument("--image_size", type=int, nargs=2, default=[640, 480], help="stand-in JPEG width height")
    p.add_argument("--batch_size", type=int, default=256)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--num_workers", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--output", default=None, help="also write the numbers to this JSON file")
    return p.parse_args()


def referenced_images(data_root: Path, names: list[str]) -> set[str]:
    files = set()
    for name in names:
        folder = {"valse": "valse", "sugarcrepe": "sugarcrepe"}.get(name, "sugarcrepe_pp")
        for path in (data_root / folder).glob("*.json"):
            rows = json.loads(path.read_text())
            rows = rows.values() if isinstance(rows, dict) else rows
            files |= {r.get("filename") or r["image_file"] for r in rows}
    return files


def write_stand_ins(root: Path, files: set[str], size: tuple[int, int]) -> None:
    """Tinted noisy gradients saved as JPEG: decoding costs what a photo of that size costs
    (a flat colour would decode unrealistically fast). One noise field, shifted per image."""
    rng = np.random.default_rng(0)
    w, h = size
    gradient = np.linspace(0, 127, w, dtype=np.float32)[None, :, None]
    noise = rng.normal(0, 12, (h, w, 3)).astype(np.float32)
    for i, name in enumerate(sorted(files)):
        tint = rng.integers(0, 128, 3).astype(np.float32)
        pixels = gradient + tint + np.roll(noise, 7 * i, axis=1)
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(root / name, quality=90)


def write_random_vit_b32(folder: Path, corpus: set[str], num_merges: int) -> Path:
    """openai/clip-vit-base-patch32's architecture (transformers' CLIPConfig defaults) with
    random weights. The tokenizer is BPE trained on ``corpus`` so captions split into about
    as many tokens as with CLIP's 49k vocabulary; the embedding table is smaller, which does
    not change the cost of a forward pass."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    from read_trainer.demo.tiny_models import build_clip_tokenizer

    tokenizer = build_clip_tokenizer(folder, sorted(corpus), num_merges)
    config = CLIPConfig(text_config=dict(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id),
                        vision_config=dict(image_size=224, patch_size=32), projection_dim=512)
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(folder)
    image_processor = CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224})
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def autocast_for(device: str, dtype_name: str):
    """The loop runs under the same autocast as the suite."""
    dtype = resolve_dtype(dtype_name)
    return torch.autocast(torch.device(device).type, dtype=dtype, enabled=dtype is not None)


def main() -> int:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from transformers import CLIPModel, CLIPProcessor

    from read_trainer.evaluation.bundled import bundled_data_root

    if args.data_root is None:
        args.data_root = str(bundled_data_root())
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        image_dir = tmp / "images"
        image_dir.mkdir()
        files = referenced_images(Path(args.data_root), args.benchmarks)
        print(f"writing {len(files)} stand-in JPEGs", flush=True)
        t = time.perf_counter()
        write_stand_ins(image_dir, files, tuple(args.image_size))
        print(f"wrote {len(files)} stand-in {args.image_size[0]}x{args.image_size[1]} JPEGs "
              f"in {time.perf_counter() - t:.1f}s")
        tasks = [load_named(n, args.data_root, image_dir, args.limit) for n in args.benchmarks]
        n_items = sum(len(t) for t in tasks)
        model_path = args.model
        if args.vit_b32:
            corpus = {text for task in tasks for text in task.all_texts()}
            model_path = str(write_random_vit_b32(tmp / "clip-vit-b32", corpus, args.bpe_merges))
        elif model_path is None:
            from read_trainer.demo.tiny_models import TinyClipSpec, write_tiny_clip

            spec = TinyClipSpec(hidden_size=args.tiny_width, intermediate_size=2 * args.tiny_width,
                                num_layers=args.tiny_layers, num_heads=max(1, args.tiny_width // 16),
                                projection_dim=max(16, args.tiny_width // 2))
            model_path = str(write_tiny_clip(tmp / "clip", spec=spec))
        model = CLIPModel.from_pretrained(model_path).to(args.device).eval()
        processor = CLIPProcessor.from_pretrained(model_path)
        print(f"model ready: {model_path}; {n_items} items", flush=True)

        # Untimed warm-up of both paths on a few items (CUDA context, cuBLAS handles, kernel
        # selection, first-call Python imports), so neither side pays one-off costs in its time.
        warm = [load_named(n, args.data_root, image_dir, 2) for n in args.benchmarks]
        run_suite(warm, ClipEmbedder(model, processor, batch_size=args.batch_size, dtype=args.dtype, progress=False))
        with autocast_for(args.device, args.dtype):
            for task in warm:
                decide_one_at_a_time(task, model, processor)

        t = time.perf_counter()
        batched = run_suite(tasks, ClipEmbedder(model, processor, batch_size=args.batch_size, dtype=args.dtype,
                                                num_workers=args.num_workers, progress=False))
        t_batched = time.perf_counter() - t
        print(f"batched suite: {n_items} items in {t_batched:.1f} s; now the one-at-a-time loop", flush=True)

        t = time.perf_counter()
        with autocast_for(args.device, args.dtype):
            looped = {task.name: decide_one_at_a_time(task, model, processor, progress=True) for task in tasks}
        t_loop = time.perf_counter() - t

    rows, mismatches = [], 0
    for task in tasks:
        pairs = [(a, b) for s in task.subsets for a, b in zip(batched[task.name].decisions[s], looped[task.name][s])]
        diff = sum(a != b for a, b in pairs)
        mismatches += diff
        rows.append((task.name, len(task), len(set(task.all_texts())), len({i.key for i in task.all_images()}), diff,
                     batched[task.name].total))
    print(f"\nmodel: {model_path} ({sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters)  device: {args.device}  dtype: {args.dtype}  torch threads: "
          f"{torch.get_num_threads()}  batch: {args.batch_size}")
    print(f"{'benchmark':<20}{'items':>8}{'texts':>8}{'images':>8}{'differ':>8}{'total':>8}")
    for name, n, nt, ni, diff, total in rows:
        print(f"{name:<20}{n:>8}{nt:>8}{ni:>8}{diff:>8}{total:>8.1f}")
    ratio = t_loop / t_batched
    print(f"\nbatched suite:      {t_batched:8.1f} s  ({n_items / t_batched:8.0f} items/s)")
    print(f"one at a time loop: {t_loop:8.1f} s  ({n_items / t_loop:8.0f} items/s)")
    print(f"speed ratio: {ratio:.1f}x   decisions identical: {mismatches == 0} ({mismatches} of {n_items} differ)")
    if args.output:
        Path(args.output).write_text(json.dumps({
            "model": model_path, "device": args.device, "dtype": args.dtype, "threads": torch.get_num_threads(),
            "items": n_items, "batched_s": t_batched, "loop_s": t_loop, "ratio": ratio, "mismatches": mismatches,
        }, indent=2))
    return 0 if mismatches == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
