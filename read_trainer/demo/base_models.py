"""The demo's "pretrained" base models, trained here on the synthetic world and cached.

READ fine-tunes a CLIP that web-scale pretraining has made a bag-of-words text matcher,
and borrows the language knowledge of a pretrained T5 decoder. Neither checkpoint can be
downloaded where this project is built, so the demo makes small stand-ins for both:

* **Base CLIP** (:func:`pretrain_clip`): a tiny ``CLIPModel`` trained from scratch with the
  *plain* CLIP loss (in-batch negatives only, no hard negatives) on the world's ``train``
  split. In-batch negatives almost never differ only in *which* colour goes with *which*
  shape, so, like web-scale CLIP, the model can win its loss by matching bags of words and
  has no reason to learn binding or word order. The demo checks that it comes out that way
  (swap categories near chance, replace categories far above).
  It is trained by :class:`~read_trainer.trainer.ReadTrainer` itself with
  ``num_hard_negatives=0, reconstruction_weight=0, alignment_weight=0`` -- that trainer's
  plain-CLIP setting -- so the base sees exactly the data pipeline READ later sees.
* **Base T5** (:func:`pretrain_t5`): a tiny T5 v1.1-style model (gated-gelu, untied head)
  trained as an autoencoder of the world's texts through a one-token encoder memory (see
  :class:`T5Pretraining`), standing in for T5's knowledge of the language. READ keeps only
  its decoder, frozen, and feeds it one projected CLIP text state: the decoder's loss then
  depends on which attribute goes with which object in that memory, so reconstruction can
  reward a text embedding that binds them (``reconstruction_probe`` measures it).

Both are written as ``save_pretrained`` folders by :mod:`read_trainer.demo.tiny_models` and used
afterwards only through ``from_pretrained(path)``, the code path of the hub checkpoints.
They are cached under ``<cache_dir>/<kind>-<hash of every parameter>`` (the world's
parameters and the thread count included), written to a temporary folder and renamed into
place, so an interrupted or concurrent build never leaves a half-written model behind.

Both are built with torch fixed at :data:`BUILD_THREADS` CPU threads, whatever the machine
has: float sums are split across threads, so the thread count changes the trained weights,
and with it fixed a build reproduces the checkpoints shipped in ``base_checkpoints/``
bit for bit (``recipes/build_base_checkpoints.py`` checks that; ``shipped_base.py`` loads them).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import random
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import torch

from .cache import cached_build
from .tiny_models import TinyClipSpec, TinyT5Spec, save_t5_untied, write_tiny_clip, write_tiny_t5

# Bump when the training procedure changes what the same parameters produce: it keys the cache.
WORLD_MODELS_VERSION = "1"

# torch CPU threads of every base-model build (see the module docstring). One: with one thread
# the sums do not depend on how many cores the machine has, and on a loaded machine a
# multi-threaded step waits on its slowest thread (measured on two shared cores: 10x the CPU time).
BUILD_THREADS = 1


@contextmanager
def torch_threads(n: int):
    """Run the block with ``torch.set_num_threads(n)``, restoring the previous count after."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def demo_clip_spec(image_size: int = 96) -> TinyClipSpec:
    """The demo's CLIP: one patch per cell of the world's 3x3 layout grid (``image_size / 3``).

    The world places every object inside one cell of a 3x3 grid, so with patches aligned to
    that grid each object lies in exactly one patch, always at the same offset. Misaligned
    patches (8 px at 64 px: a cell is 2.67 patches) cut every object differently, and a
    tiny ViT pretrained for a few minutes then barely learns shapes at all (measured:
    replace-object accuracy ~58%, near chance). Aligned, the vision tower sees objects, and
    what is left to learn is how words combine -- the part where CLIP is a bag of words
    (Yuksekgonul et al., 2023) and that READ is about. 96 px keeps small shapes (17 px)
    legible; ten vision tokens keep the image side cheap.
    """
    if image_size % 3:
        raise ValueError(f"image_size must be a multiple of 3 (one patch per grid cell), got {image_size}")
    return TinyClipSpec(image_size=image_size, patch_size=image_size // 3, hidden_size=96, intermediate_size=384,
                        num_layers=3, num_heads=4, projection_dim=64, num_merges=600)


def demo_t5_spec() -> TinyT5Spec:
    """The demo's T5 v1.1-style model. ``d_model`` is what the READ projection maps to.

    Two decoder layers: the frozen decoder runs in every READ step (forward, and backward
    into the one-token memory), so its size is demo time; at this size it reconstructs the
    world's texts near-exactly from one memory token (``T5Pretraining``).
    """
    return TinyT5Spec(d_model=128, d_ff=256, d_kv=32, num_layers=2, num_heads=4, vocab_size=256, dropout_rate=0.1)


