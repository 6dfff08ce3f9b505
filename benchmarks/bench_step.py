"""Training-step speed, peak memory and op counts: NegCLIP vs our READ step vs the reference's step pattern.

The variants and their inputs are defined in ``step_setup.py``. Each variant is built
and timed in its own process (one allocator, one set of compiled graphs each): at least
5 warm-up steps, then at least 10 timed steps on batches that cycle through 20 seeded
COCO-length batches; the report gives the steady-state median. Timing covers forward,
backward(s), gradient clipping and the optimizer step (not data loading: collation runs
in DataLoader workers, see ``bench_collator.py``). Peak memory is measured in the same
child (CUDA: ``max_memory_allocated``; CPU: the child's peak RSS, with its RSS before
the model was built). FLOPs are counted with ``FlopCounterMode`` on one step without
gradient checkpointing (model FLOPs, no recomputation) and give the model FLOP
utilisation on GPUs.

``--count-ops`` runs on any machine: per variant, over 20 steps (forward + backward;
``--count-steps``), the aten ops, the non-view ops and the host syncs per step
(``read_trainer.op_count``), and the number of distinct input shape signatures of the
20 batches.

    python benchmarks/bench_step.py                       # tiny CPU config (see --help)
    python benchmarks/bench_step.py --count-ops --reference-scale --tiny-width   # op counts, any machine
    python benchmarks/bench_step.py --reference-scale     # ViT-B/32 + T5-v1.1-large, batch 256, bf16, GPU
    python benchmarks/bench_step.py --reference-scale --dry-run   # same code path, tiny batch/depth, any machine
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, replace

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from step_setup import (  # noqa: E402
    COMPILED,
    EXTRA_VARIANTS,
    REFERENCE,
    TINY,
    VARIANTS,
    Scale,
    batch_kind,
    build_models,
    build_variant,
    make_batches,
    to_device,
)

from read_trainer.device_settings import torch_cpu_settings  # noqa: E402
from read_trainer.op_count import OpCounter, shape_signature  # noqa: E402

PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0}  # dense
DISTINCT_BATCHES = 20  # seeds the timed and counted steps cycle through

# -- measurement -----------------------------------------------------------------------------
def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def count_flops(step, batch, scale: Scale) -> float:
    """Model FLOPs of one step: counted without checkpointing (no recomputation).

    Eager even for a compiled variant: the counter is a dispatch mode, which a fullgraph
    compiled call refuses to run under, and model FLOPs do not depend on compilation.
    """
    if scale.checkpointing:
        step.set_checkpointing(False)
    with torch.compiler.set_stance("force_eager"), FlopCounterMode(display=False) as counter:
        step(batch)
    if scale.checkpointing:
        step.set_checkpointing(True)
    return float(counter.get_total_flops())


def _proc_status_mb(key: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process, in MB (Linux).

    VmHWM, not ``getrusage``'s ru_maxrss: a spawned child's ru_maxrss starts from its
    parent's RSS at fork time (and survives exec), so it would report the parent's peak.
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {key} in /proc/self/status")


@contextmanager
def training_settings(device):
    """On a CPU, what CPU training runs under (denormals flushed), at the threads already set."""
    if device.type != "cpu":
        yield
        return
    with torch_cpu_settings(torch.get_num_threads()):
        yield


def _variant_child(name: str, scale_dict: dict, device_name: str, warmup: int, steps: int, memory: bool,
                   queue) -> None:
    with training_settings(torch.device(device_name)):
        _time_variant(name, scale_dict, device_name, warmup, steps, memory, queue)


def _time_variant(name: str, scale_dict: dict, device_name: str, warmup: int, steps: int, memory: bool,
                  queue) -> None:
    """Build one variant in a fresh process; time its steady-state steps, peak memory and FLOPs."""
    scale, device = Scale(**scale_dict), torch.device(device_name)
    baseline = _proc_status_mb("VmRSS")
    clip, t5 = build_models(scale)
    batches = [to_device(make_batches(scale, seed)[batch_kind(name, device)], device) for seed in range(DISTINCT_BATCHES)]
    with tempfile.TemporaryDirectory() as workdir:
        step = build_variant(name, scale, clip, t5, device, workdir)
        del clip, t5  # the variant holds its own copies; the originals would inflate the RSS
        built = _proc_status_mb("VmRSS")
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        times, cpu_times = [], []
        for i in range(warmup + steps):
            batch = batches[i % len(batches)]
            _sync(device)
            start, cpu_start = time.perf_counter(), time.process_time()
            step(batch)
            _sync(device)
            if i >= warmup:
                times.append(time.perf_counter() - start)
                cpu_times.append(time.process_time() - cpu_start)
        result = {"variant": name, "times": times, "cpu_times": cpu_times, "rss_before_mb": baseline,
                  "rss_after_build_mb": built, "peak_rss_mb": _proc_status_mb("VmHWM")}
        if device.type == "cuda":
            result["peak_cuda_gb"] = torch.cuda.max_memory_allocated(device) / 2**30
            result["peak_cuda_reserved_gb"] = torch.cuda.max_memory_reserved(device) / 2**30
        if memory:  # after the timed steps: a step without checkpointing would raise the peak
            result["flops_per_step"] = count_flops(step, batches[0], scale)
    queue.put(result)


def _in_child(target, *args):
    context = mp.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=target, args=(*args, queue))
    child.start()
    while True:  # a child that dies never answers: do not wait for it forever
        try:
            result = queue.get(timeout=5)
            break
        except Exception:  # queue.Empty
            if not child.is_alive():
                raise RuntimeError(f"{target.__name__}{args[:1]} failed (exit code {child.exitcode})") from None
    child.join()
    return result


def measure(scale: Scale, device, warmup: int, steps: int, memory: bool, variants) -> dict[str, dict]:
    """Every variant in its own process, one after the other."""
    results = {}
    for name in variants:
        results[name] = _in_child(_variant_child, name, asdict(scale), str(device), warmup, steps, memory)
        times = results[name]["times"]
        print(f"{name}: median {statistics.median(times):.3f} s/step over {len(times)} steps "
              f"(min {min(times):.3f}, max {max(times):.3f})", flush=True)
    return results


def _count_child(name: str, scale_dict: dict, device_name: str, steps: int, queue) -> None:
    with training_settings(torch.device(device_name)):
        _count_variant(name, scale_dict, device_name, steps, queue)


def _count_variant(name: str, scale_dict: dict, device_name: str, steps: int, queue) -> None:
    scale, device = Scale(**scale_dict), torch.device(device_name)
    clip, t5 = build_models(scale)
    batches = [to_device(make_batches(scale, seed)[batch_kind(name, device)], device) for seed in range(DISTINCT_BATCHES)]
    with tempfile.TemporaryDirectory() as workdir:
        step = build_variant(name, scale, clip, t5, device, workdir)
        step.forward_backward(batches[-1])  # lazy initialisation outside the count
        # The counter is a dispatch mode, under which a fullgraph compiled call refuses to run:
        # a compiled variant is counted as its eager step (the ops it compiles).
        with torch.compiler.set_stance("force_eager"), OpCounter() as counter:
            for i in range(steps):
                step.forward_backward(batches[i % len(batches)])
    signatures = {shape_signature(batch) for batch in batches}  # over the 20 batches, whatever ``steps``
    queue.put({"variant": name, "aten_ops": counter.ops / steps, "non_view_ops": counter.non_view_ops / steps,
               "host_syncs": counter.host_syncs / steps, "syncs_by_op": dict(counter.syncs_by_op),
               "shape_signatures": len(signatures), "steps": steps})


def count_ops(scale: Scale, device, variants, steps: int, command: str) -> dict:
    results = {name: _in_child(_count_child, name, asdict(scale), str(device), steps) for name in variants}
    lines = [f"command: {command}",
             f"scale: {scale.name}, batch {scale.batch_size}, bf16 {scale.bf16}, checkpointing {scale.checkpointing}, "
             f"eager, {steps} steps per variant (forward + backward)", "",
             "| variant | aten ops/step | non-view ops/step | host syncs/step | distinct shapes |",
             "|---|---|---|---|---|"]
    for name, r in results.items():
        name += " (eager)" if name in COMPILED else ""
        lines.append(f"| {name} | {r['aten_ops']:,.0f} | {r['non_view_ops']:,.0f} | {r['host_syncs']:.1f} | "
                     f"{r['shape_signatures']} |")
    print("\n".join(lines))
    return {"scale": asdict(scale), "counts": results}


def profile_steps(scale: Scale, device, workdir: str, variants, out_dir: str, rows: int = 25) -> None:
    """One warm-up and one profiled step per variant (torch.profiler, CPU + CUDA): writes
    ``<out_dir>/profile_<variant>.txt`` with the ops sorted by self device time and by self
    CPU time, to find where a variant's step time goes (kernels, launches, synchronisation)."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    clip, t5 = build_models(scale)
    steps = {name: build_variant(name, scale, clip, t5, device, workdir) for name in variants}
    del clip, t5
    os.makedirs(out_dir, exist_ok=True)
    batches = make_batches(scale, seed=0)
    for name in variants:
        batch = to_device(batches[batch_kind(name, device)], device)
        steps[name](batch)  # warm-up: allocator, kernel selection
        _sync(device)
        with profile(activities=activities, record_shapes=False) as prof:
            steps[name](batch)
            _sync(device)
        table = prof.key_averages()
        sort_device = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
        text = (f"# {name}: by self device time\n{table.table(sort_by=sort_device, row_limit=rows)}\n"
                f"# {name}: by self CPU time\n{table.table(sort_by='self_cpu_time_total', row_limit=rows)}\n")
        path = os.path.join(out_dir, f"profile_{name}.txt")
        with open(path, "w") as f:
            f.write(text)
        print(f"profile of {name}: {path}", flush=True)


