"""Scoring and reporting for the demo: world benchmark results as tables, checks and a chart.

``evaluate_clip`` scores a saved ``CLIPModel`` on the world benchmarks; ``accuracy_table``
turns one model's results into ``{split: {kind: {category: accuracy %}}}``, the shape every
other function here reads (the markdown comparison, the bag-of-words check, the per-cell
wins and the bar chart).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping, Sequence

from ..evaluation.results import BenchmarkResult
from .benchmark import KIND_TITLES, KINDS, WORLD_CATEGORIES, benchmark_name


def evaluate_clip(model_path: str | os.PathLike, benchmarks: Sequence, progress: bool = True,
                  batch_size: int = 512) -> dict[str, BenchmarkResult]:
    """Score a saved ``CLIPModel`` on the world benchmarks (each unique text/image embedded once)."""
    from ..evaluation.embedding import ClipEmbedder
    from ..evaluation.suite import run_suite

    embedder = ClipEmbedder.from_pretrained(str(model_path), batch_size=batch_size, progress=progress)
    return run_suite(benchmarks, embedder)


def accuracy_table(results: Mapping[str, BenchmarkResult], splits: Sequence[str] = ("test", "novel")) -> dict:
    """``{split: {kind: {category or "macro": accuracy %}}}`` from one model's results."""
    table: dict = {}
    for split in splits:
        for kind in KINDS:
            result = results.get(benchmark_name(split, kind))
            if result is None:
                continue
            row = {c: result.subsets[c]["accuracy"] for c in WORLD_CATEGORIES if c in result.subsets}
            row["macro"] = result.total
            row["ties"] = int(result.metrics.get("ties", 0))
            table.setdefault(split, {})[kind] = row
    return table


def format_comparison(tables: Mapping[str, dict], splits: Sequence[str] = ("test", "novel")) -> str:
    """A markdown table: one row per (split, benchmark, category), one column per model."""
    labels = list(tables)
    lines = ["| split | benchmark | category | " + " | ".join(labels) + " |",
             "|---|---|---|" + "---:|" * len(labels)]
    for split in splits:
        for kind in KINDS:
            rows = [t.get(split, {}).get(kind) for t in tables.values()]
            if not any(rows):
                continue
            for category in (*WORLD_CATEGORIES, "macro"):
                values = [r.get(category) if r else None for r in rows]
                if all(v is None for v in values):
                    continue
                cells = [f"{v:.1f}" if v is not None else "-" for v in values]
                name = f"**{category}**" if category == "macro" else category
                lines.append(f"| {split} | {KIND_TITLES[kind]} | {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_json(path: str | os.PathLike, payload: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- checks and chart

SWAPS = ("swap_att", "swap_obj")
# Accuracy of random embeddings: one of two texts wins half the time; ITT needs the negative to
# be the lowest of three similarities, TOT the paraphrase pair to be the highest of three: 1/3.
CHANCE = {"sugarcrepe": 50.0, "pp_itt": 100 / 3, "pp_tot": 100 / 3}
REPLACES = ("replace_att", "replace_obj", "replace_rel")


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def bag_of_words_check(table: dict, kind: str = "sugarcrepe") -> dict:
    """Swap vs replace accuracy per split, for one model (chance is 50% on SugarCrepe-style items).

    A bag-of-words text encoder scores a swap negative (same words, other binding) like its
    caption, so swaps sit near chance while replacements (a word the image does not show)
    are easy.
    """
    out = {}
    for split, kinds in table.items():
        row = kinds[kind]
        swap, replace = _mean(row[c] for c in SWAPS), _mean(row[c] for c in REPLACES)
        out[split] = {"swap_mean": swap, "replace_mean": replace, "gap": replace - swap,
                      "swap": {c: row[c] for c in SWAPS}, "replace": {c: row[c] for c in REPLACES}}
    out["summary"] = "; ".join(
        f"{split}: swaps " + ", ".join(f"{c} {v['swap'][c]:.1f}" for c in SWAPS)
        + " vs replacements " + ", ".join(f"{c} {v['replace'][c]:.1f}" for c in REPLACES)
        for split, v in out.items()) + " (% correct, chance 50)"
    return out


def wins_per_category(new: dict, old: dict) -> dict:
    """Where ``new`` beats ``old`` (strictly), over every split x benchmark x category and macro."""
    cells, losses = 0, []
    for split, kinds in new.items():
        for kind, row in kinds.items():
            for category, value in row.items():
                if category == "ties":
                    continue
                cells += 1
                if not value > old[split][kind][category]:
                    losses.append(f"{split}/{kind}/{category}: {value:.1f} vs {old[split][kind][category]:.1f}")
    summary = f"{cells - len(losses)}/{cells} cells" + (f"; not better: {', '.join(losses)}" if losses else "")
    return {"cells": cells, "wins": cells - len(losses), "not_better": losses, "summary": summary}


def plot_accuracy_tables(tables: Mapping[str, dict], path: str | os.PathLike,
                        splits: Sequence[str] = ("test", "novel")) -> Path:
    """Grouped bars per category (and macro), one panel per split x benchmark, one colour per model."""
    from ..evaluation.report import headless_pyplot, save_figure

    plt = headless_pyplot()
    labels = list(tables)
    categories = (*WORLD_CATEGORIES, "macro")
    fig, axes = plt.subplots(len(splits), len(KINDS), figsize=(4.6 * len(KINDS), 3.4 * len(splits)),
                             sharey=True, squeeze=False)
    width = 0.8 / len(labels)
    for r, split in enumerate(splits):
        for c, kind in enumerate(KINDS):
            ax = axes[r][c]
            for k, label in enumerate(labels):
                row = tables[label].get(split, {}).get(kind, {})
                xs = [i + (k - (len(labels) - 1) / 2) * width for i in range(len(categories))]
                ax.bar(xs, [row.get(cat, 0.0) for cat in categories], width, label=label)
            ax.axhline(CHANCE[kind], color="grey", lw=0.8, ls=":")
            ax.set_xticks(range(len(categories)), [cat.replace("_", "\n") for cat in categories], fontsize=8)
            ax.set_ylim(0, 100)
            ax.set_title(f"{KIND_TITLES[kind]} ({'iid test' if split == 'test' else split})", fontsize=9)
            if c == 0:
                ax.set_ylabel("accuracy (%)")
    axes[0][0].legend(fontsize=8, loc="lower left")
    fig.suptitle("READ on the synthetic world: base vs fine-tuned (ties count as wrong; dotted: chance)",
                 fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)
