"""Peak host memory (RSS) of loading READ's models at real size and of its first training steps.

The reference recipe's models, with random weights, from the hub configs (no download):
openai/clip-vit-base-patch32 (151M parameters) and google/t5-v1_1-large (783M; its decoder,
shared embedding and head are 475M of them), written once as local checkpoints (fp32, as on
the hub; the T5 in 1 GB shards unless ``--single-file``). Then, in a fresh process for each
measurement:

1. ``ReadModel.from_pretrained(clip, t5, decoder_dtype=...)``, as ``run_read.py`` builds it;
2. ``--steps`` training steps of the reference recipe's step on the CPU (bf16 autocast,
   activation checkpointing, both READ losses, AdamW), batch ``--batch-size``.

Reported: the process's RSS before loading, its peak (``VmHWM``) while loading, its RSS
after loading, its peak during the steps (the peak is reset after loading) and its RSS
after them (the lean decoder fuses its frozen weights in the first step; AdamW's state
exists from the first step on). ``--code DIR`` imports ``read_trainer`` from another checkout (e.g. an older
commit, ``git archive <commit> read_trainer | tar -x -C DIR``) to compare before/after
with the same script. GPU memory is not measured here.

    python benchmarks/bench_memory.py --workdir /tmp/read-memory           # writes ~3.7 GB there once
    python benchmarks/bench_memory.py --workdir /tmp/read-memory --code /tmp/read-old
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SHARD_BYTES = 1 << 30


def _status_mb(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {key} in /proc/self/status")


# -- writing the checkpoints (a separate process: its memory is not the measured one) ----------
def write_checkpoints(workdir: str, single_file: bool) -> tuple[str, str]:
    clip_dir, t5_dir = os.path.join(workdir, "clip-vit-base-patch32"), os.path.join(workdir, "t5-v1_1-large")
    if not os.path.isfile(os.path.join(clip_dir, "config.json")):
        subprocess.run([sys.executable, __file__, "--write-clip", clip_dir], check=True)
    if not os.path.isfile(os.path.join(t5_dir, "config.json")):
        subprocess.run([sys.executable, __file__, "--write-t5", t5_dir] + ["--single-file"] * single_file, check=True)
    return clip_dir, t5_dir


def _write_clip(folder: str) -> None:
    sys.path.insert(0, HERE)
    from step_setup import REFERENCE, build_models
    from transformers import CLIPImageProcessor

    clip, _ = build_models(REFERENCE, with_t5=False)
    clip.save_pretrained(folder)
    CLIPImageProcessor(crop_size=224, size={"shortest_edge": 224}).save_pretrained(folder)


def _write_t5(folder: str, single_file: bool) -> None:
    """T5-v1.1-large's tensors, random, written shard by shard (never the whole model in memory)."""
    import torch
    from safetensors.torch import save_file

    sys.path.insert(0, HERE)
    from step_setup import REFERENCE, t5_config
    from transformers import T5ForConditionalGeneration

    config = t5_config(REFERENCE)
    with torch.device("meta"):
        shapes = {name: tuple(t.shape) for name, t in T5ForConditionalGeneration(config).state_dict().items()}
    # As the hub stores a v1.1 checkpoint: the shared embedding once, its own lm_head.
    for tied in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight"):
        shapes.pop(tied, None)
    generator = torch.Generator().manual_seed(0)
    os.makedirs(folder, exist_ok=True)
    shards, current, size = [], {}, 0
    for name, shape in shapes.items():
        if "layer_norm" in name:
            tensor = torch.ones(shape)
        else:
            tensor = torch.randn(shape, generator=generator) * (0.05 if "relative_attention_bias" not in name else 1.0)
        current[name] = tensor
        size += tensor.numel() * 4
        if not single_file and size >= SHARD_BYTES:
            shards.append(current)
            current, size = {}, 0
            _save_shard(shards, folder, save_file)
    shards.append(current)
    _save_shard(shards, folder, save_file, last=True, single_file=single_file)
    config.save_pretrained(folder)


def _save_shard(shards: list, folder: str, save_file, last: bool = False, single_file: bool = False) -> None:
    if single_file:
        save_file(shards[-1], os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})
        return
    index = len(shards)
    save_file(shards[-1], os.path.join(folder, f"model-{index:05d}.safetensors"), metadata={"format": "pt"})
    shards[-1] = {name: f"model-{index:05d}.safetensors" for name in shards[-1]}  # keep names only
    if last:
        weight_map = {name: file for shard in shards for name, file in shard.items()}
        with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {}, "weight_map": weight_map}, f, indent=1)


