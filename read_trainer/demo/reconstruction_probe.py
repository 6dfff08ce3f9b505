"""What READ's reconstruction term can ask of a text encoder on the synthetic world.

Measurements that train nothing (``recipes/probe_reconstruction.py`` runs the first three;
``recipes/ablation.py`` reports all four next to its reconstruction variants):

1. **What a target says that its anchor does not** (``unstated_share``). For each
   reconstruction target (``random_caption``: uniform over the image's captions, anchor
   included, as the reference recipe; ``anchor``: the anchor itself; ``paraphrase``: the
   anchor's own paraphrase), the share of the target's meaning atoms (objects and
   relations, ``caption_to_meaning``) that the anchor does not state. No encoding of an
   anchor can help the decoder predict what the anchor does not say.
2. **The frozen decoder's loss when it reads its own pretraining memory**
   (``own_memory_losses``: its T5 encoder, mean-pooled to one token, as it was pretrained),
   per target, dropout off and on: the floor a READ projection of the CLIP text embedding
   can approach.
3. **What word order is worth to the decoder** (``order_gap``). On the world's swap_att /
   swap_obj items (a caption, its paraphrase, the caption with two attributes or two objects
   swapped): the decoder's per-token loss of each target given the true caption's memory
   and given the swapped caption's memory, and how often the true memory gives the lower
   loss. The two memories hold the same words, so this gap is all the reconstruction loss
   can gain from an encoder that knows which attribute belongs to which object.
4. **Whether READ's memory carries what the decoder reads** (``read_memory_order_gap``):
   the same test with the memory READ trains instead of the decoder's own (the fine-tuned
   CLIP text tower's pooled state through the learned projection), after fine-tuning.
"""

from __future__ import annotations

import math
import random
import statistics

import torch
import torch.nn.functional as F

from .base_models import pooled_encoding
from .captions import caption_to_meaning

TARGETS = ("random_caption", "anchor", "paraphrase")


def target_pairs(split, target: str, seed: int = 0) -> list[tuple[str, str]]:
    """(anchor, target) for every caption of every image, the target drawn as the collator draws it."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    rng = random.Random(seed)
    pairs = []
    for captions, paraphrases in zip(split["captions"], split["paraphrases"]):
        for caption, paraphrase in zip(captions, paraphrases):
            chosen = {"anchor": caption, "paraphrase": paraphrase}.get(target) or rng.choice(captions)
            pairs.append((caption, chosen))
    return pairs


def unstated_share(split) -> dict[str, float]:
    """Per target: mean share of the target's meaning atoms that its anchor does not state.

    For ``random_caption`` the expectation over the uniform draw is computed exactly
    (every caption of the image as the target, equally weighted).
    """
    def unstated(anchor: str, target: str) -> float:
        a, t = caption_to_meaning(anchor), caption_to_meaning(target)
        return len(t - a) / len(t)

    shares = {"random_caption": [], "anchor": [], "paraphrase": []}
    for captions, paraphrases in zip(split["captions"], split["paraphrases"]):
        for caption, paraphrase in zip(captions, paraphrases):
            shares["anchor"].append(unstated(caption, caption))
            shares["paraphrase"].append(unstated(caption, paraphrase))
            shares["random_caption"].append(statistics.fmean(unstated(caption, other) for other in captions))
    return {name: statistics.fmean(values) for name, values in shares.items()}


@torch.no_grad()
def mean_memory(model, tokenizer, sources: list[str], batch_size: int = 256) -> torch.Tensor:
    """The average of ``sources``' pooled memories, (1, 1, d_model): a memory that says nothing about any one."""
    total, count = 0.0, 0
    for start in range(0, len(sources), batch_size):
        enc = tokenizer(sources[start:start + batch_size], padding=True, return_tensors="pt")
        memory = pooled_encoding(model, enc)
        total, count = total + memory.sum(0, keepdim=True), count + memory.shape[0]
    return total / count


@torch.no_grad()
def sequence_losses(model, tokenizer, sources: list[str], targets: list[str], batch_size: int = 256,
                    memory: torch.Tensor | None = None) -> list[tuple]:
    """Per pair: (summed token loss of ``target`` given ``source``'s pooled memory, target tokens).

    ``memory`` (1, 1, d_model): use it for every pair instead of the sources' own.
    """
    out = []
    for start in range(0, len(sources), batch_size):
        enc = tokenizer(sources[start:start + batch_size], padding=True, return_tensors="pt")
        labels = tokenizer(targets[start:start + batch_size], padding=True, return_tensors="pt")
        label_ids = labels["input_ids"].masked_fill(labels["attention_mask"] == 0, -100)
        rows = label_ids.shape[0]
        pooled = pooled_encoding(model, enc) if memory is None else memory.expand(rows, 1, memory.shape[-1])
        logits = model(encoder_outputs=(pooled,), labels=label_ids).logits
        token_loss = F.cross_entropy(logits.transpose(1, 2), label_ids, ignore_index=-100, reduction="none")
        mask = label_ids != -100
        out += list(zip((token_loss * mask).sum(1).tolist(), mask.sum(1).tolist()))
    return out


