"""The synthetic compositional world: a procedural image-caption dataset where a bag-of-words
CLIP fails in a measurable way, built offline and deterministically from a seed.

Each image shows 1-3 objects (shape, colour, size) on a 3x3 grid; each gets five captions
from varied templates (as COCO has five), one paraphrase per caption (same meaning,
different wording) and one ground-truth false caption per SugarCrepe category, checked
false against the scene. Swap negatives ("a blue cube left of a red sphere" for "a red cube
left of a blue sphere") have exactly the caption's bag of words, which is the case a
bag-of-words text encoder cannot tell apart.

Splits: ``train``, ``test`` (same distribution) and ``novel``: every ``novel`` image shows at
least one colour-shape pair from :data:`HELD_OUT_PAIRS`, which never occurs in ``train`` or
``test`` (neither in images nor in any of their texts).

Columns of every split::

    image_id        str                 "<split>-<index>", unique across splits
    image           datasets.Image      64x64 RGB PNG by default
    captions        list[str]           5 true captions
    paraphrases     list[str]           paraphrases[i] means exactly what captions[i] means,
                                        never equal to any caption of the image
    scene           str                 JSON of the scene (see scenes.Scene)
    n_objects       int32
    false_captions  list[{category, caption, caption2, negative_caption}]
                    one per SugarCrepe category the image admits; caption is one of the
                    captions, caption2 its paraphrase, negative_caption false for the image

Usage::

    world = build_world(seed=0, cache_dir=".cache/world")
    items = world_eval_items(world["novel"])   # flat SugarCrepe(++)-style table
    texts = world_corpus(world)                # to train the tiny tokenizers
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
from collections import Counter
from pathlib import Path

import datasets

from .cache import cached_build
from .captions import (
    FALSE_CAPTION_CATEGORIES,
    Caption,
    caption_is_true,
    caption_pairs,
    caption_to_meaning,
    false_caption,
    paraphrase,
    parse_caption,
    random_caption,
    render_caption,
    world_vocabulary,
)
from .scenes import (
    ALL_PAIRS,
    COLOURS,
    HELD_OUT_PAIRS,
    RELATIONS,
    SEEN_PAIRS,
    SHAPES,
    SIZES,
    Scene,
    render_scene,
    sample_scene,
)

__all__ = [
    "WORLD_VERSION", "SPLITS", "FALSE_CAPTION_CATEGORIES", "COLOURS", "SHAPES", "SIZES", "RELATIONS", "HELD_OUT_PAIRS",
    "SEEN_PAIRS", "MIN_IMAGE_SIZE", "Scene", "build_world", "build_split", "make_example", "world_features",
    "world_eval_items", "world_corpus", "world_vocabulary", "export_imagefolder", "export_world_imagefolder",
    "caption_is_true", "caption_to_meaning", "caption_pairs", "parse_caption",
]

# Bump whenever generation changes what a (seed, sizes) pair produces: it keys the cache.
WORLD_VERSION = "1"
SPLITS: tuple[str, ...] = ("train", "test", "novel")
N_CAPTIONS = 5
MIN_IMAGE_SIZE = 32
# Enough attempts that running out means a bug (e.g. a template set too small), not bad luck.
_MAX_TRIES = 200
_PARAPHRASE_TRIES = 40
_PARAPHRASE_MIN_DISTANCE = 3


def world_features() -> datasets.Features:
    return datasets.Features({
        "image_id": datasets.Value("string"),
        "image": datasets.Image(),
        "captions": [datasets.Value("string")],
        "paraphrases": [datasets.Value("string")],
        "scene": datasets.Value("string"),
        "n_objects": datasets.Value("int32"),
        "false_captions": [{
            "category": datasets.Value("string"),
            "caption": datasets.Value("string"),
            "caption2": datasets.Value("string"),
            "negative_caption": datasets.Value("string"),
        }],
    })


def _image_rng(seed: int, split: str, index: int) -> random.Random:
    """One RNG per image, seeded from (seed, split, index): an image does not depend on
    how many images come before it, and string seeds hash the same in every process."""
    return random.Random(f"read-world/{seed}/{split}/{index}")


def _captions(rng: random.Random, scene: Scene) -> list[Caption]:
    captions: dict[str, Caption] = {}
    for _ in range(_MAX_TRIES):
        cap = random_caption(rng, scene)
        captions.setdefault(render_caption(cap), cap)
        if len(captions) == N_CAPTIONS:
            return list(captions.values())
    raise RuntimeError(f"could not find {N_CAPTIONS} distinct captions for {scene}")


def _word_distance(a: str, b: str) -> int:
    """Size of the symmetric difference of the two texts' word multisets."""
    ca, cb = Counter(a.split()), Counter(b.split())
    return sum(((ca - cb) + (cb - ca)).values())


