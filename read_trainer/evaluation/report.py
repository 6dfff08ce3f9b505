"""Writing results down: ``results.json``, a markdown table, a comparison chart, model-card entries.

Every output names its averaging rule next to the number, and the paper's six-number
average appears only when all six benchmarks were run (a partial mean would not be
comparable with the paper's table).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

from .protocol import credits_ties
from .results import PAPER_AVERAGE_WORDS, PAPER_SIX, BenchmarkResult, paper_average

# model label -> benchmark name -> result
Results = Mapping[str, Mapping[str, BenchmarkResult]]

PRETTY = {
    "sugarcrepe": "SugarCrepe", "sugarcrepe_pp_itt": "SugarCrepe++ ITT", "sugarcrepe_pp_tot": "SugarCrepe++ TOT",
    "valse": "VALSE", "whatsup": "WhatsUp", "crepe": "CREPE", "aro_vg_relation": "ARO VG-Relation",
    "aro_vg_attribution": "ARO VG-Attribution", "aro_coco_order": "ARO COCO-Order",
    "aro_flickr_order": "ARO Flickr30k-Order", "winoground": "Winoground", "coco_retrieval": "COCO retrieval",
    "flickr30k_retrieval": "Flickr30k retrieval", "zeroshot": "zero-shot classification",
}


def pretty(name: str) -> str:
    return PRETTY.get(name, name)


def results_payload(results: Results, meta: Mapping | None = None, with_decisions: bool = False) -> dict:
    """The JSON document: per model, every benchmark's result and the paper average (or null)."""
    return {
        "meta": dict(meta or {}),
        "paper_average_rule": PAPER_AVERAGE_WORDS,
        "models": {
            label: {
                "benchmarks": {name: r.to_dict(with_decisions) for name, r in per_model.items()},
                "paper_average": paper_average(per_model),
            }
            for label, per_model in results.items()
        },
    }


def write_results_json(path: str | Path, results: Results, meta: Mapping | None = None,
                       with_decisions: bool = False) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results_payload(results, meta, with_decisions), indent=2), encoding="utf-8")
    return path


def _benchmarks_in_order(results: Results) -> list[str]:
    names: list[str] = []
    for per_model in results.values():
        names += [n for n in per_model if n not in names]
    return [n for n in PAPER_SIX if n in names] + [n for n in names if n not in PAPER_SIX]


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def markdown_report(results: Results) -> str:
    """A summary table (benchmarks × models, with each benchmark's rule) and one detail table per benchmark."""
    labels = list(results)
    names = _benchmarks_in_order(results)
    lines = ["## Summary", "", "| benchmark | " + " | ".join(labels) + " | averaging |",
             "|---|" + "---:|" * len(labels) + "---|"]
    for name in names:
        rule = next(results[m][name].averaging for m in labels if name in results[m])
        lines.append(f"| {pretty(name)} | " + " | ".join(_fmt(results[m][name].total) if name in results[m] else "–"
                                                          for m in labels) + f" | {rule} |")
    averages = [paper_average(results[m]) for m in labels]
    if any(a is not None for a in averages):
        lines.append("| **paper average** | " + " | ".join(_fmt(a) for a in averages) + f" | {PAPER_AVERAGE_WORDS} |")
    for name in names:
        lines += ["", f"### {pretty(name)}", ""]
        present = [m for m in labels if name in results[m]]
        first = results[present[0]][name]
        rates = first.rates
        header = [f"{m} {r}" if len(rates) > 1 else m for m in present for r in rates]
        lines += ["| subset | n | " + " | ".join(header) + " |", "|---|---:|" + "---:|" * len(header)]
        for subset, row in first.subsets.items():
            cells = [_fmt(results[m][name].subsets.get(subset, {}).get(r)) for m in present for r in rates]
            lines.append(f"| {subset} | {int(row.get('n', 0))} | " + " | ".join(cells) + " |")
        for group in first.groups:
            lines.append(f"| group: {group} |  | " + " | ".join(_fmt(results[m][name].groups.get(group))
                                                                  for m in present for _ in rates) + " |")
        ties = {m: results[m][name].metrics.get("ties") for m in present}
        if any(t is not None for t in ties.values()):
            credited = credits_ties(name, first.protocol)
            lines += ["", f"Ties ({'credited to the positive, as the READ harness' if credited else 'counted as wrong'}"
                          "): " + ", ".join(f"{m}: {int(t)}" for m, t in ties.items() if t is not None)]
        lines += ["", f"Total: {first.averaging}."]
    return "\n".join(lines) + "\n"


