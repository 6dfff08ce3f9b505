"""Tiny, locally built stand-ins for the hub checkpoints READ uses.

Every test and the offline demo load models through ``from_pretrained(path)``, the
same code path as ``openai/clip-vit-base-patch32`` and ``google/t5-v1_1-large``.
This module writes folders that path can read: a ``CLIPModel`` with a CLIP-format
BPE vocabulary and a T5 v1.1-style model (gated-gelu, untied ``lm_head``) with a
SentencePiece vocabulary, both trained here on a small corpus.
"""

from __future__ import annotations

import collections
import io
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import torch

DEFAULT_CORPUS = [
    "a red cube to the left of a blue sphere",
    "a small green cylinder above a large yellow cube",
    "two dogs playing with a ball in the park",
    "a man riding a brown horse on the beach",
    "a woman holding an umbrella in the rain",
    "a cat sleeping on a wooden table next to a laptop",
    "three birds sitting on a power line at sunset",
    "a plate of food with broccoli and rice",
    "a child flying a kite in a grassy field",
    "a white boat floating on calm water under a cloudy sky",
    "an old black car parked beside a tall building",
    "a purple triangle below an orange circle",
]


def bytes_to_unicode() -> dict[int, str]:
    """CLIP/GPT-2's reversible byte -> printable-unicode table (vocabularies are stored in it)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


# CLIP lower-cases and splits words like this before BPE (letters, single digits, punctuation runs).
_CLIP_WORD = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d|[a-z]+|[0-9]|[^\sa-z0-9]+")


def train_clip_bpe(corpus: Iterable[str], num_merges: int = 400) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Learn CLIP-format BPE merges (end-of-word marked ``</w>``) on ``corpus``.

    The vocabulary is laid out as CLIP's is: 256 byte symbols, the same with ``</w>``,
    one entry per merge, then ``<|startoftext|>`` and ``<|endoftext|>``.
    """
    byte_map = bytes_to_unicode()
    words = collections.Counter()
    for line in corpus:
        for w in _CLIP_WORD.findall(line.lower()):
            symbols = [byte_map[b] for b in w.encode("utf-8")]
            symbols[-1] += "</w>"
            words[tuple(symbols)] += 1

    merges: list[tuple[str, str]] = []
    for _ in range(num_merges):
        pairs = collections.Counter()
        for word, freq in words.items():
            for a, b in zip(word, word[1:]):
                pairs[(a, b)] += freq
        if not pairs:
            break
        # Ties broken by the pair itself so the vocabulary is deterministic.
        best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))[0]
        merges.append(best)
        merged = {}
        for word, freq in words.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + freq
        words = merged

    base = list(byte_map.values())
    tokens = base + [s + "</w>" for s in base] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(dict.fromkeys(tokens))}, merges


def build_clip_tokenizer(folder: str | os.PathLike, corpus: Iterable[str], num_merges: int = 400):
    """Write ``vocab.json`` + ``merges.txt`` and save a ``CLIPTokenizer`` built from them."""
    from transformers import CLIPTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab, merges = train_clip_bpe(corpus, num_merges)
    # Like T5Tokenizer, the CLIPTokenizer constructor ignores vocab files in current
    # transformers; from_pretrained on a folder holding them converts them.
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
    (folder / "tokenizer.json").unlink(missing_ok=True)  # a stale one would win over the files above
    tokenizer = CLIPTokenizer.from_pretrained(folder)
    tokenizer.model_max_length = 77
    tokenizer.save_pretrained(folder)
    return tokenizer


def build_t5_tokenizer(folder: str | os.PathLike, corpus: Iterable[str], vocab_size: int = 200):
    """Train a SentencePiece unigram model with T5's special ids (pad 0, eos 1, unk 2).

    ``T5Tokenizer(vocab_file=...)`` silently ignores the file in current transformers,
    so the model is placed in the folder as ``spiece.model`` and loaded with
    ``from_pretrained``, which converts it.
    """
    import sentencepiece as spm
    from transformers import T5Tokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # Sentences from an iterator and the model into memory: spiece.model records its trainer's
    # input file and output prefix, and temporary paths there would make every build's bytes differ.
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(list(corpus)), model_writer=model, vocab_size=vocab_size,
        model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
        character_coverage=1.0, hard_vocab_limit=False, minloglevel=2,
    )
    (folder / "spiece.model").write_bytes(model.getvalue())
    (folder / "tokenizer.json").unlink(missing_ok=True)
    tokenizer = T5Tokenizer.from_pretrained(folder, extra_ids=0)
    tokenizer.model_max_length = 77
    tokenizer.save_pretrained(folder)
    return tokenizer


