"""Compositional accuracy: the suite's decision rules as an ``evaluate`` metric.

Each prediction is one item's similarity scores (cosine of normalised embeddings) in
a fixed layout chosen by the config name:

- ``pos_beats_all`` (default): ``[s(I,pos), s(I,neg1), s(I,neg2), ...]``
  (SugarCrepe, VALSE, WhatsUp, CREPE, ARO);
- ``sugarcrepe_pp_itt``: ``[s(I,p1), s(I,p2), s(I,n)]``;
- ``sugarcrepe_pp_tot``: ``[s(p1,p2), s(p1,n), s(p2,n)]``;
- ``winoground``: ``[s(i0,c0), s(i0,c1), s(i1,c0), s(i1,c1)]`` (reports text/image/group).

Ties are counted and never correct. ``subsets`` names each item's subset (one name
for all items when there are none);
``compute(averaging=...)`` takes "macro" (mean over subsets) or "micro" (pooled), and
the result names the rule it used. The decisions come from
``read_trainer.evaluation.rules``, the same code the batched suite runs.
"""

import datasets
import evaluate

from read_trainer.evaluation import rules
from read_trainer.evaluation.items import Benchmark, ItemScores
from read_trainer.evaluation.results import summarize

_CITATION = """\
@inproceedings{kwon2025read,
  title={Enhancing Compositional Reasoning in CLIP via Reconstruction and Alignment of Text Descriptions},
  author={Kwon, Jihoon and Min, Kyle and Sohn, Jy-yong},
  booktitle={NeurIPS},
  year={2025}
}
"""

_DESCRIPTION = __doc__

_KWARGS_DESCRIPTION = """
Args:
    scores: list of per-item score lists, in the layout of the config (see description).
    subsets: list of subset names, one per item (repeat one name if there are no subsets).
    averaging: "macro" (default) or "micro".
Returns:
    accuracy: the total under `averaging` (for winoground: the group score), in percent;
    macro, micro, ties, n, averaging (in words), per_subset.
"""


def _pos_beats_all(s):
    return rules.positive_beats_all(ItemScores([list(s)]))


def _itt(s):
    return rules.sugarcrepe_pp_itt(ItemScores([list(s)]))


def _tot(s):
    p1p2, p1n, p2n = s
    return rules.sugarcrepe_pp_tot(ItemScores([], [[1.0, p1p2, p1n], [p1p2, 1.0, p2n], [p1n, p2n, 1.0]]))


def _winoground(s):
    return rules.winoground(ItemScores([[s[0], s[1]], [s[2], s[3]]]))


CONFIGS = {"pos_beats_all": _pos_beats_all, "sugarcrepe_pp_itt": _itt, "sugarcrepe_pp_tot": _tot,
           "winoground": _winoground}


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class CompositionalAccuracy(evaluate.Metric):
    def _info(self):
        if self.config_name == "default":
            self.config_name = "pos_beats_all"
        if self.config_name not in CONFIGS:
            raise KeyError(f"unknown config {self.config_name!r}; use one of {sorted(CONFIGS)}")
        scores = datasets.Sequence(datasets.Value("float64"))
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation=_CITATION, inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"scores": scores, "subsets": datasets.Value("string")}),
        )

    def _compute(self, scores, subsets, averaging="macro"):
        rule = CONFIGS[self.config_name]
        decisions = {}
        for s, subset in zip(scores, subsets):
            decisions.setdefault(subset, []).append(rule(s))
        primary = "group" if self.config_name == "winoground" else "accuracy"
        spec = Benchmark(self.config_name, {name: [] for name in decisions}, rule, averaging=averaging,
                         primary_metric=primary)
        result = summarize(spec, decisions)
        out = {"accuracy": result.total, "averaging": result.averaging, "n": int(result.metrics["n"]),
               "per_subset": {name: row[primary] for name, row in result.subsets.items()}}
        out.update({k: v for k, v in result.metrics.items() if k not in ("total", "n")})
        return out