def headless_pyplot():
    """``matplotlib.pyplot`` on the Agg backend: charts are written by recipes on servers and in CI."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, dpi: int = 120) -> Path:
    """Write ``fig`` to ``path`` (parents created) and free it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def plot_comparison(results: Results, path: str | Path) -> Path:
    """Grouped bars of each benchmark's total, one colour per model (and the paper average when present)."""
    plt = headless_pyplot()

    labels = list(results)
    names = _benchmarks_in_order(results)
    columns = [pretty(n) for n in names]
    values = {m: [results[m][n].total if n in results[m] else 0.0 for n in names] for m in labels}
    if all(paper_average(results[m]) is not None for m in labels):
        columns.append("paper average")
        for m in labels:
            values[m].append(paper_average(results[m]))
    width = 0.8 / len(labels)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(columns)), 4.0))
    for k, m in enumerate(labels):
        xs = [i + (k - (len(labels) - 1) / 2) * width for i in range(len(columns))]
        ax.bar_label(ax.bar(xs, values[m], width, label=m), fmt="%.1f", fontsize=7)
    ax.set_xticks(range(len(columns)), columns, rotation=30, ha="right")
    ax.set_ylabel("score (%)")
    ax.set_ylim(0, 100)
    ax.legend()
    ax.set_title("Compositional evaluation (each benchmark's official average)")
    fig.tight_layout()
    return save_figure(fig, path, dpi=120)


def model_card_eval_results(results: Mapping[str, BenchmarkResult]) -> list:
    """``huggingface_hub.EvalResult`` entries for ``ModelCardData(eval_results=...)``: one per benchmark total."""
    from huggingface_hub import EvalResult

    entries = []
    for name, r in results.items():
        zeroshot = name == "zeroshot"
        entries.append(EvalResult(
            task_type="zero-shot-image-classification" if zeroshot else "image-text-matching",
            dataset_type=name, dataset_name=pretty(name),
            metric_type="recall" if any(rate.startswith("R@") for rate in r.rates) else "accuracy",
            metric_value=round(r.total, 2), metric_name=f"{pretty(name)} ({r.averaging})",
        ))
    if (avg := paper_average(results)) is not None:
        entries.append(EvalResult(task_type="image-text-matching", dataset_type="read_paper_six",
                                  dataset_name="READ paper average", metric_type="accuracy",
                                  metric_value=round(avg, 2), metric_name=PAPER_AVERAGE_WORDS))
    return entries


def load_results(path: str | Path, label: str | None = None) -> dict[str, BenchmarkResult]:
    """Read one model's results back from a ``results.json`` (the first model unless ``label``)."""
    payload = json.loads(Path(path).read_text(encoding="utf-8"))
    models = payload.get("models", {})
    if not models:
        raise ValueError(f"{path}: no model results in this file")
    if label is None:
        label = next(iter(models))
    if label not in models:
        raise KeyError(f"{path}: no results for {label!r}; it has {sorted(models)}")
    out = {}
    for name, r in models[label]["benchmarks"].items():
        counts = {"n", "correct", "ties"}
        rates = sorted({k for values in r["subsets"].values() for k in values} - counts)
        out[name] = BenchmarkResult(name=r["name"], total=r["total"], averaging=r["averaging"], metrics=r["metrics"],
                                    subsets=r["subsets"], rates=rates, groups=r.get("groups", {}),
                                    protocol=r.get("protocol", "strict"))
    return out