@dataclass(frozen=True)
class ClipPretraining:
    """How the base CLIP is trained (plain CLIP loss, from random weights).

    The learning rate is that of training from scratch (READ's 1e-5 is for nudging a
    converged model); steps are what fits the demo's budget on two CPU cores.
    """

    spec: TinyClipSpec = field(default_factory=demo_clip_spec)
    steps: int = 400
    batch_size: int = 128
    learning_rate: float = 1e-3
    warmup_steps: int = 40
    weight_decay: float = 0.1
    logit_scale: float = 100.0
    seed: int = 0


@dataclass(frozen=True)
class T5Pretraining:
    """How the base T5 is trained: seq2seq with T5's own loss on world texts.

    ``memory="pooled"`` mean-pools the encoder's output to a single token before the decoder
    reads it, the way READ will feed the decoder (one projected CLIP embedding); ``"full"``
    is ordinary seq2seq. A real T5-large decoder copes with a one-token memory it never saw
    in pretraining; a two-layer, 128-wide one trained for minutes does not, so it is
    pretrained the way it is used.

    ``task`` (see :func:`paraphrase_pairs`): ``"auto"`` (the default) reconstructs every
    caption and paraphrase from its own memory; ``"para"`` maps caption <-> paraphrase;
    ``"mix"`` does both. Autoencoding is the task whose answer the memory fixes: a world
    paraphrase is one of several wordings drawn at random, so a paraphraser (or a decoder
    that must also copy, ``"mix"``, where the memory cannot say which is asked) learns to
    spread its belief over wordings and over which object comes first, and then completes
    the sentence from the bag of words it was given. Measured on the test split's swap
    items (``reconstruction_probe.order_gap``, caption targets): ``"para"``, 600 steps
    (the earlier base): the true memory wins 46.6%, gap -0.0001 nats/token; ``"mix"``,
    3000 steps: 97.1%, gap 0.049, own-memory loss 0.24; ``"auto"``, 1500 steps: 98.4%,
    gap 0.255, own-memory loss 0.065 (near-exact).

    ``steps``: what brings the autoencoder's own-memory loss near zero (about 12 CPU
    minutes at 1 thread, once: the result is shipped).
    """

    spec: TinyT5Spec = field(default_factory=demo_t5_spec)
    memory: str = "pooled"
    task: str = "auto"
    steps: int = 3000
    batch_size: int = 64
    learning_rate: float = 2e-3
    warmup_steps: int = 50
    weight_decay: float = 0.01
    seed: int = 0


# ----------------------------------------------------------------------------- caching


def cache_key(kind: str, params: dict) -> str:
    """``<kind>-<16 hex digits>``: a hash of every parameter that changes the model."""
    blob = json.dumps({"version": WORLD_MODELS_VERSION, "kind": kind, **params}, sort_keys=True, default=str)
    return f"{kind}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


def _params(obj) -> dict:
    return dataclasses.asdict(obj)


def build_params(kind: str, world_params: dict, recipe) -> dict:
    """What a ``kind`` ("clip" or "t5") build depends on: the world, its recipe, the thread count.

    Written as ``build_params.json`` into every built folder (cached or shipped).
    """
    return {"world": world_params, kind: _params(recipe), "threads": BUILD_THREADS}


# ----------------------------------------------------------------------------- CLIP


def set_logit_scale(folder: Path, scale: float) -> None:
    """Start the saved CLIP at temperature ``1/scale`` (CLIP's ``logit_scale`` is its log).

    CLIP initialises the scale at 1/0.07 ~ 14 and learns it; web-scale training drives it
    to its clamp, 100. Adam moves the log-scale by at most ~lr per step, so in a few hundred
    steps it can only reach ~20, and at that temperature the base's similarities stay soft:
    captions that differ only in binding score within 0.01 of each other and contribute
    almost no gradient, in pretraining and in READ alike. Starting at 100 gives the base
    the temperature of the real one.
    """
    from transformers import CLIPModel

    model = CLIPModel.from_pretrained(folder)
    model.logit_scale.data.fill_(math.log(scale))
    model.config.logit_scale_init_value = math.log(scale)
    model.save_pretrained(folder)


