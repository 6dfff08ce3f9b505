"""Peak memory and step time of the READ step against ``embedding_chunk_size``.

Each chunk size is measured in a fresh Python process (``subprocess``; the launcher
imports no torch, so the child's ``getrusage`` peak starts from a small parent): the
step is ``ReadTrainer.training_step`` (the chunked step for a chunk size below the
batch, Trainer's one-shot step for 0) plus the AdamW step, on the COCO-length batches
of ``step_setup.py`` (variant (b), both READ losses, K = 3). Reported: median step time
(wall and process CPU time) after the warm-up, the peak RSS of the process (``resource.getrusage``, and its RSS
once the model and batches were built), and on CUDA ``max_memory_allocated``.

    python benchmarks/bench_chunking.py                                  # tiny CPU config, batch 128
    python benchmarks/bench_chunking.py --reference-scale --device cuda   # ViT-B/32 + T5-v1.1-large, batch 256
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def _child(options: dict) -> dict:
    """One chunk size: build, warm up, time; runs in its own process."""
    import resource
    import statistics
    import tempfile
    import time
    from dataclasses import replace

    import torch

    sys.path.insert(0, HERE)
    from step_setup import REFERENCE, TINY, build_models, make_batches, to_device
    from transformers import CLIPImageProcessor

    from read_trainer.config import ReadConfig
    from read_trainer.modeling import ReadModel
    from read_trainer.trainer import ReadTrainer

    torch.set_num_threads(options["threads"])
    scale = REFERENCE if options["reference_scale"] else TINY
    if options["batch_size"]:
        scale = replace(scale, batch_size=options["batch_size"])
    device = torch.device(options["device"])
    clip, t5 = build_models(scale)
    dtype = torch.bfloat16 if scale.bf16 else torch.float32
    model = ReadModel(clip, t5.decoder.to(dtype), t5.lm_head.to(dtype), t5.config, decoder_dropout=True)
    del t5
    if scale.checkpointing:
        model.activation_checkpointing_enable()
    with tempfile.TemporaryDirectory() as workdir:
        args = ReadConfig(output_dir=workdir, report_to="none", use_cpu=device.type == "cpu", bf16=scale.bf16,
                          num_hard_negatives=scale.num_negatives, embedding_chunk_size=options["chunk"])
        trainer = ReadTrainer(model=model, args=args, processing_class=CLIPImageProcessor(),
                              data_collator=lambda rows: rows)
        prepared = trainer.accelerator.prepare_model(trainer.model)
        trainer.current_gradient_accumulation_steps = 1  # set by Trainer's loop, which is not run here
        params = [p for p in prepared.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.1)
        batches = [to_device(make_batches(scale, seed)["read"], device) for seed in range(4)]
        built_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        times, cpu_times, losses = [], [], []
        for i in range(options["warmup"] + options["steps"]):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start, cpu_start = time.perf_counter(), time.process_time()
            loss = trainer.training_step(prepared, dict(batches[i % len(batches)]))
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if i >= options["warmup"]:
                times.append(time.perf_counter() - start)
                cpu_times.append(time.process_time() - cpu_start)
            losses.append(float(loss))
    result = {"chunk": options["chunk"], "batch": scale.batch_size, "scale": scale.name,
              "median_s": statistics.median(times), "times_s": times, "median_cpu_s": statistics.median(cpu_times),
              "losses": losses,
              "rss_after_build_mb": built_kb / 1024,
              "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device.type == "cuda":
        result["peak_cuda_gb"] = torch.cuda.max_memory_allocated(device) / 2**30
    return result


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference-scale", action="store_true", help="ViT-B/32 + T5-v1.1-large, batch 256, bf16")
    parser.add_argument("--batch-size", type=int, default=0, help="override the scale's batch size")
    parser.add_argument("--chunks", default="", help="comma-separated chunk sizes (0 = no chunking); "
                        "default: 0, B/2, B/4, B/8")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="write the raw results here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(json.loads(args.child))))
        return []

    batch = args.batch_size or (256 if args.reference_scale else 128)
    chunks = [int(c) for c in args.chunks.split(",")] if args.chunks else [0, batch // 2, batch // 4, batch // 8]
    results = []
    for chunk in chunks:
        options = dict(chunk=chunk, reference_scale=args.reference_scale, batch_size=args.batch_size,
                       device=args.device, warmup=args.warmup, steps=args.steps, threads=args.threads)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(HERE), os.environ.get("PYTHONPATH", "")]))
        done = subprocess.run([sys.executable, __file__, "--child", json.dumps(options)], capture_output=True,
                              text=True, env=env)
        if done.returncode != 0:
            raise SystemExit(f"chunk size {chunk} failed:\n{done.stderr[-4000:]}")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(_row(results[-1], results[0]), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


def _row(result: dict, baseline: dict) -> str:
    cuda = f" | {result['peak_cuda_gb']:.2f} GB" if "peak_cuda_gb" in result else ""
    return (f"| {result['chunk'] or 'off'} | {result['median_cpu_s']:.2f} | "
            f"{result['median_cpu_s'] / baseline['median_cpu_s']:.2f}x | {result['median_s']:.2f} "
            f"| {result['peak_rss_mb']:,.0f} | {result['rss_after_build_mb']:,.0f}{cuda} |")


if __name__ == "__main__":
    main()
