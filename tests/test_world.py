"""Invariants of the synthetic compositional world (read_trainer.demo.dataset).

The truth checker reads caption *text* against the stored scene, independently of how the
generator built the caption, so these tests catch a template that renders something other
than what the generator meant.
"""

from __future__ import annotations

import importlib.util
import random
from collections import Counter
from pathlib import Path

import datasets
import numpy as np
import pytest

from read_trainer.demo import dataset as world_mod
from read_trainer.demo.captions import (
    ANAPHOR_TEMPLATE,
    NP,
    REL_TEMPLATES,
    SIDE_TEMPLATE,
    Clause,
    all_templates,
    caption_meaning,
    render_caption,
)
from read_trainer.demo.dataset import (
    FALSE_CAPTION_CATEGORIES,
    HELD_OUT_PAIRS,
    SPLITS,
    Scene,
    build_split,
    build_world,
    caption_is_true,
    caption_pairs,
    caption_to_meaning,
    export_imagefolder,
    export_world_imagefolder,
    make_example,
    world_corpus,
    world_eval_items,
    world_vocabulary,
)
from read_trainer.demo.scenes import COLOURS, GRID, WorldObject, relation_margin, render_scene, sample_scene

SIZES = {"n_train": 240, "n_test": 60, "n_novel": 60}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> datasets.DatasetDict:
    return build_world(seed=0, cache_dir=tmp_path_factory.mktemp("world_cache"), **SIZES)


def bag_of_words(text: str) -> Counter:
    """Word counts with punctuation split off, as CLIP's tokenizer splits it."""
    return Counter(text.replace(",", " , ").split())


def rows(ds: datasets.Dataset):
    """Text columns as plain python rows, with the parsed scene."""
    cols = ds.select_columns(["image_id", "captions", "paraphrases", "false_captions", "scene"]).to_dict()
    for i in range(len(ds)):
        row = {k: v[i] for k, v in cols.items()}
        row["scene"] = Scene.from_json(row["scene"])
        yield row


# ----------------------------------------------------------------------------- the truth checker

def two_object_scene() -> Scene:
    # red cube top-left cell, blue sphere top-right cell, 64 px image
    return Scene(64, (WorldObject("cube", "red", "large", 10.7, 10.7, 9.3),
                      WorldObject("sphere", "blue", "small", 53.3, 10.7, 5.8)))


@pytest.mark.parametrize("caption, truth", [
    ("a red cube to the left of a blue sphere", True),
    ("a blue sphere is to the right of a large red cube", True),
    ("a red cube and a blue sphere, the sphere is on the right", True),
    ("a red cube on the left and a blue sphere on the right", True),
    ("a blue cube to the left of a red sphere", False),       # swap_att
    ("a red sphere to the left of a blue cube", False),       # swap_obj
    ("a red cube to the right of a blue sphere", False),      # replace_rel (opposite)
    ("a red cube above a blue sphere", False),                # replace_rel (same row: not above)
    ("a small red cube", False),                              # replace_att (size)
    ("a red cube, and there is also a blue sphere", True),
    ("a red star", False),                                    # replace_obj
])
def test_truth_checker_on_a_hand_made_scene(caption, truth):
    assert caption_is_true(caption, two_object_scene()) is truth


def test_truth_checker_rejects_text_outside_the_grammar():
    with pytest.raises(ValueError):
        caption_is_true("a dog chasing a red cube", two_object_scene())
    with pytest.raises(ValueError):  # contradictory sides
        caption_is_true("a red cube on the left and a blue sphere on the left", two_object_scene())


def test_every_template_parses_back_to_its_meaning():
    x, y, z = NP("cube", "red", "large"), NP("sphere", "blue"), NP("star", "green", "small")
    for template in all_templates():
        n_np = template.count("{X}") + template.count("{Y}") + template.count("{Z}")
        nps = (x, y, z)[:n_np]
        rels = ["left", "right", "above", "below"] if template in (*REL_TEMPLATES, SIDE_TEMPLATE, ANAPHOR_TEMPLATE) \
            else [None]
        for rel in rels:
            clause = Clause(template, nps, rel, 1, "sphere" if template == ANAPHOR_TEMPLATE else None)
            text = render_caption((clause,))
            assert caption_to_meaning(text) == caption_meaning((clause,)), text


# ----------------------------------------------------------------------------- captions, paraphrases, negatives

def test_every_caption_and_paraphrase_is_true(world):
    for ds in world.values():
        for row in rows(ds):
            caps, paras = row["captions"], row["paraphrases"]
            assert len(caps) == 5 and len(set(caps)) == 5
            assert len(paras) == len(caps)
            for cap, para in zip(caps, paras):
                assert caption_is_true(cap, row["scene"]), (row["image_id"], cap)
                assert caption_is_true(para, row["scene"]), (row["image_id"], para)
                # a paraphrase says exactly what its caption says, in other words
                assert caption_to_meaning(para) == caption_to_meaning(cap), (cap, para)
                assert para not in caps