def token_mean(losses: list[tuple]) -> float:
    return sum(s for s, _ in losses) / sum(n for _, n in losses)


def own_memory_losses(model, tokenizer, split, limit: int) -> dict:
    """Token-mean loss of each target given the decoder's own pooled memory of the anchor.

    ``dropout_off`` / ``dropout_on``: the decoder in eval / train mode. ``no_information``
    (dropout off): every target given one memory, the average over all anchors, so the
    decoder predicts from its language prior alone; the distance down to ``dropout_off`` is
    what reading the anchor's memory is worth.
    """
    rows = split.select(range(min(limit, len(split))))
    result = {}
    for target in TARGETS:
        sources, targets = (list(x) for x in zip(*target_pairs(rows, target)))
        result[target] = {}
        for mode in ("eval", "train"):
            model.train(mode == "train")
            torch.manual_seed(0)
            result[target][f"dropout_{'on' if mode == 'train' else 'off'}"] = token_mean(
                sequence_losses(model, tokenizer, sources, targets))
        model.eval()
        result[target]["no_information"] = token_mean(sequence_losses(
            model, tokenizer, sources, targets, memory=mean_memory(model, tokenizer, sources)))
    return result


def swap_items(split) -> list[dict]:
    """The split's swap_att / swap_obj false-caption items."""
    return [item for items in split["false_captions"] for item in items if item["category"] in ("swap_att", "swap_obj")]


def _order_gap(items: list[dict], losses) -> dict:
    """``losses(sources, targets)`` -> per-pair (summed loss, tokens); caption and paraphrase targets."""
    result = {"items": len(items)}
    for name, key in (("caption", "caption"), ("paraphrase", "caption2")):
        targets = [item[key] for item in items]
        true = losses([item["caption"] for item in items], targets)
        swapped = losses([item["negative_caption"] for item in items], targets)
        result[name] = {
            "loss_given_true": token_mean(true), "loss_given_swapped": token_mean(swapped),
            "gap_per_token": token_mean(swapped) - token_mean(true),
            "true_memory_lower": statistics.fmean(float(t[0] < s[0]) for t, s in zip(true, swapped)),
        }
    return result


def order_gap(model, tokenizer, split) -> dict:
    """Loss of the caption and of its paraphrase given the true vs the swapped caption's memory."""
    model.eval()
    return _order_gap(swap_items(split), lambda sources, targets: sequence_losses(model, tokenizer, sources, targets))


@torch.no_grad()
def read_memory_losses(read_model, clip_tokenizer, t5_tokenizer, sources: list[str], targets: list[str],
                       batch_size: int = 256) -> list[tuple]:
    """Like :func:`sequence_losses`, with READ's memory of each source instead of the T5 encoder's.

    READ's memory is what its reconstruction term trains: the CLIP text tower's pooled state
    of the source through the learned projection (``ReadModel.text_to_decoder``), read by the
    frozen decoder with dropout off. The model's train/eval mode is restored afterwards.
    """
    device = next(read_model.parameters()).device
    was_training = read_model.training
    read_model.eval()
    out = []
    try:
        for start in range(0, len(sources), batch_size):
            texts = clip_tokenizer(sources[start:start + batch_size], padding=True, truncation=True, max_length=77,
                                   return_tensors="pt").to(device)
            with torch.no_grad():
                pooled, _ = read_model.encode_text(texts["input_ids"], texts["attention_mask"])
            labels = t5_tokenizer(targets[start:start + batch_size], padding=True, return_tensors="pt")
            label_ids = labels["input_ids"].masked_fill(labels["attention_mask"] == 0, -100).to(device)
            logits = read_model.reconstruction_logits(pooled, label_ids).float()
            token_loss = F.cross_entropy(logits.transpose(1, 2), label_ids, ignore_index=-100, reduction="none")
            mask = label_ids != -100
            out += list(zip((token_loss * mask).sum(1).tolist(), mask.sum(1).tolist()))
    finally:
        read_model.train(was_training)
    return out


@torch.no_grad()
def own_order_separation(model, tokenizer, split, batch_size: int = 256) -> float:
    """Mean ``||m(caption) - m(swap)|| / ||m(caption)||`` over ``split``'s swap items, ``m`` being the T5's
    own one-token memory (its encoder, mean-pooled): how far apart the memories the decoder learnt to
    read order from put a caption and its swap (compare ``order_separation``'s ``decoder_memory``)."""
    model.eval()
    items, total = swap_items(split), 0.0
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        true, swapped = (pooled_encoding(model, tokenizer([item[key] for item in chunk], padding=True,
                                                          return_tensors="pt")).squeeze(1).float()
                         for key in ("caption", "negative_caption"))
        total += float(((true - swapped).norm(dim=-1) / true.norm(dim=-1)).sum())
    return total / max(len(items), 1)


