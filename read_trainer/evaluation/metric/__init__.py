"""An ``evaluate`` metric module for the suite's decision rules, loadable offline by path.

Hub-hosted metrics (``evaluate.load("accuracy")``) are fetched from the Hub at load
time; this one ships in the package::

    import evaluate
    from read_trainer.evaluation.metric import METRIC_PATH
    metric = evaluate.load(METRIC_PATH, "sugarcrepe_pp_itt")
    metric.add_batch(scores=[[0.31, 0.29, 0.30]], subsets=["swap_att"])
    metric.compute(averaging="macro")
"""

from pathlib import Path

METRIC_PATH = str(Path(__file__).with_name("compositional_accuracy.py"))


def load_metric(config_name: str = "pos_beats_all", **kwargs):
    """``evaluate.load`` of the shipped script (``config_name`` picks the decision rule)."""
    import evaluate

    return evaluate.load(METRIC_PATH, config_name, **kwargs)