def test_every_false_caption_is_false_for_its_image(world):
    seen = Counter()
    for split, ds in world.items():
        for row in rows(ds):
            for item in row["false_captions"]:
                assert item["category"] in FALSE_CAPTION_CATEGORIES
                assert not caption_is_true(item["negative_caption"], row["scene"]), (row["image_id"], item)
                i = row["captions"].index(item["caption"])
                assert item["caption2"] == row["paraphrases"][i]
                seen[split, item["category"]] += 1
            assert len({item["category"] for item in row["false_captions"]}) == len(row["false_captions"])
    for split in SPLITS:  # every category is well represented in every split
        for category in FALSE_CAPTION_CATEGORIES:
            assert seen[split, category] >= 0.4 * len(world[split]), (split, category, seen)


def test_swap_negatives_have_the_same_bag_of_words(world):
    n = 0
    for ds in world.values():
        for row in rows(ds):
            for item in row["false_captions"]:
                if item["category"].startswith("swap_"):
                    assert bag_of_words(item["negative_caption"]) == bag_of_words(item["caption"])
                    assert item["negative_caption"] != item["caption"]
                    n += 1
    assert n > 0


def test_replace_obj_names_a_shape_absent_from_the_image(world):
    for row in rows(world["test"]):
        shapes = {o.shape for o in row["scene"].objects}
        for item in row["false_captions"]:
            if item["category"] == "replace_obj":
                mentioned = {atom[1][2] for atom in caption_to_meaning(item["negative_caption"]) if atom[0] == "exists"}
                mentioned |= {key[2] for atom in caption_to_meaning(item["negative_caption"]) if atom[0] == "rel"
                              for key in (atom[1], atom[3])}
                assert mentioned - shapes, item


def test_most_images_have_two_or_more_objects(world):
    counts = Counter(len(row["scene"].objects) for row in rows(world["train"]))
    assert set(counts) <= {1, 2, 3}
    assert counts[1] <= 0.2 * sum(counts.values())


# ----------------------------------------------------------------------------- splits

def test_held_out_pairs_never_occur_in_train_or_test(world):
    for split in ("train", "test"):
        for row in rows(world[split]):
            assert not row["scene"].pairs() & HELD_OUT_PAIRS, row["image_id"]
            texts = row["captions"] + row["paraphrases"] + [i["negative_caption"] for i in row["false_captions"]]
            for text in texts:
                assert not caption_pairs(text) & HELD_OUT_PAIRS, text


def test_every_novel_image_shows_a_held_out_pair(world):
    for row in rows(world["novel"]):
        assert row["scene"].pairs() & HELD_OUT_PAIRS, row["image_id"]
        for item in row["false_captions"]:  # novel eval items are about the novel object
            assert caption_pairs(item["caption"]) & HELD_OUT_PAIRS, item


def test_every_word_is_seen_in_train_even_with_pairs_held_out():
    colours, shapes = {c for c, _ in HELD_OUT_PAIRS}, {s for _, s in HELD_OUT_PAIRS}
    pairs = Counter(c for c, _ in HELD_OUT_PAIRS) + Counter(s for _, s in HELD_OUT_PAIRS)
    assert max(pairs.values()) <= 2 and colours and shapes  # no colour/shape loses most partners
    train_pairs = set()
    rng = random.Random(0)
    for _ in range(300):
        train_pairs |= sample_scene(rng, 64, novel=False).pairs()
    assert {c for c, _ in train_pairs} == set(COLOURS)


# ----------------------------------------------------------------------------- pixels

def pixel_centroid(image: np.ndarray, colour: str) -> tuple[float, float]:
    ys, xs = np.nonzero(np.all(image == np.array(COLOURS[colour], dtype=image.dtype), axis=-1))
    assert len(xs) > 0, colour
    return float(xs.mean()), float(ys.mean())


def test_rendered_pixels_agree_with_scene_and_stated_relations(world):
    ds = world["test"]
    for k, row in enumerate(rows(ds)):
        image = np.asarray(ds[k]["image"].convert("RGB"))
        scene = row["scene"]
        centre = {}
        for o in scene.objects:  # colours are unique within a scene: a colour mask is one object
            cx, cy = pixel_centroid(image, o.colour)
            assert abs(cx - o.x) <= 1.5 and abs(cy - o.y) <= 1.5, (row["image_id"], o, cx, cy)
            centre[o.colour] = (cx, cy)
        # every relation a caption states holds between the drawn objects, by a clear margin
        margin = relation_margin(scene.image_size) - 2.0
        for cap in row["captions"] + row["paraphrases"]:
            for atom in caption_to_meaning(cap):
                if atom[0] != "rel":
                    continue
                _, a, relation, b = atom  # canonical: relation is "left" or "above"
                (ax, ay), (bx, by) = centre[a[1]], centre[b[1]]
                if relation == "left":
                    assert bx - ax >= margin, (row["image_id"], cap)
                else:
                    assert by - ay >= margin, (row["image_id"], cap)


