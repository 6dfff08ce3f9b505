"""Hard negatives per second per worker: the rule generator on real captions, side by side.

A DataLoader worker runs the generator in its collator for every anchor (K = 3 by
default), so its rate bounds how many anchors a worker can feed per second. This script
times ``HardNegativeGenerator.generate`` over real captions shipped with the package (the
SugarCrepe positives and the VALSE COCO captions) in one process, a fresh generator per
round (no warm cache), and reports negatives/s and captions/s of CPU time (process time,
so a loaded machine inflates it less than wall time).

``--baseline-src DIR`` (repeatable) times another checkout's generator (``DIR`` holds its
``read_trainer`` package, e.g. an extracted older commit) in a child process, rounds
alternating with this one's, and prints the ratios: all run on the same machine at the
same time, which is what makes the ratios meaningful on a shared machine.

    python benchmarks/bench_negatives.py
    git archive <base-commit> read_trainer | tar -x -C /tmp/base
    python benchmarks/bench_negatives.py --baseline-src /tmp/base --baseline-src /tmp/other --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def real_captions(limit: int | None = None) -> list[str]:
    """SugarCrepe positives then VALSE captions (COCO), deduplicated, in a fixed order."""
    from read_trainer.evaluation.bundled import bundled_data_root

    root = bundled_data_root()
    captions, seen = [], set()
    sources = [(p, "caption") for p in sorted((root / "sugarcrepe").glob("*.json"))]
    sources += [(root / "valse" / f"{piece}.json", "caption") for piece in ("foil-it", "relations")]
    for path, field in sources:
        for row in json.loads(path.read_text()).values():
            if row[field] not in seen:
                seen.add(row[field])
                captions.append(row[field])
    return captions[:limit]


def time_round(captions: list[str], k: int) -> tuple[float, int]:
    """CPU seconds and negatives made for one pass over ``captions`` with a fresh generator."""
    from read_trainer.data.negatives import HardNegativeGenerator

    generator = HardNegativeGenerator(seed=2025)
    start = time.process_time()
    made = sum(len(generator.generate(c, k)) for c in captions)
    return time.process_time() - start, made


def _child_round(src: str, limit: int | None, k: int) -> tuple[float, int]:
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); "
        "sys.path.insert(1, sys.argv[2]); import bench_negatives as b; "
        "print(json.dumps(b.time_round(b.real_captions(json.loads(sys.argv[3])), int(sys.argv[4]))))"
    )
    env = {**os.environ, "PYTHONPATH": src}
    out = subprocess.run([sys.executable, "-c", code, src, str(Path(__file__).parent), json.dumps(limit), str(k)],
                         capture_output=True, text=True, env=env, check=True).stdout
    seconds, made = json.loads(out)
    return seconds, made


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k", type=int, default=3, help="Negatives per caption.")
    parser.add_argument("--rounds", type=int, default=3, help="Timed passes over the captions (median).")
    parser.add_argument("--limit", type=int, default=None, help="Use only the first N captions.")
    parser.add_argument("--baseline-src", action="append", default=[],
                        help="Folder holding another read_trainer package to time side by side (repeatable).")
    args = parser.parse_args(argv)

    captions = real_captions(args.limit)
    variants = {"this checkout": lambda: time_round(captions, args.k)}
    for src in args.baseline_src:
        variants[Path(src).name] = lambda src=src: _child_round(src, args.limit, args.k)
    times: dict[str, list[float]] = {name: [] for name in variants}
    made: dict[str, int] = {}
    for _ in range(args.rounds):
        for name, run in variants.items():  # alternate, so load drifts hit both alike
            seconds, count = run()
            times[name].append(seconds)
            made[name] = count
    print(f"{len(captions)} captions, K = {args.k}, {args.rounds} rounds (median CPU time per round)")
    rates, caption_rates = {}, {}
    for name in variants:
        seconds = statistics.median(times[name])
        rates[name] = made[name] / seconds
        caption_rates[name] = len(captions) / seconds
        print(f"  {name:<14} {made[name]:>6} negatives in {seconds:6.2f} s CPU: "
              f"{rates[name]:8.0f} negatives/s, {len(captions) / seconds:7.0f} captions/s per worker")
    for name in rates:
        if name != "this checkout":
            print(f"  this / {name}: negatives/s x{rates['this checkout'] / rates[name]:.2f}, "
                  f"captions/s x{caption_rates['this checkout'] / caption_rates[name]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
