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
from .rules import COUNTED_CORRECT, COUNTED_TIE

# The six benchmarks the READ paper (Kwon et al., NeurIPS 2025) reports, in its order.
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
    protocol: str = "strict"

    def to_dict(self, with_decisions: bool = False) -> dict:
        out = {
            "name": self.name, "total": self.total, "averaging": self.averaging,
            "metrics": self.metrics, "subsets": self.subsets, "groups": self.groups, "protocol": self.protocol,
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


def _subset_row(outcomes: list[dict[str, str]], metrics: list[str], key) -> dict[str, float]:
    """Accuracy, correct and tie counts of one subset for each metric, plus n.

    A tie counts as correct only when its rule credited it (``rules.TIE_CREDITED``, the READ
    harness's protocol); every tie is counted in ``ties`` either way.
    """
    row: dict[str, float] = {}
    for m in metrics:
        correct = sum(o[m] in COUNTED_CORRECT for o in outcomes)
        row[m] = percent(correct, len(outcomes))
        row[key(m, "correct")] = correct
        row[key(m, "ties")] = sum(o[m] in COUNTED_TIE for o in outcomes)
    row["n"] = len(outcomes)
    return row


def _macro(subsets: dict[str, dict], names, metric: str) -> float:
    return mean(subsets[s][metric] for s in names)


def _micro(subsets: dict[str, dict], names, correct_key: str) -> float:
    return percent(sum(subsets[s][correct_key] for s in names), sum(subsets[s]["n"] for s in names))


def summarize(benchmark: Benchmark, decisions: dict[str, list[dict[str, str]]]) -> BenchmarkResult:
    """Aggregate per-item outcomes of every subset into a ``BenchmarkResult``.

    Single-metric benchmarks report ``macro``, ``micro``, ``ties``; multi-metric ones
    (Winoground) prefix each with the metric (``text_macro``, ...) and also give each
    metric under the benchmark's rule (``text``, ``image``, ``group``).
    """
    empty = [name for name, outcomes in decisions.items() if not outcomes]
    if empty:
        raise ValueError(f"{benchmark.name}: subsets with no items: {empty}")
    names = list(next(iter(decisions.values()))[0])
    single = len(names) == 1

    def key(metric: str, suffix: str) -> str:
        return suffix if single else f"{metric}_{suffix}"

    subsets = {name: _subset_row(outcomes, names, key) for name, outcomes in decisions.items()}
    metrics: dict[str, float] = {}
    groups: dict[str, float] = {}
    by_rule: dict[str, float] = {}
    for m in names:
        metrics[key(m, "macro")] = _macro(subsets, subsets, m)
        metrics[key(m, "micro")] = _micro(subsets, subsets, key(m, "correct"))
        metrics[key(m, "ties")] = sum(row[key(m, "ties")] for row in subsets.values())
        # A micro or pooled-groups benchmark's groups pool their items; otherwise a group is the
        # mean of its subsets.
        pooled = benchmark.averaging in ("micro", "pooled_groups")
        group_scores = {g: _micro(subsets, members, key(m, "correct")) if pooled
                        else _macro(subsets, members, m) for g, members in (benchmark.groups or {}).items()}
        by_rule[m] = (mean(group_scores.values()) if benchmark.averaging in ("macro_of_groups", "pooled_groups")
                      else metrics[key(m, benchmark.averaging)])
        if m == benchmark.primary_metric:
            groups = group_scores
        if not single:
            metrics[m] = by_rule[m]
    metrics["n"] = sum(row["n"] for row in subsets.values())
    metrics["total"] = total = by_rule[benchmark.primary_metric]
    words = AVERAGING_WORDS[benchmark.averaging]
    if not single:
        words = f"{benchmark.primary_metric} score; {words}"
    return BenchmarkResult(benchmark.name, total, words, metrics, subsets, names, groups, decisions,
                           protocol=benchmark.protocol)


def paper_average(results: Mapping[str, BenchmarkResult]) -> float | None:
    """The READ paper's headline: plain mean of the six totals, or None unless all six are present."""
    if not all(name in results for name in PAPER_SIX):
        return None
    return mean(results[name].total for name in PAPER_SIX)
