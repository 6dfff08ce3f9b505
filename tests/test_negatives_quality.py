"""Hard negatives that are wrong, not broken: one regression case per defect class, the
kinds that every lexicon noun needs, the checks acting after the draws, and the labelled
quality set (benchmarks/negatives_quality/) still describing the generator."""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path

import pytest

from read_trainer.data import lexicon as lx
from read_trainer.data.negatives import HardNegativeGenerator, caption_rng, checks, fit, normalize, parse_rules
from read_trainer.data.negatives import edits as edits_module

REPO = Path(__file__).resolve().parents[1]
QUALITY = REPO / "benchmarks" / "negatives_quality"


def _labels() -> dict[tuple[str, str], str]:
    rows = [json.loads(line) for line in (QUALITY / "labels.jsonl").read_text().splitlines() if line.strip()]
    return {(r["caption"], r["negative"]): r["label"] for r in rows}


# (caption, a negative the previous generator made from it, read as garbled or still true).
# Each caption is in the labelled dev set, so its current negatives have labels too.
REGRESSIONS = {
    "number agreement": [
        ("on a sunny afternoon, the herd of zebra are romping in the field.",
         "on a sunny afternoon, the herd of cat are romping in the field."),
        ("a couple of giraffe standing next to a tree.", "a couple of tree standing next to a giraffe."),
    ],
    "pronoun agreement": [
        ("a man with his dog out near a lake.", "a girl with his dog out near a lake."),
        ("a female tennis-player with her racket in-hand in front of a crowd of onlookers.",
         "a male tennis-player with her racket in-hand in front of a crowd of onlookers."),
    ],
    "broken phrase boundary or compound": [
        ("a cut piece of cake that is sitting on a plate.", "a cut a plate that is sitting on piece of cake."),
        ("there is a mp3 player that is next to a cell phone", "there is a mp3 cell phone that is next to a player"),
        ("there is an umbrella next to the palm trees.", "there is an umbrella next to the palm bushes."),
    ],
    "attribute that does not fit its noun": [
        ("a brown dog leaping to catch a flying disc.", "a blond dog leaping to catch a flying disc."),
        ("multiple black and white cows standing in a cow pen.", "multiple green and white cows standing in a cow pen."),
        ("a wood table full of vegetables and fruits on it", "a wool table full of vegetables and fruits on it"),
        ("skier dressed all in white carrying his skis over his shoulder.",
         "skier dressed all in colorful carrying his skis over his shoulder."),
    ],
    "synonym, hypernym or overlapping replacement": [
        ("a kitchen with lots of cupboard space and a microwave oven.",
         "a room with lots of cupboard space and a microwave oven."),
        ("a woman on a red surfboard looking away from the camera",
         "a teenager on a red surfboard looking away from the camera"),
    ],
    "swap that makes a thing do what only people or animals do": [
        ("a man is riding a motorcycle on one wheel.", "a motorcycle is riding a man on one wheel."),
        ("a teary eyed baby is holding a toothbrush.", "a toothbrush is holding a teary eyed baby."),
    ],
    "swap across a symmetric relation (still true)": [
        ("a tall giraffe standing next to a baby giraffe.", "a baby giraffe standing next to a tall giraffe."),
    ],
    "verb or relation that does not fit": [
        ("an image of a dog jumping up at the camera", "an image of a dog walking up at the camera"),
        ("a family of zebra are eating grass at the same time.", "a family of zebra are eating gravel at the same time."),
        ("a group of people on skis skiing down a mountain", "a group of people on skis skiing down an enclosure"),
        ("a person holds a surfboard on his shoulders.", "a person holds a surfboard under his shoulders."),
    ],
    "near-duplicate negatives": [
        ("two people are riding a small motorcycle off-road.", "two people are riding an enormous motorcycle off-road."),
    ],
}


@pytest.mark.parametrize("defect", sorted(REGRESSIONS))
def test_defect_class_is_fixed(defect):
    labels = _labels()
    generator = HardNegativeGenerator(seed=2025)
    for caption, bad in REGRESSIONS[defect]:
        assert labels[caption, bad] in ("garbled", "true", "other"), (caption, bad)
        everything = {normalize(t) for t in generator(caption, 200)}
        assert normalize(bad) not in everything, (defect, caption)
        # What it makes now was read and labelled valid.
        for negative in generator.generate(caption, 3):
            assert labels.get((caption, negative.text)) == "valid", (defect, caption, negative)


def test_near_duplicates_give_one_negative_per_opposite():
    texts = HardNegativeGenerator(categories=["replace_att"])("a small dog on a couch.", 10)
    opposites = [t for t in texts if "small" not in t]
    assert len(opposites) == 1, texts  # "big", "large", "huge", "giant", "enormous" say one thing