def drop_load_options(folder: Path) -> None:
    """Remove ``local_files_only`` from a saved ``tokenizer_config.json``.

    transformers writes the option the tokenizer was loaded with, which follows the
    environment (``HF_HUB_OFFLINE``), not the model: left in, the same build gives other
    bytes with and without that variable.
    """
    path = Path(folder) / "tokenizer_config.json"
    if path.is_file():
        config = json.loads(path.read_text(encoding="utf-8"))
        if config.pop("local_files_only", None) is not None:
            path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def pretrain_clip(train: datasets.Dataset, corpus: list[str], folder: str | os.PathLike,
                  training: ClipPretraining = ClipPretraining(), progress: bool = True) -> Path:
    """Train the base CLIP on ``train`` (world rows) and save it to ``folder``.

    A random-weight ``CLIPModel`` with a BPE tokenizer learnt on ``corpus`` is written
    first (``tiny_models.write_tiny_clip``), then trained by ``ReadTrainer`` in its plain
    CLIP setting: one random caption per image, in-batch negatives only.
    """
    # Imported here: the trainer pulls in the whole training stack, the cache check does not need it.
    from ..checkpoint import TRAINING_ARGS_NAME
    from ..config import ReadConfig
    from ..data.loading import DataArguments, to_read_schema
    from ..publish_files import LOCAL_PATHS_NAME
    from ..trainer import ReadTrainer

    folder = Path(folder)
    with tempfile.TemporaryDirectory(dir=folder.parent) as scratch:
        init = write_tiny_clip(Path(scratch) / "init", corpus, training.spec, seed=training.seed)
        set_logit_scale(init, training.logit_scale)
        args = ReadConfig(
            output_dir=str(Path(scratch) / "trainer"), model_name_or_path=str(init),
            num_hard_negatives=0, reconstruction_weight=0.0, alignment_weight=0.0,
            max_steps=training.steps, per_device_train_batch_size=training.batch_size,
            learning_rate=training.learning_rate, warmup_steps=training.warmup_steps,
            weight_decay=training.weight_decay, lr_scheduler_type="cosine", seed=training.seed,
            logging_steps=max(1, training.steps // 10), save_strategy="no", report_to="none",
            use_cpu=True, dataloader_num_workers=0, disable_tqdm=not progress,
            # The step settings the shipped checkpoints were built with, so a rebuild stays byte-identical.
            padding_bucket=16, length_groups=1, torch_threads=BUILD_THREADS,
        )
        dataset = to_read_schema(train.select_columns(["image", "captions"]), DataArguments())
        trainer = ReadTrainer(args=args, train_dataset=dataset)
        trainer.train()
        trainer.save_model(str(folder))
    # The export's copy of the trainer arguments and its record of local folders name the scratch
    # folders above (random names), so no two builds would be byte-identical; build_params.json
    # records how the model was built.
    (folder / TRAINING_ARGS_NAME).unlink(missing_ok=True)
    (folder / LOCAL_PATHS_NAME).unlink(missing_ok=True)
    drop_load_options(folder)
    return folder


# ----------------------------------------------------------------------------- T5


PRETRAINING_TASKS = ("auto", "para", "mix")


def paraphrase_pairs(train: datasets.Dataset, task: str = "mix") -> list[tuple[str, str]]:
    """(source, target) pairs of the world's texts: every caption and every paraphrase with
    itself (``task="auto"``), every caption with its paraphrase in both directions
    (``"para"``), or both (``"mix"``)."""
    if task not in PRETRAINING_TASKS:
        raise ValueError(f"task must be one of {PRETRAINING_TASKS}, got {task!r}")
    cols = train.select_columns(["captions", "paraphrases"]).to_dict()
    pairs = []
    for captions, paraphrases in zip(cols["captions"], cols["paraphrases"]):
        for caption, para in zip(captions, paraphrases):
            if task in ("para", "mix"):
                pairs += [(caption, para), (para, caption)]
            if task in ("auto", "mix"):
                pairs += [(caption, caption), (para, para)]
    return pairs


def t5_tokenizer_corpus(corpus: list[str], repeats: int = 50) -> list[str]:
    """``corpus`` plus every world word on a line of its own, ``repeats`` times (see ``pretrain_t5``)."""
    from .dataset import world_vocabulary

    return list(corpus) + world_vocabulary() * repeats


def _t5_batches(pairs: list[tuple[str, str]], batch_size: int, steps: int, seed: int):
    """``steps`` batches drawn epoch by epoch from a seeded shuffle of ``pairs``."""
    rng = random.Random(seed)
    order: list[int] = []
    for _ in range(steps):
        if len(order) < batch_size:
            fresh = list(range(len(pairs)))
            rng.shuffle(fresh)
            order += fresh
        chosen, order = order[:batch_size], order[batch_size:]
        yield [pairs[i] for i in chosen]


def pooled_encoding(model, enc) -> torch.Tensor:
    """The encoder's output mean-pooled over real tokens: (B, 1, d_model), one memory token."""
    hidden = model.encoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1, keepdim=True) / mask.sum(1, keepdim=True)


