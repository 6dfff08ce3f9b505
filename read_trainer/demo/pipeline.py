"""The demo pipeline on the synthetic world: the world and base models, then READ fine-tuning.

Shared by ``recipes/demo.py`` (one READ run, base vs fine-tuned) and ``recipes/ablation.py``
(base, NegCLIP-only, +reconstruction, +alignment, full READ over several seeds). Everything
here is the real training path -- ``ReadTrainer``, ``ReadCollator``, the hard-negative
generator -- with two world-specific pieces, each explained where it is defined:

* :class:`WorldNegatives` wraps :class:`~read_trainer.data.negatives.HardNegativeGenerator`
  so that negatives are world captions that are false for the image (swaps and relation
  replacements first) and never name a held-out colour-shape pair (the novel split must
  stay novel);
* :func:`training_rows` hands the world's paraphrases over as one list per caption, so
  each anchor is aligned with *its own* paraphrase (``paraphrases[i]`` paraphrases
  ``captions[i]``).

Scoring and reporting the results is ``report.py``.
"""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import datasets

from ..config import ReadConfig
from ..data.loading import DataArguments, to_read_schema
from ..data.negatives import SWAP_CATEGORIES, HardNegativeGenerator
from .base_models import BaseModels
from .dataset import HELD_OUT_PAIRS, caption_is_true, caption_to_meaning

_WORD = re.compile(r"[a-z]+")


def _held_out_pairs_in(text: str) -> set[tuple[str, str]]:
    """Held-out (colour, shape) pairs a text mentions, read word by word.

    Not ``caption_pairs``: a generator negative need not follow the world's templates
    ("a cyan sphere to the right of a photo of a red ring"), so it may not parse. Any
    colour word directly followed (after an optional size word) by a shape word counts.
    """
    words = _WORD.findall(text.lower())
    found = set()
    for i, word in enumerate(words):
        for j in (i + 1, i + 2):
            if j < len(words) and (word, words[j]) in HELD_OUT_PAIRS:
                found.add((word, words[j]))
    return found


# What a bag-of-words text encoder cannot reject: swaps keep the caption's words, and a
# relation replacement changes only a word such an encoder ignores. Attribute and object
# replacements (which the base already gets right, 90-95%) are the fallback.
PREFERRED_CATEGORIES = (*SWAP_CATEGORIES, "replace_rel")


class WorldNegatives:
    """``f(caption, n) -> up to n negatives`` for the collator: the package's generator, kept to the world.

    The generator (``HardNegativeGenerator``) parses captions with a COCO lexicon and knows
    nothing about the world, so its raw output for a world caption is mostly unusable here
    (measured on 1,000 train captions, 30 candidates each: ~60% do not parse as a world
    caption, e.g. "a small left cube on the blue side", "a red toy block"; only ~1.2 per
    caption are valid swaps). Such negatives are false from the text alone and teach the
    text tower grammar and vocabulary shortcuts instead of grounding. So this wrapper:

    * asks for swaps first, as the reference recipe does (NegCLIP-style swaps; replacements
      only when a caption has too few swaps, e.g. a one-object caption);
    * keeps a candidate only if it is a world caption (``caption_to_meaning`` parses it),
      means something else than the anchor, and is false for every training image the
      anchor describes (``scenes``); candidates that fail are used only to top up to ``k``;
    * never returns a negative naming a held-out colour-shape pair: swapping words of a train
      caption can create one ("red star"), which would leak the novel split into training.
    """

    def __init__(self, seed: int = 2025, k: int = 3, pool: int = 10,
                 scenes: Mapping[str, Sequence[str]] | None = None):
        self.generator = HardNegativeGenerator(seed=seed, categories=PREFERRED_CATEGORIES)
        self.k = k
        self.pool = pool
        self.scenes = scenes or {}
        self._cache: dict[str, list[str]] = {}

    @classmethod
    def for_split(cls, split: datasets.Dataset, seed: int = 2025, k: int = 3, pool: int = 10) -> "WorldNegatives":
        """With the scenes of ``split`` (caption -> scenes it describes), for the truth check."""
        cols = split.select_columns(["captions", "scene"]).to_dict()
        scenes: dict[str, list[str]] = {}
        for captions, scene in zip(cols["captions"], cols["scene"]):
            for caption in captions:
                scenes.setdefault(caption, []).append(scene)
        return cls(seed=seed, k=k, pool=pool, scenes=scenes)

    def __call__(self, caption: str, n: int) -> list[str]:
        """At most ``min(n, k)`` negatives, swaps first.

        Capped at ``k`` although the collator asks for ``2k`` (to vary its draw across
        epochs): valid swaps are scarce (~1.2 per caption) and valid replacements plentiful,
        so a random k of 2k would halve the swaps, the negatives the reference relies on.
        """
        if caption not in self._cache:  # deterministic per caption: anchors recur every epoch
            self._cache[caption] = self._choose(caption)
        return self._cache[caption][:n]

    def _choose(self, caption: str) -> list[str]:
        k = self.k
        meaning = caption_to_meaning(caption)
        scenes = self.scenes.get(caption, ())
        valid, others = [], []
        for negative in self.generator(caption, self.pool * k):
            if _held_out_pairs_in(negative):
                continue
            try:
                ok = caption_to_meaning(negative) != meaning and not any(caption_is_true(negative, s) for s in scenes)
            except ValueError:  # not a world caption: the generator garbled it or used a COCO word
                ok = False
            (valid if ok else others).append(negative)
        return (valid + others)[:k]