def test_objects_never_overlap():
    rng = random.Random(1)
    for _ in range(200):
        scene = sample_scene(rng, 64, novel=bool(rng.getrandbits(1)))
        image = np.asarray(render_scene(scene))
        for o in scene.objects:  # each object's full shape is on screen in its own colour
            mask = np.all(image == np.array(COLOURS[o.colour], dtype=np.uint8), axis=-1)
            ys, xs = np.nonzero(mask)
            assert xs.max() - xs.min() <= 2 * o.radius + 1 and ys.max() - ys.min() <= 2 * o.radius + 1
            assert abs(o.x - (xs.max() + xs.min()) / 2) < 64 / GRID / 2


# ----------------------------------------------------------------------------- determinism and cache

def test_same_seed_same_world_other_seed_other_world():
    a, b = build_split("train", 40, seed=3), build_split("train", 40, seed=3)
    c = build_split("train", 40, seed=4)
    raw = lambda ds: ds.cast_column("image", datasets.Image(decode=False)).to_dict()  # noqa: E731
    assert raw(a) == raw(b)
    assert raw(a)["captions"] != raw(c)["captions"]
    # an image depends on (seed, split, index) only, not on how many images precede it
    assert make_example(3, "train", 39) == make_example(3, "train", 39)
    assert raw(a)["scene"][39] == make_example(3, "train", 39)["scene"]


def test_cache_is_reused_and_keyed_by_parameters(tmp_path, monkeypatch):
    first = build_world(seed=1, n_train=8, n_test=4, n_novel=4, cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 1

    def no_rebuild(*args, **kwargs):
        raise AssertionError("the cached world should have been loaded, not rebuilt")

    monkeypatch.setattr(world_mod, "build_split", no_rebuild)
    again = build_world(seed=1, n_train=8, n_test=4, n_novel=4, cache_dir=tmp_path)
    assert again["train"]["captions"][:] == first["train"]["captions"][:]
    monkeypatch.undo()
    build_world(seed=1, n_train=8, n_test=4, n_novel=4, image_size=32, cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 2  # another parameter, another entry; no temp folders left


# ----------------------------------------------------------------------------- export, eval table, corpus

def test_imagefolder_export_reloads_with_captions_intact(world, tmp_path):
    split = world["novel"]
    export_imagefolder(split, tmp_path / "novel")
    loaded = datasets.load_dataset("imagefolder", data_dir=str(tmp_path / "novel"), split="train")
    assert len(loaded) == len(split)
    by_id = {r["image_id"]: r for r in loaded}
    for k in (0, len(split) - 1):
        original = split[k]
        back = by_id[original["image_id"]]
        assert back["captions"] == original["captions"]
        assert back["paraphrases"] == original["paraphrases"]
        assert back["false_captions"] == original["false_captions"]
        assert np.array_equal(np.asarray(back["image"]), np.asarray(original["image"]))


def test_world_export_keeps_the_novel_split(world, tmp_path):
    small = datasets.DatasetDict({s: world[s].select(range(3)) for s in SPLITS})
    export_world_imagefolder(small, tmp_path)
    loaded = datasets.load_dataset(str(tmp_path))
    assert set(loaded) == set(SPLITS)
    assert sorted(loaded["novel"]["image_id"]) == sorted(small["novel"]["image_id"])


def test_make_world_cli(tmp_path, capsys):
    path = Path(__file__).resolve().parents[1] / "recipes" / "make_world.py"
    spec = importlib.util.spec_from_file_location("make_world", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--n_train", "6", "--n_test", "3", "--n_novel", "3", "--cache_dir", str(tmp_path / "cache"),
                 "--out", str(tmp_path / "out"), "--splits", "test", "novel"])
    assert (tmp_path / "out" / "novel" / "metadata.jsonl").exists()
    assert not (tmp_path / "out" / "train").exists()
    assert "novel" in capsys.readouterr().out


def test_eval_items_flatten_the_false_captions(world):
    split = world["test"]
    items = world_eval_items(split)
    assert set(items.column_names) == {"image_id", "image", "category", "caption", "caption2", "negative_caption"}
    assert len(items) == sum(len(x) for x in split["false_captions"])
    first = items[0]
    row = split[int(first["image_id"].split("-")[1])]
    assert first["image_id"] == row["image_id"]
    assert np.array_equal(np.asarray(first["image"]), np.asarray(row["image"]))


def test_corpus_covers_every_text_with_a_compact_vocabulary(world):
    corpus = world_corpus(world)
    vocab = set(world_vocabulary())
    assert len(vocab) < 100
    words = {w for text in corpus for w in bag_of_words(text)}
    assert words <= vocab
    assert set(corpus[-1].split()) == vocab  # the last line lists the whole vocabulary
    assert set(world["train"][0]["captions"]) <= set(corpus)