def pretrain_t5(train: datasets.Dataset, corpus: list[str], folder: str | os.PathLike,
                training: T5Pretraining = T5Pretraining(), progress: bool = True) -> Path:
    """Train the base T5 on ``train`` (``training.task``) and save it to ``folder`` (v1.1 layout).

    A plain loop rather than a Trainer: it is a few lines, and the untied v1.1 layout has
    to be written by ``tiny_models.save_t5_untied`` anyway.
    """
    from tqdm.auto import tqdm
    from transformers import AutoTokenizer, get_cosine_schedule_with_warmup

    from ..modeling import load_t5

    if training.memory not in ("pooled", "full"):
        raise ValueError(f"memory must be 'pooled' or 'full', got {training.memory!r}")
    if training.task not in PRETRAINING_TASKS:
        raise ValueError(f"task must be one of {PRETRAINING_TASKS}, got {training.task!r}")
    folder = Path(folder)
    # tokenizer + random v1.1 weights. Each vocabulary word also goes in as a line of its own:
    # on the world's highly repetitive sentences alone, SentencePiece's unigram trainer stops
    # at ~84 sub-word pieces ("white" -> w|h|it|e), which doubles sequence lengths and makes
    # the decoder spell rather than read; with the word lines every world word is one piece.
    write_tiny_t5(folder, t5_tokenizer_corpus(corpus), training.spec, seed=training.seed)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(training.seed)
    model = load_t5(folder)  # no tie_word_embeddings warning for this untied v1.1 checkpoint
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=training.learning_rate, weight_decay=training.weight_decay)
    schedule = get_cosine_schedule_with_warmup(optimizer, training.warmup_steps, training.steps)
    pairs = paraphrase_pairs(train, training.task)
    bar = tqdm(_t5_batches(pairs, training.batch_size, training.steps, training.seed), total=training.steps,
               desc="pretraining base T5", disable=not progress)
    for batch in bar:
        sources, targets = zip(*batch)
        enc = tokenizer(list(sources), padding=True, return_tensors="pt")
        labels = tokenizer(list(targets), padding=True, return_tensors="pt")
        label_ids = labels["input_ids"].masked_fill(labels["attention_mask"] == 0, -100)
        if training.memory == "pooled":
            loss = model(encoder_outputs=(pooled_encoding(model, enc),), labels=label_ids).loss
        else:
            loss = model(**enc, labels=label_ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        bar.set_postfix(loss=f"{loss.item():.3f}")
    save_t5_untied(model, folder)
    drop_load_options(folder)
    return folder


# ----------------------------------------------------------------------------- both


@dataclass(frozen=True)
class BaseModels:
    """Paths of the cached base checkpoints (pass them as ``model_name_or_path`` / ``decoder_name_or_path``)."""

    clip: Path
    t5: Path


def base_models(world: datasets.DatasetDict, world_params: dict, cache_dir: str | os.PathLike,
                clip: ClipPretraining = ClipPretraining(), t5: T5Pretraining = T5Pretraining(),
                progress: bool = True) -> BaseModels:
    """The base CLIP and T5 for ``world`` (built by ``build_world(**world_params)``), cached.

    Tokenizers are learnt on the world's whole corpus (all splits and the full vocabulary
    line): a hub tokenizer also knows words its model never saw together, and the novel
    split must not be out-of-vocabulary text.
    """
    from .dataset import world_corpus

    corpus = world_corpus(world)
    clip_params, t5_params = build_params("clip", world_params, clip), build_params("t5", world_params, t5)
    with torch_threads(BUILD_THREADS):
        clip_path = cached_build(cache_dir, cache_key("clip", clip_params),
                                 lambda tmp: pretrain_clip(world["train"], corpus, tmp, clip, progress), clip_params)
        t5_path = cached_build(cache_dir, cache_key("t5", t5_params),
                               lambda tmp: pretrain_t5(world["train"], corpus, tmp, t5, progress), t5_params)
    return BaseModels(clip_path, t5_path)


def is_cached(cache_dir: str | os.PathLike, world_params: dict, clip: ClipPretraining = ClipPretraining(),
              t5: T5Pretraining = T5Pretraining()) -> bool:
    """Whether both base models for these parameters are already on disk."""
    keys = (cache_key("clip", build_params("clip", world_params, clip)),
            cache_key("t5", build_params("t5", world_params, t5)))
    return all((Path(cache_dir) / k / "build_params.json").exists() for k in keys)


__all__ = [
    "WORLD_MODELS_VERSION", "BUILD_THREADS", "torch_threads", "build_params", "ClipPretraining", "T5Pretraining",
    "BaseModels", "base_models", "is_cached",
    "pretrain_clip", "pretrain_t5", "paraphrase_pairs", "PRETRAINING_TASKS", "demo_clip_spec", "demo_t5_spec", "cache_key",
    "cached_build",
]