def count_flops_only(scale: Scale, device, variants, command: str) -> dict:
    """Model FLOPs per sample of one step of each variant (no timing, no memory children)."""
    clip, t5 = build_models(scale)
    batches = make_batches(scale, seed=1000)
    flops = {}
    with tempfile.TemporaryDirectory() as workdir:
        for name in variants:
            step = build_variant(name, scale, clip, t5, device, workdir)
            flops[name] = count_flops(step, to_device(batches[batch_kind(name, device)], device), scale) / scale.batch_size
            del step
    lines = [f"command: {command}", f"scale: {scale.name}, batch {scale.batch_size}: model GFLOP per sample "
             "(one step, no recomputation)"]
    lines += [f"  {name}: {value / 1e9:.2f}" for name, value in flops.items()]
    lines += [f"FLOP ratio {a}/{b}: {flops[a] / flops[b]:.2f}x" for a, b in ratio_pairs(flops)]
    print("\n".join(lines))
    return {"scale": asdict(scale), "flops_per_sample": flops}


def peak_tflops(device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def ratio_pairs(names) -> list[tuple[str, str]]:
    """The ratios worth reporting among the variants present: reference/read, read/negclip, extras/read."""
    pairs = [("reference", "read"), ("read", "negclip")] + [(n, "read") for n in names if n not in VARIANTS]
    pairs += [(n, "negclip") for n in names if n not in VARIANTS]
    return [(a, b) for a, b in pairs if a in names and b in names]


def report(scale: Scale, device, results: dict, command: str) -> str:
    b = scale.batch_size
    median = {n: statistics.median(r["times"]) for n, r in results.items()}
    cpu_median = {n: statistics.median(r["cpu_times"]) for n, r in results.items()}
    on_cpu = device.type == "cpu"

    def ratio(x, y):
        text = f"{median[x] / median[y]:.2f}x wall"
        return text + (f", {cpu_median[x] / cpu_median[y]:.2f}x CPU time" if on_cpu else "")

    peak = peak_tflops(device)
    steps = len(next(iter(results.values()))["times"])
    lines = [f"command: {command}", f"device: {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}"
             f" (torch {torch.__version__}, {torch.get_num_threads()} threads)",
             f"scale: {scale.name}, batch {b}, bf16 {scale.bf16}, gradient checkpointing {scale.checkpointing}, "
             f"{steps} timed steps per variant, each variant in its own process", "",
             "| variant | s/step (median) | samples/s | " + ("CPU s/step | " if on_cpu else "") + "GFLOP/sample | "
             + ("MFU | peak GPU mem (GB) |" if not on_cpu else "peak RSS (MB) [before model] |"),
             "|---|---|---|---|---|---|"]
    for name, r in results.items():
        flops = r.get("flops_per_step", float("nan"))
        label = f"({'abc'[VARIANTS.index(name)]}) {name}" if name in VARIANTS else f"(b') {name}"
        cells = [label, f"{median[name]:.3f}", f"{b / median[name]:.1f}"]
        cells += [f"{cpu_median[name]:.3f}"] if on_cpu else []
        cells += [f"{flops / b / 1e9:.2f}"]
        if device.type == "cuda":
            mfu = flops / median[name] / (peak * 1e12) if peak else float("nan")
            cells += [f"{100 * mfu:.1f}%", f"{r['peak_cuda_gb']:.1f}"]
        else:
            cells += [f"{r['peak_rss_mb']:.0f} [{r['rss_before_mb']:.0f}]"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "time ratios (steady-state medians):"]
    lines += [f"  {a}/{b}: {ratio(a, b)}" for a, b in ratio_pairs(results)]
    if all("flops_per_step" in r for r in results.values()):
        flops = {n: r["flops_per_step"] for n, r in results.items()}
        lines += [f"FLOP ratio {a}/{b}: {flops[a] / flops[b]:.2f}x" for a, b in ratio_pairs(flops)]
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference-scale", action="store_true",
                        help="ViT-B/32 + T5-v1.1-large, batch 256, bf16, gradient checkpointing (a GPU machine)")
    parser.add_argument("--tiny-width", action="store_true",
                        help="keep the configuration's depths at width 32 and batch 8 (op counts do not depend on "
                        "width: --count-ops of the reference architecture on any machine)")
    parser.add_argument("--dry-run", action="store_true",
                        help="prove the code path cheaply: batch 4, 2 layers per stack, 5 warm-up + 10 timed steps")
    parser.add_argument("--batch-size", type=int, help="override the configuration's batch size")
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None, help="override bf16")
    parser.add_argument("--checkpointing", action=argparse.BooleanOptionalAction, default=None,
                        help="override gradient checkpointing")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per variant (at least 10)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps per variant first (at least 5)")
    parser.add_argument("--no-memory", action="store_true", help="skip the FLOP count (the peak memory is free)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int,
                        help="torch CPU threads (on a shared CPU, 1 avoids threads stalling on a descheduled peer)")
    parser.add_argument("--with-static", action="store_true",
                        help="add (b') read-static: the GPU's step settings (16-token buckets, one pass)")
    parser.add_argument("--with-grouped", action="store_true",
                        help="add (b') read-grouped: the CPU's step settings (padding to the longest row, 4 groups)")
    parser.add_argument("--with-compile", action="store_true",
                        help="add (b') read-compiled: read-static under torch.compile")
    parser.add_argument("--compile-backend", default="inductor",
                        help="torch.compile backend of read-compiled ('eager' checks the code path without codegen)")
    parser.add_argument("--variants",
                        help=f"comma-separated variants to run, any of {', '.join(VARIANTS + EXTRA_VARIANTS)}")
    parser.add_argument("--count-ops", action="store_true",
                        help="count aten ops, non-view ops, host syncs and distinct shapes over 20 steps per variant")
    parser.add_argument("--count-steps", type=int, default=DISTINCT_BATCHES,
                        help="steps per variant counted by --count-ops (cycling through the 20 batches; the distinct "
                        "shapes are always those of the 20)")
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--profile", metavar="DIR",
                        help="instead of timing, profile one step per variant (torch.profiler) into DIR")
    parser.add_argument("--flops-only", action="store_true",
                        help="only count each variant's model FLOPs on one step (any device; no timing)")
    args = parser.parse_args(argv)

    scale = REFERENCE if args.reference_scale else TINY
    if args.tiny_width:
        scale = replace(scale, name=scale.name + "-tiny-width", image_size=64, vision_width=32, vision_heads=2,
                        text_width=32, text_heads=2, projection_dim=32, t5_d_model=32, t5_d_ff=88, t5_heads=4,
                        t5_vocab=1000, batch_size=8)
    if args.dry_run:
        scale = replace(scale, name=scale.name + "-dry-run", batch_size=4, vision_layers=2, text_layers=2, t5_layers=2)
    if args.batch_size:
        scale = replace(scale, batch_size=args.batch_size)
    if args.bf16 is not None:
        scale = replace(scale, bf16=args.bf16)
    if args.checkpointing is not None:
        scale = replace(scale, checkpointing=args.checkpointing)
    device = torch.device(args.device)
    if args.reference_scale and device.type != "cuda" and not (args.dry_run or args.flops_only or args.tiny_width):
        raise SystemExit("--reference-scale needs a GPU (add --dry-run or --tiny-width to run it on CPU)")
    if not args.count_ops and (args.steps < 10 or args.warmup < 5):
        raise SystemExit("--steps must be >= 10 and --warmup >= 5 (steady state)")
    command = "python benchmarks/bench_step.py " + " ".join(sys.argv[1:] if argv is None else argv)

    scale = replace(scale, compile_backend=args.compile_backend)
    variants = (list(VARIANTS) + ["read-static"] * args.with_static + ["read-grouped"] * args.with_grouped
                + ["read-compiled"] * args.with_compile)
    if args.variants:
        variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS + EXTRA_VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS + EXTRA_VARIANTS)}")
    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # inherited by the children
    if args.count_ops:
        result = count_ops(scale, device, variants, args.count_steps, command)
    elif args.flops_only:
        with training_settings(device):
            result = count_flops_only(scale, device, variants, command)
    elif args.profile:
        with tempfile.TemporaryDirectory() as workdir, training_settings(device):
            profile_steps(scale, device, workdir, variants, args.profile)
        return {}
    else:
        results = measure(scale, device, args.warmup, args.steps, not args.no_memory, variants)
        text = report(scale, device, results, command)
        print("\n" + text)
        result = {"scale": asdict(scale), "device": str(device), "results": results, "report": text}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
