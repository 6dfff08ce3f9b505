"""Evaluate one or more CLIP checkpoints on the compositional suite (and retention checks).

    python recipes/run_evaluation.py --model openai/clip-vit-base-patch32 --model ./read-clip \
        --benchmarks paper --data_root ./benchdata --output ./eval_out --dtype bf16
    python recipes/run_evaluation.py --model ./read-clip      # SugarCrepe++ TOT, shipped annotations

Writes ``<output>/results.json`` and ``<output>/results.md`` (every number with its
averaging rule; the paper's six-number average when all six ran) and, with several
models, ``<output>/comparison.png``. ``--model`` takes any ``CLIPModel`` hub id or local
folder and can be repeated; ``--compare A B ...`` is the same as repeating it.
Benchmark names and set names (``paper``, ``compositional``, ``retention``, ``all``)
and the ``--data_root`` layout are documented in ``read_trainer/evaluation/suite.py``.
Without ``--data_root`` the SugarCrepe, SugarCrepe++ and VALSE annotations shipped with the
package are used (``read_trainer/evaluation/bundled.py``; images still come from
``--image_root``), and ``--benchmarks`` defaults to the text-only SugarCrepe++ TOT.
A mistake in the flags or files ends with one ``error:`` line; ``--debug`` keeps the traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from read_trainer.cli import ArgumentParser, run_recipe
from read_trainer.evaluation.bundled import default_data_root
from read_trainer.evaluation.protocol import PROTOCOLS, embedder_for
from read_trainer.evaluation.report import markdown_report, plot_comparison, write_results_json
from read_trainer.evaluation.suite import BENCHMARKS, SETS, expand_names, load_suite, run_suite
from read_trainer.resolve import resolve_id


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__)
    p.add_argument("--model", action="append", default=[], help="CLIPModel hub id or folder (repeatable)")
    p.add_argument("--compare", nargs="+", default=[], help="several models at once (same as repeated --model)")
    p.add_argument("--label", action="append", default=[],
                   help="display name per model, in order (default: the id or folder name)")
    p.add_argument("--benchmarks", nargs="+", default=None,
                   help=f"benchmarks or sets; benchmarks: {', '.join(BENCHMARKS)}; sets: {', '.join(SETS)} "
                   "(default: paper with --data_root, sugarcrepe_pp_tot without)")
    p.add_argument("--data_root", default=None,
                   help="folder laid out as in read_trainer/evaluation/suite.py (default: the shipped "
                   "sugarcrepe, sugarcrepe_pp and valse annotations)")
    p.add_argument("--image_root", action="append", default=[], metavar="BENCHMARK=PATH",
                   help="image folder for one benchmark (default: <data_root>/<benchmark folder>/images)")
    p.add_argument("--output", default="eval_results", help="output folder")
    p.add_argument("--batch_size", type=int, default=256, help="images or texts per forward pass")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="torch device")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16"], help="autocast dtype")
    p.add_argument("--num_workers", type=int, default=0, help="image decoding workers")
    p.add_argument("--limit", type=int, default=None, help="at most this many items per subset (smoke runs)")
    p.add_argument("--protocol", default="strict", choices=sorted(PROTOCOLS),
                   help="strict: ties count as wrong, What'sUp groups average their files; read: the READ paper's "
                   "evaluator (a tie with the best negative counts for the positive, What'sUp groups pool their "
                   "rows, PIL image resize). See read_trainer/evaluation/protocol.py")
    p.add_argument("--save_decisions", action="store_true", help="store every item's outcome in results.json")
    p.add_argument("--no_progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    if args.benchmarks is None:
        args.benchmarks = ["paper"] if args.data_root is not None else ["sugarcrepe_pp_tot"]
    args.models = args.model + args.compare
    if not args.models:
        p.error("give at least one --model (or --compare A B ...)")
    if args.label and len(args.label) != len(args.models):
        p.error(f"{len(args.label)} --label for {len(args.models)} models")
    return args


def parse_image_roots(pairs: list[str]) -> dict[str, str]:
    roots = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep:
            raise SystemExit(f"--image_root expects BENCHMARK=PATH, got {pair!r}")
        roots.update({n: path for n in expand_names([name])})
    return roots


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    for model in args.models:
        resolve_id(model, "model")  # an unreachable or unknown id fails now, in one line
    args.data_root = default_data_root(args.data_root, args.benchmarks)
    tasks = load_suite(args.benchmarks, args.data_root, parse_image_roots(args.image_root), args.limit,
                       protocol=args.protocol)
    labels = args.label or [Path(m).name if Path(m).exists() else m for m in args.models]
    results = {}
    for label, model in zip(labels, args.models):
        embedder = embedder_for(model, args.protocol, batch_size=args.batch_size, device=args.device,
                                dtype=args.dtype, num_workers=args.num_workers, progress=not args.no_progress)
        results[label] = run_suite(tasks, embedder)
    out = Path(args.output)
    meta = {"models": dict(zip(labels, args.models)), "benchmarks": [t.name for t in tasks], "dtype": args.dtype,
            "protocol": args.protocol, "protocol_rules": PROTOCOLS[args.protocol],
            "device": args.device, "limit": args.limit, "data_root": str(args.data_root)}
    write_results_json(out / "results.json", results, meta, with_decisions=args.save_decisions)
    report = markdown_report(results)
    (out / "results.md").write_text(report, encoding="utf-8")
    if len(results) > 1:
        plot_comparison(results, out / "comparison.png")
    print(report)
    return results


if __name__ == "__main__":
    sys.exit(run_recipe(main))
