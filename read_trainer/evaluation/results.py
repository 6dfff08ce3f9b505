"""From per-item outcomes to the numbers people report.

Each subset gets n / correct / ties and an accuracy (ties are not correct). A
benchmark reports macro (mean of subset accuracies) and micro (pooled) numbers and
one headline ``total`` chosen by its averaging rule, and the rule is written into
every result in words, so no table can be read with the wrong average in mind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import mean
from typing import Mapping

from .items import AVERAGING_WORDS, Benchmark
from .rules import CORRECT, TIE

# The paper's six numbers (DESIGN.md §1) and the order they are reported in.
PAPER_SIX = ("whatsup", "valse", "crepe", "sugarcrepe", "sugarcrepe_pp_itt", "sugarcrepe_pp_tot")
PAPER_AVERAGE_WORDS = "plain mean of the six totals: " + ", ".join(PAPER_SIX)


@dataclass
class BenchmarkResult:
    """Scores of one benchmark, in percent (counts as integers).

    ``subsets[name]`` holds each rate metric (e.g. ``accuracy``) and its counts;
    ``rates`` lists which subset keys are rates (what gets logged per subset);
    ``metrics`` holds benchmark-level numbers (``total``, ``macro``, ``micro``, ...);
    ``decisions`` keeps every item's outcome for audits (left out of JSON unless asked).
    """

    name: str
    total: float
    averaging: str
    metrics: dict[str, float]
    subsets: dict[str, dict[str, float]]
    rates: list[str]
    groups: dict[str, float] = field(default_factory=dict)
    decisions: dict[str, list[dict[str, str]]] = field(default_factory=dict, repr=False)

    def to_dict(self, with_decisions: bool = False) -> dict:
        out = {
            "name": self.name, "total": self.total, "averaging": self.averaging,
            "metrics": self.metrics, "subsets": self.subsets, "groups": self.groups,
        }
        if with_decisions:
            out["decisions"] = self.decisions
        return out

    def flat(self, prefix: str = "eval") -> dict[str, float]:
        """``{prefix}/{benchmark}/{subset}`` (one rate) or ``.../{subset}/{metric}``, plus totals and groups."""
        out: dict[str, float] = {}
        base = f"{prefix}/{self.name}"
        for subset, values in self.subsets.items():
            if len(self.rates) == 1:
                out[f"{base}/{subset}"] = values[self.rates[0]]
            else:
                out.update({f"{base}/{subset}/{m}": values[m] for m in self.rates})
        out.update({f"{base}/{k}": v for k, v in self.metrics.items()})
        out.update({f"{base}/group/{g}": v for g, v in self.groups.items()})
        return out


def percent(numerator: float, denominator: float) -> float:
    return 100.0 * numerator / denominator


def count_outcomes(outcomes: list[dict[str, str]], metric: str) -> dict[str, int]:
    return {
        "n": len(outcomes),
        "correct": sum(o[metric] == CORRECT for o in outcomes),
        "ties": sum(o[metric] == TIE for o in outcomes),
    }


def summarize(benchmark: Benchmark, decisions: dict[str, list[dict[str, str]]]) -> BenchmarkResult:
    """Aggregate per-item outcomes of every subset into a ``BenchmarkResult``."""
    empty = [name for name, outcomes in decisions.items() if not outcomes]
    if empty:
        raise ValueError(f"{benchmark.name}: subsets with no items: {empty}")
    metric_names = list(next(iter(decisions.values()))[0])
    single = len(metric_names) == 1

    def key(metric: str, suffix: str) -> str:
        return suffix if single else f"{metric}_{suffix}"

    subsets: dict[str, dict[str, float]] = {}
    for name, outcomes in decisions.items():
        row: dict[str, float] = {}
        for m in metric_names:
            c = count_outcomes(outcomes, m)
            row[m] = percent(c["correct"], c["n"])
            row.update({key(m, "correct"): c["correct"], key(m, "ties"): c["ties"]})
        row["n"] = len(outcomes)
        subsets[name] = row

    metrics: dict[str, float] = {}
    groups: dict[str, float] = {}
    by_rule: dict[str, float] = {}
    for m in metric_names:
        macro = mean(subsets[s][m] for s in subsets)
        micro = percent(sum(subsets[s][key(m, "correct")] for s in subsets), sum(subsets[s]["n"] for s in subsets))
        metrics[key(m, "macro")], metrics[key(m, "micro")] = macro, micro
        metrics[key(m, "ties")] = sum(subsets[s][key(m, "ties")] for s in subsets)
        group_scores = {
            g: (percent(sum(subsets[s][key(m, "correct")] for s in names), sum(subsets[s]["n"] for s in names))
                if benchmark.averaging == "micro" else mean(subsets[s][m] for s in names))
            for g, names in (benchmark.groups or {}).items()
        }
        if m == benchmark.primary_metric:
            groups = group_scores
        if benchmark.averaging == "macro_of_groups":
            by_rule[m] = mean(group_scores.values())
        else:
            by_rule[m] = macro if benchmark.averaging == "macro" else micro
        if not single:
            metrics[m] = by_rule[m]
    metrics["n"] = sum(s["n"] for s in subsets.values())
    total = by_rule[benchmark.primary_metric]
    metrics["total"] = total
    words = AVERAGING_WORDS[benchmark.averaging]
    if not single:
        words = f"{benchmark.primary_metric} score; {words}"
    return BenchmarkResult(benchmark.name, total, words, metrics, subsets, metric_names, groups, decisions)


def paper_average(results: Mapping[str, BenchmarkResult]) -> float | None:
    """The READ paper's headline: plain mean of the six totals, or None unless all six are present."""
    if not all(name in results for name in PAPER_SIX):
        return None
    return mean(results[name].total for name in PAPER_SIX)