# -- one measurement -------------------------------------------------------------------------
def _measure(options: dict) -> dict:
    if options["code"]:
        sys.path.insert(0, options["code"])
    import torch

    torch.set_num_threads(options["threads"])
    baseline = _status_mb("VmRSS")
    from read_trainer.modeling import ReadModel

    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[options["dtype"]]
    start = time.perf_counter()
    model = ReadModel.from_pretrained(options["clip"], options["t5"], decoder_dtype=dtype)
    result = {"code": options["code"] or "this checkout", "load_s": time.perf_counter() - start,
              "rss_before_mb": baseline,
              "peak_after_load_mb": _status_mb("VmHWM"), "rss_after_load_mb": _status_mb("VmRSS")}
    if options["steps"]:
        # Peak of the steps alone: Linux resets the peak (VmHWM) to the current RSS on "5" > clear_refs.
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        result["peak_during_steps_mb"] = _train(model, options, torch)
        result["rss_after_steps_mb"] = _status_mb("VmRSS")
    return result


def _train(model, options: dict, torch) -> float:
    import tempfile
    from dataclasses import replace

    sys.path.insert(0, HERE)
    from step_setup import REFERENCE, make_batches
    from transformers import CLIPImageProcessor

    from read_trainer.config import ReadConfig
    from read_trainer.trainer import ReadTrainer

    scale = replace(REFERENCE, batch_size=options["batch_size"])
    model.length_groups = 4  # the CPU's step settings
    model.activation_checkpointing_enable()
    with tempfile.TemporaryDirectory() as workdir:
        args = ReadConfig(output_dir=workdir, report_to="none", use_cpu=True, bf16=options["dtype"] == "bf16")
        trainer = ReadTrainer(model=model, args=args, processing_class=CLIPImageProcessor(),
                              data_collator=lambda rows: rows)
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.1)
        torch.set_flush_denormal(True)
        for seed in range(options["steps"]):
            batch = make_batches(scale, seed)["read-grouped"]
            with trainer.compute_loss_context_manager():
                loss = trainer.compute_loss(model, dict(batch))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    return _status_mb("VmHWM")


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", required=False, default=os.path.join("outputs", "bench-memory"),
                        help="where the random-weight checkpoints are written (once; ~3.7 GB)")
    parser.add_argument("--single-file", action="store_true", help="write the T5 as one model.safetensors")
    parser.add_argument("--dtype", choices=["bf16", "fp32"], default="bf16",
                        help="the frozen decoder's dtype (bf16: the reference recipe's decoder_dtype=auto with bf16)")
    parser.add_argument("--steps", type=int, default=1, help="training steps after loading (0: loading only)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--code", action="append", default=None,
                        help="a folder to import read_trainer from (repeat to compare several); default: this checkout")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--write-clip", help=argparse.SUPPRESS)
    parser.add_argument("--write-t5", help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.write_clip:
        return _write_clip(args.write_clip)
    if args.write_t5:
        return _write_t5(args.write_t5, args.single_file)
    if args.child:
        print("RESULT " + json.dumps(_measure(json.loads(args.child))), flush=True)
        return []
    clip_dir, t5_dir = write_checkpoints(args.workdir, args.single_file)
    results = []
    for code in args.code or [""]:
        options = {"clip": clip_dir, "t5": t5_dir, "dtype": args.dtype, "steps": args.steps,
                   "batch_size": args.batch_size, "threads": args.threads, "code": os.path.abspath(code) if code else ""}
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (options["code"], os.environ.get("PYTHONPATH"))
                                                          if p))
        out = subprocess.run([sys.executable, __file__, "--child", json.dumps(options)], env=env, check=True,
                             stdout=subprocess.PIPE, text=True).stdout
        result = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])
        results.append(result)
        print(json.dumps(result), flush=True)
    lines = [f"python benchmarks/bench_memory.py {' '.join(sys.argv[1:] if argv is None else argv)}",
             f"decoder dtype {args.dtype}; {args.steps} CPU training step(s) at batch {args.batch_size}; MB",
             "| code | load (s) | RSS before | peak while loading | RSS after loading | peak during steps | "
             "RSS after steps |", "|---|---|---|---|---|---|---|"]
    nan = float("nan")
    for r in results:
        lines.append(f"| {r['code']} | {r['load_s']:.1f} | {r['rss_before_mb']:,.0f} | {r['peak_after_load_mb']:,.0f} | "
                     f"{r['rss_after_load_mb']:,.0f} | {r.get('peak_during_steps_mb', nan):,.0f} | "
                     f"{r.get('rss_after_steps_mb', nan):,.0f} |")
    print("\n".join(lines))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
