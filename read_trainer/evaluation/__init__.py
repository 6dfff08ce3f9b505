"""Compositional benchmarks: loaders, batched scoring, the training callback.

Load benchmarks (``load_sugarcrepe``, ``load_valse``, ... or ``load_suite`` by name),
embed with a ``ClipEmbedder`` (any ``CLIPModel``, path or in memory), score with
``run_suite``, and write reports with ``report``. ``CompositionalEvalCallback`` runs
the same during training. A new benchmark is a ``Benchmark`` of ``Item``s with a rule
from ``rules``; pass it to ``run_suite`` like the built-in ones.
"""

from .aro import load_aro_order, load_aro_vg_attribution, load_aro_vg_relation
from .callback import CompositionalEvalCallback
from .crepe import load_crepe
from .embedding import CachedEmbedder, ClipEmbedder, Embedder, unwrap_clip
from .hub_datasets import load_choice_from_hub, load_winoground_from_hub
from .items import Benchmark, BenchmarkDataError, ImageRef, Item, ItemScores
from .one_at_a_time import decide_one_at_a_time
from .report import markdown_report, model_card_eval_results, plot_comparison, write_results_json
from .results import PAPER_SIX, BenchmarkResult, paper_average
from .retrieval import RetrievalTask, load_karpathy_retrieval
from .scoring import score_benchmark
from .sugarcrepe import load_sugarcrepe, load_sugarcrepe_pp_itt, load_sugarcrepe_pp_tot
from .suite import BENCHMARKS, SETS, evaluate_model, load_named, load_suite, run_suite
from .valse import load_valse
from .whatsup import load_whatsup
from .winoground import load_winoground
from .zeroshot import ZeroShotTask, load_imagefolder

__all__ = [
    "BENCHMARKS", "PAPER_SIX", "SETS", "Benchmark", "BenchmarkDataError", "BenchmarkResult", "CachedEmbedder",
    "ClipEmbedder", "CompositionalEvalCallback", "Embedder", "ImageRef", "Item", "ItemScores", "RetrievalTask",
    "ZeroShotTask", "decide_one_at_a_time", "evaluate_model", "load_aro_order", "load_aro_vg_attribution",
    "load_aro_vg_relation", "load_choice_from_hub", "load_crepe", "load_imagefolder", "load_karpathy_retrieval",
    "load_named", "load_suite", "load_sugarcrepe", "load_sugarcrepe_pp_itt", "load_sugarcrepe_pp_tot",
    "load_valse", "load_whatsup", "load_winoground", "load_winoground_from_hub", "markdown_report",
    "model_card_eval_results", "paper_average", "plot_comparison", "run_suite", "score_benchmark",
    "unwrap_clip", "write_results_json",
]