def _paraphrases_per_caption(batch: dict) -> dict:
    return {"paraphrases": [[[p] for p in paras] for paras in batch["paraphrases"]]}


def training_rows(train: datasets.Dataset) -> datasets.Dataset:
    """World train rows in READ's row schema (``image``, ``captions``, ``paraphrases``, ``row_id``).

    The world's ``paraphrases[i]`` paraphrases ``captions[i]`` (other captions of the image
    talk about other objects), so they are handed over as one list per caption, and the
    collator aligns each anchor with its own paraphrase rather than any of the image's.
    """
    rows = train.select_columns(["image", "captions", "paraphrases"])
    rows = rows.map(_paraphrases_per_caption, batched=True, keep_in_memory=True,
                    features=datasets.Features({**rows.features, "paraphrases": [[datasets.Value("string")]]}))
    return to_read_schema(rows, DataArguments())


def finetune(train: datasets.Dataset, config: ReadConfig, negatives=None, callbacks=None) -> Path:
    """READ-fine-tune ``config.model_name_or_path`` on the world and export to ``config.output_dir``.

    The export is a plain ``CLIPModel`` + ``CLIPProcessor`` (``ReadTrainer.save_model``).
    ``callbacks``: extra ``TrainerCallback``s (the ablation's loss and gradient records).
    """
    from ..trainer import ReadTrainer

    if negatives is None:
        negatives = WorldNegatives.for_split(train, seed=config.seed, k=config.num_hard_negatives)
    trainer = ReadTrainer(args=config, train_dataset=training_rows(train), negative_generator=negatives,
                          callbacks=callbacks)
    trainer.train()
    trainer.save_model()
    return Path(config.output_dir)


# ----------------------------------------------------------------------------- the demo's setup


@dataclass
class DemoArguments:
    """Flags of ``recipes/demo.py`` and ``recipes/ablation.py`` beyond ``ReadConfig``: the world's
    size and the base models' pretraining. Kept out of the YAML recipes, which hold only
    ``ReadConfig`` keys (so ``run_read.py`` and the config test read them too)."""

    out: str = field(default="outputs/demo", metadata={"help": "Folder for the exported model, results and chart."})
    cache: str = field(default=".cache", metadata={"help": "Cache folder for the world and the base models."})
    world_seed: int = field(default=0, metadata={"help": "Seed of the synthetic world."})
    n_train: int = field(default=4000, metadata={"help": "Training images in the world."})
    n_test: int = field(default=500, metadata={"help": "iid test images."})
    n_novel: int = field(default=500, metadata={"help": "Novel-composition test images."})
    image_size: int = field(
        default=96, metadata={"help": "Image side in pixels, a multiple of 3: the base CLIP uses one patch per cell "
                                      "of the world's 3x3 grid (see base_models.demo_clip_spec)."})
    clip_pretrain_steps: int | None = field(
        default=None, metadata={"help": "Base CLIP pretraining steps (default: base_models.ClipPretraining)."})
    t5_pretrain_steps: int | None = field(
        default=None, metadata={"help": "Base T5 pretraining steps (default: base_models.T5Pretraining)."})
    eval_batch_size: int = field(default=512, metadata={"help": "Batch size for embedding texts and images."})
    progress: bool = field(default=True, metadata={"help": "Show progress bars."})
    rebuild_base: bool = field(
        default=False, metadata={"help": "Pretrain the base CLIP and T5 from scratch (cached under --cache) instead "
                                         "of loading the checkpoints shipped in read_trainer/demo/base_checkpoints "
                                         "(used only when the world and pretraining flags are the defaults)."})
    threads: int = field(
        default=1, metadata={"help": "torch CPU threads for fine-tuning and evaluation. Results are deterministic "
                                     "for a given count, not across counts; the README's table is for 1. On two "
                                     "cores shared with other jobs, 2 threads measured 10x the CPU time per "
                                     "step of 1 (each step waits for its slowest thread)."})


