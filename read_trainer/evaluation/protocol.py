"""Evaluation protocols: this suite's strict rules, and the READ paper's harness.

Two protocols score the same items and differ in exactly three places:

``strict`` (the default everywhere)
    A tie is never a win: the positive must beat every negative strictly (``rules``). What'sUp's
    total is the mean of its three groups (controlled, COCO-QA, VG-QA), each group the mean of its
    two files. Images go through the model's image processor as loaded.

``read`` (what the READ paper's numbers were computed with)
    The official READ-CLIP evaluator (github.com/JiH00nKw0n/READ-CLIP, ``src/runners/base.py`` and
    ``evaluator.py`` at b2f096ca) scores SugarCrepe, VALSE, What'sUp and CREPE items with
    ``int(similarity_scores.argmax() == 0)``: torch's argmax returns the first maximum, so a
    positive *tied* with the best negative counts as correct (``rules.positive_first_max``). Its
    What'sUp total pools each group's rows (every ``coco*`` row together, every ``vg*`` row, the
    rest as one controlled group) before the mean of the three (``pooled_groups``). SugarCrepe++
    ITT and TOT use strict ``>`` comparisons in that harness too, so they are the same under both.
    Images are resized with PIL, as the official run's ``CLIPProcessor`` did (transformers 4.48.3,
    whose ``CLIPProcessor.image_processor_class`` is the PIL-based ``CLIPImageProcessor``; its
    pixel values equal ``CLIPImageProcessorPil``'s exactly); transformers 5 picks a torchvision
    backend when torchvision is installed, whose resize differs slightly.

On data where no item ties and What'sUp's files are equal-sized the two agree; the real
benchmarks have both (CREPE holds negatives that tokenize exactly like their caption, which always
tie; What'sUp's files differ in size), so the totals move. Compare a run with the paper under
``read``. Benchmarks the READ harness does not run (ARO, Winoground, retrieval, zero-shot) are
scored the same under both.
"""

from __future__ import annotations

import dataclasses

from . import rules
from .items import Benchmark

PROTOCOLS = {
    "strict": "ties count as wrong; What'sUp = mean of 3 groups, each the mean of its 2 files; the model's own "
              "image processor",
    "read": "the READ harness: a tie with the best negative counts for the positive (argmax == 0, first maximum) "
            "on SugarCrepe, VALSE, What'sUp, CREPE; What'sUp = mean of 3 groups, each pooling its rows; PIL resize",
}
# The benchmarks the READ harness scores with argmax == 0.
ARGMAX_BENCHMARKS = ("sugarcrepe", "valse", "whatsup", "crepe")
READ_HARNESS_BENCHMARKS = ARGMAX_BENCHMARKS + ("sugarcrepe_pp_itt", "sugarcrepe_pp_tot")


def check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown evaluation protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    return protocol


def apply_protocol(benchmark: Benchmark, protocol: str) -> Benchmark:
    """``benchmark`` with the rule and averaging of ``protocol`` (a benchmark outside the READ
    harness is returned unchanged: both protocols score it the same way)."""
    check_protocol(protocol)
    if protocol == "strict" or benchmark.name not in READ_HARNESS_BENCHMARKS:
        return benchmark
    rule = rules.positive_first_max if benchmark.rule is rules.positive_beats_all else benchmark.rule
    averaging = "pooled_groups" if benchmark.averaging == "macro_of_groups" else benchmark.averaging
    return dataclasses.replace(benchmark, rule=rule, averaging=averaging, protocol=protocol)


def credits_ties(name: str, protocol: str) -> bool:
    """Whether a tie counts as correct for benchmark ``name`` under ``protocol``."""
    return protocol == "read" and name in ARGMAX_BENCHMARKS


def pil_image_processor(name_or_path: str):
    """The model's CLIP image processor with PIL resizing, as the official READ run used."""
    from transformers import AutoImageProcessor

    try:
        processor = AutoImageProcessor.from_pretrained(name_or_path, backend="pil")
    except TypeError:  # a transformers 5 release before image-processor backends
        processor = AutoImageProcessor.from_pretrained(name_or_path, use_fast=False)
    if "Pil" not in type(processor).__name__ and getattr(processor, "is_fast", False):
        raise ValueError(f"{name_or_path}: no PIL-based image processor available ({type(processor).__name__})")
    return processor


def embedder_for(name_or_path: str, protocol: str = "strict", **embedder_kwargs):
    """A ``ClipEmbedder`` for a model folder or hub id, with the image processing ``protocol`` asks for."""
    from transformers import CLIPModel, CLIPProcessor

    from .embedding import ClipEmbedder

    check_protocol(protocol)
    processor = CLIPProcessor.from_pretrained(name_or_path)
    if protocol == "read":
        processor.image_processor = pil_image_processor(name_or_path)
    return ClipEmbedder(CLIPModel.from_pretrained(name_or_path), processor, **embedder_kwargs)