def _paraphrases(rng: random.Random, captions: list[Caption]) -> list[str]:
    """One paraphrase per caption: never equal to any caption of the image, preferably
    distinct from the other paraphrases and at least ``_PARAPHRASE_MIN_DISTANCE`` words
    away from its caption (SugarCrepe++ paraphrases are lexically different, not a dropped
    "is"). A 1-object scene has few wordings per meaning, so the preferences are best effort.
    """
    taken = {render_caption(c) for c in captions}
    out: list[str] = []
    for cap in captions:
        original = render_caption(cap)
        best, best_key = None, None
        for _ in range(_PARAPHRASE_TRIES):
            text = render_caption(paraphrase(rng, cap))
            if text in taken:
                continue
            key = (text not in out, min(_word_distance(text, original), _PARAPHRASE_MIN_DISTANCE))
            if best_key is None or key > best_key:
                best, best_key = text, key
            if best_key == (True, _PARAPHRASE_MIN_DISTANCE):
                break
        if best is None:
            raise RuntimeError(f"no paraphrase for {original!r}")
        out.append(best)
    return out


def _mentions_held_out(caption: Caption) -> bool:
    return any((np.colour, np.shape) in HELD_OUT_PAIRS for clause in caption for np in clause.nps)


def _false_captions(rng: random.Random, captions: list[Caption], paraphrases: list[str], scene: Scene,
                    novel: bool) -> list[dict]:
    """At most one false caption per category, each from a random caption that admits one.

    In ``novel`` the item's caption must mention a held-out pair: a caption about the
    image's other objects would test nothing new. Elsewhere negatives may only mention seen
    pairs, so that no held-out combination reaches train (or the iid test) in any text.
    """
    allowed = ALL_PAIRS if novel else SEEN_PAIRS
    eligible = [i for i, c in enumerate(captions) if _mentions_held_out(c)] if novel else list(range(len(captions)))
    items = []
    for category in FALSE_CAPTION_CATEGORIES:
        for i in rng.sample(eligible, len(eligible)):
            negative = false_caption(rng, captions[i], category, scene, allowed)
            if negative is not None:
                items.append({"category": category, "caption": render_caption(captions[i]),
                              "caption2": paraphrases[i], "negative_caption": render_caption(negative)})
                break
    return items


def make_example(seed: int, split: str, index: int, image_size: int = 64) -> dict:
    """One row of ``split``, a pure function of its arguments."""
    rng = _image_rng(seed, split, index)
    novel = split == "novel"
    scene = sample_scene(rng, image_size, novel=novel)
    png = io.BytesIO()
    render_scene(scene).save(png, format="PNG")
    captions = _captions(rng, scene)
    paraphrases = _paraphrases(rng, captions)
    return {
        "image_id": f"{split}-{index:06d}",
        "image": {"bytes": png.getvalue(), "path": None},
        "captions": [render_caption(c) for c in captions],
        "paraphrases": paraphrases,
        "scene": scene.to_json(),
        "n_objects": len(scene.objects),
        "false_captions": _false_captions(rng, captions, paraphrases, scene, novel),
    }


def build_split(split: str, n: int, seed: int = 0, image_size: int = 64) -> datasets.Dataset:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if image_size < MIN_IMAGE_SIZE:
        raise ValueError(f"image_size must be >= {MIN_IMAGE_SIZE}: below that a small star or ring "
                         f"is a few pixels and shapes stop being tellable apart")
    rows = [make_example(seed, split, i, image_size) for i in range(n)]
    columns = {name: [r[name] for r in rows] for name in world_features()}
    return datasets.Dataset.from_dict(columns, features=world_features(), split=datasets.Split(split))


def world_params(seed: int, n_train: int, n_test: int, n_novel: int, image_size: int) -> dict:
    return {"version": WORLD_VERSION, "seed": seed, "n_train": n_train, "n_test": n_test,
            "n_novel": n_novel, "image_size": image_size}


