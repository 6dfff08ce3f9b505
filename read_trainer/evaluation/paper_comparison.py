"""The READ paper's reported numbers, and a run's numbers beside them.

The paper (Kwon, Min, Sohn, NeurIPS 2025) reports ViT-B/32 models fine-tuned on MS-COCO on six
compositional benchmarks and their plain mean. Its numbers were computed with the official
READ-CLIP evaluator, so a run is compared with them under the ``read`` protocol (``protocol.py``);
the ``strict`` numbers are shown beside them for reference, never as the comparison.
"""

from __future__ import annotations

from statistics import mean
from typing import Mapping

from .report import pretty
from .results import PAPER_SIX, BenchmarkResult, paper_average

PAPER = "Kwon, Min, Sohn, Enhancing Compositional Reasoning in CLIP via Reconstruction and Alignment of Text " \
        "Descriptions, NeurIPS 2025: ViT-B/32 fine-tuned on MS-COCO, main results"
# benchmark -> reported accuracy (%); "average" = plain mean of the six.
PAPER_RESULTS: dict[str, dict[str, float]] = {
    "READ-CLIP": {"whatsup": 43.9, "valse": 76.2, "crepe": 41.5, "sugarcrepe": 87.0, "sugarcrepe_pp_itt": 69.8,
                  "sugarcrepe_pp_tot": 66.2, "average": 64.1},
    "NegCLIP": {"whatsup": 42.4, "valse": 73.7, "crepe": 30.5, "sugarcrepe": 83.6, "sugarcrepe_pp_itt": 65.0,
                "sugarcrepe_pp_tot": 62.5, "average": 59.6},
    "FSC-CLIP": {"whatsup": 39.8, "valse": 74.4, "crepe": 42.5, "sugarcrepe": 85.2, "sugarcrepe_pp_itt": 67.9,
                 "sugarcrepe_pp_tot": 64.4, "average": 62.4},
}
ROWS = PAPER_SIX + ("average",)


def _total(results: Mapping[str, BenchmarkResult] | None, name: str) -> float | None:
    if results is None:
        return None
    if name == "average":
        return paper_average(results)
    return results[name].total if name in results else None


def comparison_rows(ours: Mapping[str, BenchmarkResult], ours_strict: Mapping[str, BenchmarkResult] | None = None,
                    base: Mapping[str, BenchmarkResult] | None = None) -> list[dict]:
    """One row per paper benchmark and the average: ours (paper's protocol), the paper, the difference."""
    rows = []
    for name in ROWS:
        value, paper = _total(ours, name), PAPER_RESULTS["READ-CLIP"][name]
        rows.append({
            "benchmark": name, "ours": value, "paper": paper,
            "difference": None if value is None else value - paper,
            "ours_strict": _total(ours_strict, name), "base": _total(base, name),
            "paper_negclip": PAPER_RESULTS["NegCLIP"][name], "paper_fsc_clip": PAPER_RESULTS["FSC-CLIP"][name],
        })
    return rows


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.1f}" if signed else f"{value:.1f}"


def comparison_markdown(rows: list[dict], retention: Mapping[str, BenchmarkResult] | None = None,
                        base_retention: Mapping[str, BenchmarkResult] | None = None) -> str:
    """The comparison table (and the retention tasks, which the paper's table does not hold)."""
    with_base = any(r["base"] is not None for r in rows)
    header = ["benchmark", "ours", "paper READ-CLIP", "difference", "ours (strict)"] + (["base CLIP"] if with_base
                                                                                        else []) + [
        "paper NegCLIP", "paper FSC-CLIP"]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for r in rows:
        name = "**average of the six**" if r["benchmark"] == "average" else pretty(r["benchmark"])
        cells = [name, _fmt(r["ours"]), _fmt(r["paper"]), _fmt(r["difference"], signed=True), _fmt(r["ours_strict"])]
        cells += [_fmt(r["base"])] if with_base else []
        cells += [_fmt(r["paper_negclip"]), _fmt(r["paper_fsc_clip"])]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "ours, base CLIP, difference: the READ harness's protocol (a tie with the best negative counts for "
              "the positive; What'sUp groups pool their rows; PIL resize), as the paper's numbers were computed. "
              "ours (strict): ties count as wrong, What'sUp groups average their files. Paper columns: " + PAPER + "."]
    if retention:
        lines += ["", "| retention task | ours | " + ("base CLIP | " if base_retention else "") + "measure |",
                  "|---|---:|" + ("---:|" if base_retention else "") + "---|"]
        for name, result in retention.items():
            base_cell = f" {_fmt(base_retention[name].total)} |" if base_retention and name in base_retention else (
                " – |" if base_retention else "")
            lines.append(f"| {pretty(name)} | {_fmt(result.total)} |{base_cell} {result.averaging} |")
    return "\n".join(lines) + "\n"


def mean_difference(rows: list[dict]) -> float | None:
    """Mean of the per-benchmark differences (the six, not the average row); None when any is missing."""
    diffs = [r["difference"] for r in rows if r["benchmark"] != "average"]
    return None if any(d is None for d in diffs) else mean(diffs)
