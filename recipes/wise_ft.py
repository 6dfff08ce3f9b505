"""WiSE-FT: interpolate a READ export with its base CLIP, and optionally sweep alpha on benchmarks.

    # one interpolated export
    python recipes/wise_ft.py --base openai/clip-vit-base-patch32 --finetuned outputs/read-clip \\
        --alpha 0.5 --output outputs/read-clip-wise0.5

    # a sweep: scores per alpha in results.json / results.md / chart.png
    python recipes/wise_ft.py --base openai/clip-vit-base-patch32 --finetuned outputs/read-clip \\
        --alphas 0,0.25,0.5,0.75,1 --benchmarks sugarcrepe_pp_tot --data_root benchdata --output outputs/wise-sweep

θ(α) = (1 − α)·θ_base + α·θ_fine-tuned: α = 1 is the READ model, α = 0 the base.
"""

from __future__ import annotations

import sys
from pathlib import Path

from transformers import CLIPModel, CLIPProcessor

from read_trainer.cli import ArgumentParser, run_recipe
from read_trainer.paths import missing_path_message
from read_trainer.resolve import resolve_id
from read_trainer.wise import wise_ft


def main(argv=None) -> dict:
    parser = ArgumentParser(description=__doc__)
    parser.add_argument("--base", required=True, help="base CLIPModel (hub id or folder)")
    parser.add_argument("--finetuned", required=True, help="READ export folder")
    parser.add_argument("--output", required=True, help="export folder (--alpha) or report folder (--alphas)")
    parser.add_argument("--alpha", type=float, default=None, help="one interpolation weight in [0, 1]")
    parser.add_argument("--alphas", default=None, help="comma-separated weights to sweep")
    parser.add_argument("--benchmarks", default="sugarcrepe_pp_tot", help="benchmarks for the sweep")
    parser.add_argument("--data_root", default=None, help="benchmark annotations (see recipes/run_evaluation.py)")
    parser.add_argument("--image_root", action="append", default=[], help="name=folder image roots")
    parser.add_argument("--limit", type=int, default=None, help="items per subset")
    args = parser.parse_args(argv)
    if (args.alpha is None) == (args.alphas is None):
        parser.error("give exactly one of --alpha and --alphas")

    if not Path(args.finetuned).is_dir():
        raise FileNotFoundError(missing_path_message("--finetuned folder", args.finetuned))
    resolve_id(args.base)  # a missing folder or an unreachable id: one line now, not a traceback from the loader
    base, tuned = CLIPModel.from_pretrained(args.base), CLIPModel.from_pretrained(args.finetuned)
    processor = CLIPProcessor.from_pretrained(args.finetuned)
    if args.alpha is not None:
        wise_ft(base, tuned, args.alpha).save_pretrained(args.output)
        processor.save_pretrained(args.output)
        print(f"WiSE-FT alpha={args.alpha} -> {args.output}")
        return {}

    from read_trainer.evaluation import evaluate_model, load_suite, markdown_report, plot_comparison, write_results_json

    if args.data_root is None:
        parser.error("--alphas needs --data_root")
    roots = dict(pair.split("=", 1) for pair in args.image_root)
    tasks = load_suite([b.strip() for b in args.benchmarks.split(",")], args.data_root, roots, limit=args.limit)
    results = {}
    for alpha in (float(a) for a in args.alphas.split(",")):
        results[f"alpha={alpha:g}"] = evaluate_model(wise_ft(base, tuned, alpha), tasks, processor=processor,
                                                     progress=False)
    out = Path(args.output)
    write_results_json(out / "results.json", results, meta={"base": args.base, "finetuned": args.finetuned})
    (out / "results.md").write_text(markdown_report(results) + "\n", encoding="utf-8")
    plot_comparison(results, out / "chart.png")
    print(markdown_report(results))
    return results


if __name__ == "__main__":
    sys.exit(run_recipe(main))