def read_memory_order_gap(read_model, clip_tokenizer, t5_tokenizer, split) -> dict:
    """:func:`order_gap` through READ's memory: does the fine-tuned text tower, projected, give the frozen
    decoder the binding it reads? (The decoder's own memory sets what it can read: ``order_gap``.)"""
    return _order_gap(swap_items(split), lambda sources, targets: read_memory_losses(
        read_model, clip_tokenizer, t5_tokenizer, sources, targets))


@torch.no_grad()
def order_separation(read_model, clip_tokenizer, split, batch_size: int = 256) -> dict:
    """How far apart the model puts each swap item's caption and its swap, in each space the
    text tower feeds, as a relative change ``mean ||f(caption) - f(swap)|| / ||f(caption)||``:

    * ``pooled``: the tower's pooled state itself (what both heads read);
    * ``contrastive``: the ``text_projection`` of it (before L2-normalising), what the
      image-text scores read;
    * ``decoder_memory``: the ``text_to_decoder`` projection of it, what the frozen decoder
      reads (models with a decoder only).

    Reconstruction's gradient reaches the tower through ``text_to_decoder`` only (the
    contrastive head's ``text_projection`` gets none from it), so order the term teaches can
    sit in directions the contrastive head does not read: then ``decoder_memory`` separates
    while ``contrastive`` does not move. Also ``contrastive_cosine_distance``: mean
    ``1 - cos`` of the two normalised embeddings, the quantity the scores compare.
    """
    items = swap_items(split)
    device = next(read_model.parameters()).device
    was_training = read_model.training
    read_model.eval()
    heads = {"pooled": lambda pooled: pooled, "contrastive": read_model.clip.text_projection}
    if getattr(read_model, "text_to_decoder", None) is not None:
        heads["decoder_memory"] = read_model.text_to_decoder
    sums = dict.fromkeys(heads, 0.0) | {"contrastive_cosine_distance": 0.0}
    try:
        for start in range(0, len(items), batch_size):
            chunk = items[start:start + batch_size]
            pooled = []
            for key in ("caption", "negative_caption"):
                texts = clip_tokenizer([item[key] for item in chunk], padding=True, truncation=True, max_length=77,
                                       return_tensors="pt").to(device)
                pooled.append(read_model.encode_text(texts["input_ids"], texts["attention_mask"])[0].float())
            for name, head in heads.items():
                true, swapped = head(pooled[0]).float(), head(pooled[1]).float()
                sums[name] += float(((true - swapped).norm(dim=-1) / true.norm(dim=-1)).sum())
                if name == "contrastive":
                    sums["contrastive_cosine_distance"] += float((1 - F.cosine_similarity(true, swapped, dim=-1)).sum())
    finally:
        read_model.train(was_training)
    return {"items": len(items)} | {name: total / max(len(items), 1) for name, total in sums.items()}


def probe_decoder(decoder: str, world, limit: int = 1000) -> dict:
    """All three measurements for the T5 checkpoint ``decoder`` on ``world`` (train and test splits).

    ``limit`` bounds the images per split used for the decoder losses (the target shares use
    every image; the order gap uses every swap item of the test split).
    """
    from transformers import AutoTokenizer

    from ..modeling import load_t5

    model, tokenizer = load_t5(decoder), AutoTokenizer.from_pretrained(decoder)
    return {
        "decoder": str(decoder),
        "unstated_share": {split: unstated_share(world[split]) for split in ("train", "test")},
        "own_memory_loss": {split: own_memory_losses(model, tokenizer, world[split], limit)
                            for split in ("train", "test")},
        "order_gap_test": order_gap(model, tokenizer, world["test"]),
        "order_separation_test": own_order_separation(model, tokenizer, world["test"]),
        "order_information_train": order_information(world["train"], tokenizer),
    }


def order_information(split, tokenizer, limit: int | None = None) -> dict:
    """How much a caption's word order says beyond its words, at most, in nats.

    For each caption: ``log(M)``, M = the number of distinct meanings among the caption and
    every single swap of two colours, sizes or shapes (the same words, another binding).
    A decoder that knew the words but not their order could at best spread its belief over
    those M readings; one that read the order perfectly would save at most ``log(M)`` nats
    on that caption. Returned per caption and per target token (T5 tokens, ``</s>``
    included), as means over the split's captions.
    """
    from .captions import caption_meaning, negative_candidates, parse_caption

    texts = [c for captions in split["captions"] for c in captions][:limit]
    nats, tokens = [], []
    for text in texts:
        caption = parse_caption(text)
        meanings = {caption_meaning(caption)}
        for category in ("swap_att", "swap_obj"):
            for cand in negative_candidates(caption, category, None):
                if any(c.kind == "anaphor" and len({np.shape for np in c.nps}) != 2 for c in cand):
                    continue  # not a world caption (the anaphor needs two different shapes)
                meanings.add(caption_meaning(cand))
        nats.append(math.log(len(meanings)))
        tokens.append(len(tokenizer(text)["input_ids"]))
    return {"captions": len(texts), "nats_per_caption": statistics.fmean(nats),
            "nats_per_token": sum(nats) / sum(tokens),
            "share_with_a_swap": statistics.fmean(float(n > 0) for n in nats)}