def pretraining_settings(demo: DemoArguments):
    """The base models' pretraining recipes, with the step counts the flags override."""
    from .base_models import ClipPretraining, T5Pretraining, demo_clip_spec

    clip, t5 = ClipPretraining(spec=demo_clip_spec(demo.image_size)), T5Pretraining()
    if demo.clip_pretrain_steps is not None:
        clip = dataclasses.replace(clip, steps=demo.clip_pretrain_steps,
                                   warmup_steps=min(clip.warmup_steps, demo.clip_pretrain_steps // 10))
    if demo.t5_pretrain_steps is not None:
        t5 = dataclasses.replace(t5, steps=demo.t5_pretrain_steps,
                                 warmup_steps=min(t5.warmup_steps, demo.t5_pretrain_steps // 10))
    return clip, t5


class Stopwatch:
    """Wall and CPU time per stage, printed as it goes and kept for results.json.

    CPU time is the process's (all its threads): on a machine other jobs share, wall time
    grows with their load and CPU time much less, so the two together say how loaded it was.
    """

    def __init__(self, prefix: str = "demo"):
        self.prefix = prefix
        self.start = time.perf_counter()
        self.cpu_start = time.process_time()
        self._cpu_mark = self.cpu_start
        self.stages: dict[str, float] = {}
        self.cpu_stages: dict[str, float] = {}

    def stage(self, name: str, began: float) -> None:
        """Close stage ``name``, begun at ``began`` (``time.perf_counter()``); its CPU time runs
        from the previous stage's end (stages follow each other)."""
        cpu_now = time.process_time()
        self.stages[name] = round(time.perf_counter() - began, 1)
        self.cpu_stages[name] = round(cpu_now - self._cpu_mark, 1)
        self._cpu_mark = cpu_now
        print(f"[{self.prefix}] {name}: {self.stages[name]:.1f}s wall, {self.cpu_stages[name]:.1f}s CPU "
              f"(total {self.total:.1f}s)", flush=True)

    @property
    def total(self) -> float:
        return round(time.perf_counter() - self.start, 1)

    @property
    def cpu_total(self) -> float:
        return round(time.process_time() - self.cpu_start, 1)

    def breakdown(self) -> str:
        """One line per stage and the total: wall and CPU seconds."""
        rows = [(name, self.stages[name], self.cpu_stages.get(name, 0.0)) for name in self.stages]
        rows.append(("total", self.total, self.cpu_total))
        width = max(len(name) for name, _, _ in rows)
        lines = [f"{'stage':<{width}}  {'wall s':>7}  {'CPU s':>7}"]
        lines += [f"{name:<{width}}  {wall:>7.1f}  {cpu:>7.1f}" for name, wall, cpu in rows]
        return "\n".join(lines)


@dataclass
class Prepared:
    """What every run of the demo and the ablation starts from."""

    world: datasets.DatasetDict
    world_params: dict
    base: BaseModels


def prepare(demo: DemoArguments, watch: Stopwatch) -> Prepared:
    """Steps 1-2 of the demo: the world (cached) and the base models.

    The base models are the checksum-verified shipped checkpoints when they were built for
    these settings (the defaults) and ``--rebuild_base`` is not given; otherwise they are
    pretrained here, or taken from the cache when an earlier run did that.
    """
    from .base_models import base_models, is_cached
    from .dataset import build_world, world_params
    from .shipped_base import SHIPPED_DIR, compare_to_shipped, describe_comparison, shipped_applies, shipped_base

    began = time.perf_counter()
    params = world_params(demo.world_seed, demo.n_train, demo.n_test, demo.n_novel, demo.image_size)
    world = build_world(demo.world_seed, demo.n_train, demo.n_test, demo.n_novel, demo.image_size,
                        cache_dir=Path(demo.cache) / "world")
    watch.stage("world", began)

    began = time.perf_counter()
    clip_recipe, t5_recipe = pretraining_settings(demo)
    if not demo.rebuild_base and shipped_applies(params, clip_recipe, t5_recipe):
        base = shipped_base()  # ChecksumError naming the file if a shipped file was altered
        watch.stage("base models (shipped, checksums verified)", began)
        return Prepared(world, params, base)
    models_dir = Path(demo.cache) / "world_models"
    cached = is_cached(models_dir, params, clip_recipe, t5_recipe)
    if not cached:
        why = ("--rebuild_base" if demo.rebuild_base
               else f"the checkpoints shipped in {SHIPPED_DIR} were built for the default world and pretraining")
        print(f"[{watch.prefix}] pretraining the base CLIP (plain CLIP loss) and T5 on the world ({why}); "
              f"cached in {models_dir} for next time", flush=True)
    base = base_models(world, params, models_dir, clip_recipe, t5_recipe, progress=demo.progress)
    watch.stage("base models" + (" (cached)" if cached else ""), began)
    if shipped_applies(params, clip_recipe, t5_recipe):  # the default settings: the build should be the shipped one
        print(f"[{watch.prefix}] base models in {models_dir}: {describe_comparison(compare_to_shipped(base))}",
              flush=True)
    return Prepared(world, params, base)
