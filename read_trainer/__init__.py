"""read-trainer: READ fine-tuning for CLIP on the Hugging Face Trainer.

The public API, importable from the top level (``from read_trainer import ReadTrainer``):

Training
    ``ReadConfig``            the ``TrainingArguments`` subclass with READ's options
    ``ReadTrainer``           the ``Trainer``: READ's losses, logging, saving a plain ``CLIPModel``
    ``ReadModel``             CLIP + frozen T5 decoder + projection (what the trainer trains)
    ``ReadCollator``          rows (image, captions, paraphrases, negatives) to a training batch
    ``DataArguments``         dataset and column options of ``recipes/run_read.py``
    ``load_read_datasets``    train / eval datasets in the row schema, from those options
    ``scan_dataset``          the up-front check of every row and image
    ``open_read_stream``      the streamed train data (``--streaming``): this process's checked rows
    ``write_webdataset_shards``  rows to webdataset shards for streaming
    ``HardNegativeGenerator`` rule-based swap / replace negatives, no model download
    ``wise_ft``               weight interpolation between a base and a fine-tuned CLIP

Evaluation
    ``load_suite``, ``load_named``    benchmarks by name from a data folder
    ``evaluate_model``                score a model (hub id, folder or in memory) on loaded benchmarks
    ``run_suite``                     score with any ``Embedder``, each unique input embedded once
    ``ClipEmbedder``                  batched, L2-normalised CLIP embeddings of texts and images
    ``CompositionalEvalCallback``     the same benchmarks during training
    ``Benchmark``, ``Item``, ``ImageRef``, ``BenchmarkResult``   build and read your own benchmark
    ``markdown_report``, ``write_results_json``, ``plot_comparison``, ``model_card_eval_results``,
    ``paper_average``                 report results

Publishing
    ``build_model_card``, ``read_training_args``, ``upload_folder``
    ``base_model_of``         the base model an export was fine-tuned from (hub id or this machine's folder)

Names are imported on first use (PEP 562 ``__getattr__``), so ``import read_trainer`` loads
neither torch nor transformers and opens no connection; the submodules stay importable as
before (``read_trainer.evaluation``, ``read_trainer.data.negatives``, ...).
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# Public name -> the module that defines it.
_EXPORTS = {
    "ReadConfig": "read_trainer.config",
    "ReadTrainer": "read_trainer.trainer",
    "ReadModel": "read_trainer.modeling",
    "ReadCollator": "read_trainer.data.collator",
    "DataArguments": "read_trainer.data.loading",
    "load_read_datasets": "read_trainer.data.loading",
    "scan_dataset": "read_trainer.data.scan",
    "open_read_stream": "read_trainer.data.streaming",
    "write_webdataset_shards": "read_trainer.data.shards",
    "HardNegativeGenerator": "read_trainer.data.negatives",
    "wise_ft": "read_trainer.wise",
    "load_suite": "read_trainer.evaluation.suite",
    "load_named": "read_trainer.evaluation.suite",
    "evaluate_model": "read_trainer.evaluation.suite",
    "run_suite": "read_trainer.evaluation.suite",
    "ClipEmbedder": "read_trainer.evaluation.embedding",
    "CompositionalEvalCallback": "read_trainer.evaluation.callback",
    "Benchmark": "read_trainer.evaluation.items",
    "Item": "read_trainer.evaluation.items",
    "ImageRef": "read_trainer.evaluation.items",
    "BenchmarkResult": "read_trainer.evaluation.results",
    "paper_average": "read_trainer.evaluation.results",
    "markdown_report": "read_trainer.evaluation.report",
    "write_results_json": "read_trainer.evaluation.report",
    "plot_comparison": "read_trainer.evaluation.report",
    "model_card_eval_results": "read_trainer.evaluation.report",
    "build_model_card": "read_trainer.hub",
    "read_training_args": "read_trainer.hub",
    "upload_folder": "read_trainer.hub",
    "base_model_of": "read_trainer.hub",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'read_trainer' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