def test_replacements_never_name_the_same_thing():
    for original, candidate in [("girl", "child"), ("boy", "child"), ("man", "person"), ("kitchen", "room"),
                                ("boat", "sailboat"), ("computer", "laptop"), ("woman", "teenager")]:
        assert not fit.object_replacement_fits(original, candidate), (original, candidate)
    for original, candidate in [("man", "woman"), ("girl", "boy"), ("dog", "cat"), ("chair", "couch")]:
        assert fit.object_replacement_fits(original, candidate), (original, candidate)


def test_attributes_fit_their_noun():
    assert not fit.attribute_fits("color", "blond", "sky")
    assert not fit.attribute_fits("color", "blond", "motorcycle")
    assert fit.attribute_fits("color", "blond", "hair")
    assert not fit.attribute_fits("color", "green", "cow") and fit.attribute_fits("color", "brown", "cow")
    assert not fit.attribute_fits("material", "wool", "table") and fit.attribute_fits("material", "marble", "table")
    assert not fit.attribute_fits("material", "wooden", "dog")
    assert not fit.attribute_fits("color", "red", None)  # an unknown noun: no judgement, no edit
    texts = HardNegativeGenerator(categories=["replace_att"])("A brown dog under the blue sky.", 20)
    assert texts and all("blond" not in t for t in texts)


def test_garbled_word_sequences_are_never_produced():
    # An article before a determiner, two numbers in a row, a dangling preposition.
    from read_trainer.data.negatives.generators import _breaks

    assert _breaks("a smiling an american flag") == 1
    assert _breaks("three four coins laid out in four rows") == 1
    assert _breaks("the cratered surface of the moon seen from in") == 1
    assert _breaks("a man with the lights on") == 0


def test_every_lexicon_noun_has_a_kind():
    # A noun without a kind is never swapped or replaced; a new word must say what it is.
    for cls, entries in lx.NOUN_CLASSES.items():
        if cls in ("generic", "frame"):
            continue
        for entry in entries:
            concept = lx._noun_concept(entry.split("|")[0])
            assert concept in fit.KIND_OF or concept in ("ground", "toy block"), (cls, concept)
    concepts = {lx.NOUNS[w].concept for w in lx.NOUNS}
    for pair in fit.OVERLAPPING:
        assert pair <= concepts, pair


@pytest.mark.parametrize("category", ["replace_att", "replace_obj", "replace_rel", "swap_noun", "swap_np"])
def test_checks_only_drop_candidates_after_the_draw(category, monkeypatch):
    """Without the checks, the same random draws give a superset in the same order: a
    negative that fits is never reordered or redrawn by the checks."""
    caption = "A brown dog sitting on a wooden bench next to a small cat holding a red ball."
    parsed = parse_rules(caption)
    checked = list(edits_module._GENERATORS[category](parsed, caption_rng(1, caption)))
    always = lambda *args: (lambda word: True)  # noqa: E731
    for name in ("attribute_check", "object_check", "relation_check"):
        monkeypatch.setattr(checks, name, always)
    for name in ("nouns_trade_places", "adjectives_trade_places", "phrases_trade_places", "relations_trade_places"):
        monkeypatch.setattr(checks, name, lambda *args: True)
    unchecked = list(edits_module._GENERATORS[category](parsed, caption_rng(1, caption)))
    assert checked, category
    assert len(unchecked) > len(checked)
    assert [t for t in unchecked if t in set(checked)] == checked


def test_deterministic_and_independent_of_other_captions():
    captions = [c for c, _ in REGRESSIONS["verb or relation that does not fit"]]
    first = [HardNegativeGenerator(seed=2025)(c, 3) for c in captions]
    shuffled = list(captions)
    random.Random(0).shuffle(shuffled)
    generator = HardNegativeGenerator(seed=2025)
    again = {c: generator(c, 3) for c in shuffled}
    assert [again[c] for c in captions] == first


def _quality_module():
    spec = importlib.util.spec_from_file_location("negatives_quality", REPO / "benchmarks" / "negatives_quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The rates docs/hard-negatives.md reports (labelled by reading; "fresh" was read only
# after the last fix). A change that makes them worse, or makes negatives nobody read,
# fails here: label the new ones (benchmarks/negatives_quality.py report --unlabelled).
MAX_GARBLED = {"dev": 0.01, "dev2": 0.08, "fresh": 0.17}


def test_labelled_quality_set_still_describes_the_generator():
    quality = _quality_module()
    captions = quality.read_jsonl(QUALITY / "captions.jsonl")
    labels = quality.read_jsonl(QUALITY / "labels.jsonl")
    assert {r["label"] for r in labels} <= set(quality.LABELS)
    assert len({(r["caption"], r["negative"]) for r in labels}) == len(labels)
    for split in quality.SPLITS:
        result = quality.evaluate(captions, labels, split)
        counts = result["counts"]["all"]
        total = sum(counts.values())
        assert result["unlabelled"] == [], result["unlabelled"][:3]
        assert total >= 280, (split, total)
        assert counts["garbled"] <= MAX_GARBLED[split] * total, (split, counts)
        assert counts["true"] <= 0.01 * total, (split, counts)