@dataclass
class TinyClipSpec:
    """Sizes of the tiny CLIP (defaults: seconds per step on 2 CPU cores)."""

    image_size: int = 32
    patch_size: int = 8
    hidden_size: int = 64
    intermediate_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    projection_dim: int = 32
    num_merges: int = 400


@dataclass
class TinyT5Spec:
    """Sizes of the tiny T5 v1.1-style model (gated-gelu, untied head, no output scaling)."""

    d_model: int = 48
    d_ff: int = 96
    d_kv: int = 12
    num_layers: int = 2
    num_heads: int = 4
    vocab_size: int = 200
    dropout_rate: float = 0.1


def write_tiny_clip(folder: str | os.PathLike, corpus: Iterable[str] = DEFAULT_CORPUS,
                    spec: TinyClipSpec = TinyClipSpec(), seed: int = 0) -> Path:
    """Save a random-weight ``CLIPModel`` + ``CLIPProcessor`` into ``folder``."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    folder = Path(folder)
    corpus = list(corpus)
    tokenizer = build_clip_tokenizer(folder, corpus, spec.num_merges)
    text_cfg = dict(
        vocab_size=len(tokenizer), hidden_size=spec.hidden_size, intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers, num_attention_heads=spec.num_heads, max_position_embeddings=77,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    vision_cfg = dict(
        hidden_size=spec.hidden_size, intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers, num_attention_heads=spec.num_heads,
        image_size=spec.image_size, patch_size=spec.patch_size,
    )
    config = CLIPConfig(text_config=text_cfg, vision_config=vision_cfg, projection_dim=spec.projection_dim)
    torch.manual_seed(seed)
    model = CLIPModel(config)
    model.save_pretrained(folder)
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": spec.image_size}, crop_size={"height": spec.image_size, "width": spec.image_size}
    )
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def write_tiny_t5(folder: str | os.PathLike, corpus: Iterable[str] = DEFAULT_CORPUS,
                  spec: TinyT5Spec = TinyT5Spec(), seed: int = 0, model=None) -> Path:
    """Save a T5 v1.1-style ``T5ForConditionalGeneration`` + tokenizer into ``folder``.

    transformers 5 forces ``tie_word_embeddings=True`` on a freshly built ``T5Config``
    and ``save_pretrained`` then drops ``lm_head``; real v1.1 checkpoints store an
    untied head and ``tie_word_embeddings: false``. We write exactly that layout, so
    loading goes through the same branch as ``google/t5-v1_1-large``.
    """
    from transformers import T5Config, T5ForConditionalGeneration

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = build_t5_tokenizer(folder, list(corpus), spec.vocab_size)
    if model is None:
        config = T5Config(
            vocab_size=len(tokenizer), d_model=spec.d_model, d_ff=spec.d_ff, d_kv=spec.d_kv,
            num_layers=spec.num_layers, num_decoder_layers=spec.num_layers, num_heads=spec.num_heads,
            feed_forward_proj="gated-gelu", dropout_rate=spec.dropout_rate, tie_word_embeddings=False,
            decoder_start_token_id=tokenizer.pad_token_id, pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        torch.manual_seed(seed)
        model = T5ForConditionalGeneration(config)
        # Untie: v1.1 has an independent output head.
        model.lm_head.weight = torch.nn.Parameter(torch.randn_like(model.shared.weight) * spec.d_model**-0.5)
    save_t5_untied(model, folder)
    return folder


def save_t5_untied(model, folder: str | os.PathLike) -> None:
    """Save a T5 model with its own ``lm_head.weight`` and ``tie_word_embeddings: false``."""
    from safetensors.torch import save_file

    folder = Path(folder)
    model.config.save_pretrained(folder)
    cfg_path = folder / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["tie_word_embeddings"] = False
    cfg["architectures"] = ["T5ForConditionalGeneration"]
    cfg_path.write_text(json.dumps(cfg, indent=2))
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    # The stacks' embed_tokens are the shared embedding; like hub checkpoints, store it once.
    state = {k: v for k, v in state.items() if not k.endswith("embed_tokens.weight")}
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})


def write_tiny_models(root: str | os.PathLike, corpus: Iterable[str] = DEFAULT_CORPUS,
                      clip_spec: TinyClipSpec = TinyClipSpec(), t5_spec: TinyT5Spec = TinyT5Spec(),
                      seed: int = 0) -> tuple[Path, Path]:
    """Write ``root/clip`` and ``root/t5``; return both paths (pass them as model ids)."""
    root = Path(root)
    corpus = list(corpus)
    return (write_tiny_clip(root / "clip", corpus, clip_spec, seed),
            write_tiny_t5(root / "t5", corpus, t5_spec, seed))