def world_cache_path(cache_dir: str | os.PathLike, params: dict) -> Path:
    """``<cache_dir>/world-v<version>-<hash of every generation parameter>``."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    return Path(cache_dir) / f"world-v{params['version']}-{digest}"


def build_world(seed: int = 0, n_train: int = 4000, n_test: int = 500, n_novel: int = 500,
                image_size: int = 64, cache_dir: str | os.PathLike | None = None) -> datasets.DatasetDict:
    """Build (or load from ``cache_dir``) the world's ``train``/``test``/``novel`` splits.

    The result depends only on the arguments (and :data:`WORLD_VERSION`). With
    ``cache_dir`` the DatasetDict is saved under a folder named by those parameters and
    loaded from there next time; it is written to a temporary folder and renamed into
    place, so concurrent builders never see a half-written cache.
    """
    params = world_params(seed, n_train, n_test, n_novel, image_size)
    sizes = {"train": n_train, "test": n_test, "novel": n_novel}

    def build() -> datasets.DatasetDict:
        return datasets.DatasetDict({s: build_split(s, n, seed, image_size) for s, n in sizes.items()})

    if cache_dir is None:
        return build()
    path = world_cache_path(cache_dir, params)
    cached_build(path.parent, path.name, lambda tmp: build().save_to_disk(str(tmp)), params,
                 params_file="world_params.json")
    return datasets.load_from_disk(str(path))


def _flatten_false_captions(batch: dict) -> dict:
    out = {k: [] for k in ("image_id", "image", "category", "caption", "caption2", "negative_caption")}
    for image_id, image, items in zip(batch["image_id"], batch["image"], batch["false_captions"]):
        for item in items:
            out["image_id"].append(image_id)
            out["image"].append(image)
            for key in ("category", "caption", "caption2", "negative_caption"):
                out[key].append(item[key])
    return out


def world_eval_items(split: datasets.Dataset) -> datasets.Dataset:
    """One row per ground-truth false caption: ``image_id, image, category, caption, caption2,
    negative_caption``, the layout of SugarCrepe (caption vs negative_caption) and
    SugarCrepe++ (caption, caption2 paraphrase, negative_caption) items.

    Images pass through as PNG bytes (never decoded); ``keep_in_memory`` so that mapping a
    cached world writes nothing next to the shared cache.
    """
    items = (split.select_columns(["image_id", "image", "false_captions"])
             .cast_column("image", datasets.Image(decode=False))
             .map(_flatten_false_captions, batched=True, remove_columns=["false_captions"], keep_in_memory=True))
    return items.cast_column("image", datasets.Image())


def world_corpus(world: datasets.DatasetDict | datasets.Dataset, include_vocabulary: bool = True) -> list[str]:
    """Every distinct text of ``world`` (captions, paraphrases, negatives), in a stable order.

    With ``include_vocabulary`` the last line lists :func:`world_vocabulary`, so a tokenizer
    trained on the corpus knows every word any world text can contain.
    """
    splits = world.values() if isinstance(world, datasets.DatasetDict) else [world]
    texts: dict[str, None] = {}
    for ds in splits:
        cols = ds.select_columns(["captions", "paraphrases", "false_captions"]).to_dict()
        for caps, paras, items in zip(cols["captions"], cols["paraphrases"], cols["false_captions"]):
            texts.update(dict.fromkeys(caps))
            texts.update(dict.fromkeys(paras))
            texts.update(dict.fromkeys(item["negative_caption"] for item in items))
    corpus = list(texts)
    if include_vocabulary:
        corpus.append(" ".join(world_vocabulary()))
    return corpus


def export_imagefolder(split: datasets.Dataset, out_dir: str | os.PathLike) -> Path:
    """Write one split in the ``imagefolder`` layout: ``<out_dir>/<image_id>.png`` plus a
    ``metadata.jsonl`` (``file_name`` and every other column), readable with
    ``datasets.load_dataset("imagefolder", data_dir=out_dir)``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    raw = split.cast_column("image", datasets.Image(decode=False))
    with open(out / "metadata.jsonl", "w") as meta:
        for row in raw:
            file_name = f"{row['image_id']}.png"
            (out / file_name).write_bytes(row.pop("image")["bytes"])
            meta.write(json.dumps({"file_name": file_name, **row}) + "\n")
    return out


def export_world_imagefolder(world: datasets.DatasetDict, out_dir: str | os.PathLike,
                             splits: list[str] | None = None) -> Path:
    """Export ``splits`` (default: all) to ``<out_dir>/<split>/`` plus a ``README.md`` whose
    ``configs`` map each folder to its split, so ``datasets.load_dataset(out_dir)`` returns
    them all. Needed because ``load_dataset("imagefolder", data_dir=out_dir)`` infers splits
    from folder names it knows (train/test/validation...) and would silently drop ``novel``;
    ``load_dataset("imagefolder", data_dir=out_dir / split)`` reads a single split (as "train").
    """
    out = Path(out_dir)
    splits = list(world) if splits is None else splits
    for split in splits:
        export_imagefolder(world[split], out / split)
    files = "".join(f"  - split: {s}\n    path: {s}/**\n" for s in splits)
    (out / "README.md").write_text(
        "---\nconfigs:\n- config_name: default\n  data_files:\n" + files + "---\n"
        "# READ synthetic compositional world\n\n"
        f"Exported by read_trainer (world version {WORLD_VERSION}). Load all splits with "
        "`datasets.load_dataset(<this folder>)`, one with "
        "`datasets.load_dataset(\"imagefolder\", data_dir=<this folder>/<split>)`.\n")
    return out
