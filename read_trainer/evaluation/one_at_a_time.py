"""The one-sample-at-a-time evaluator, kept as a correctness oracle and a speed baseline.

This is how reference evaluators score: for each item, open its images, run the
processor, embed its images and texts, compare. No de-duplication, no batching across
items. It shares the decision rules with the batched scorer (those are tested on their
own) but none of the embedding or gathering code, so agreement between the two checks
the batched path: ``tests/test_evaluation_model.py`` and ``benchmarks/bench_eval.py``.
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from .embedding import load_image, normalize, unwrap_clip
from .items import Benchmark, ItemScores


@torch.inference_mode()
def decide_one_at_a_time(benchmark: Benchmark, model: torch.nn.Module, processor,
                         progress: bool = False) -> dict[str, list[dict[str, str]]]:
    """Per-subset lists of per-item outcomes, computed item by item."""
    clip = unwrap_clip(model).eval()
    device = next(clip.parameters()).device
    max_length = clip.config.text_config.max_position_embeddings
    decisions: dict[str, list[dict[str, str]]] = {}
    for name, items in benchmark.subsets.items():
        decisions[name] = []
        for item in tqdm(items, desc=f"{benchmark.name}/{name} (one at a time)", disable=not progress, leave=False):
            tokens = processor.tokenizer(list(item.texts), padding=True, truncation=True, max_length=max_length,
                                         return_tensors="pt").to(device)
            texts = normalize(clip.get_text_features(**tokens).pooler_output)
            image_text = []
            if item.images:
                pixels = processor.image_processor(images=[load_image(r) for r in item.images],
                                                   return_tensors="pt")["pixel_values"].to(device)
                images = normalize(clip.get_image_features(pixel_values=pixels).pooler_output)
                image_text = (images @ texts.T).tolist()
            text_text = (texts @ texts.T).tolist() if benchmark.needs_text_text else None
            decisions[name].append(benchmark.rule(ItemScores(image_text, text_text)))
    return decisions
