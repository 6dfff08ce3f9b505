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
from read_trainer.data.negatives import (
    SWAP_CATEGORIES,
    HardNegativeGenerator,
    caption_rng,
    checks,
    fit,
    normalize,
    parse_rules,
)
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
        ("Little child holding up a big stuffed animal with other children in background.",
         "Enormous child holding up a big stuffed animal with other children in background."),
    ],
    "synonym, hypernym or overlapping replacement": [
        ("a kitchen with lots of cupboard space and a microwave oven.",
         "a room with lots of cupboard space and a microwave oven."),
        ("a woman on a red surfboard looking away from the camera",
         "a teenager on a red surfboard looking away from the camera"),
        ("person  in red shirt getting ready to hit tennis ball.", "person  in maroon shirt getting ready to hit tennis ball."),
        ("a close up of a plate with a burger and a hot dog", "a close up of a plate with a burger and a sandwich"),
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
        ("The tennis player throws the ball up to serve", "The tennis player drops the ball up to serve"),
        ("A group of skiers have left a trail through the snow on the mountain.",
         "A group of skiers have right a trail through the snow on the mountain."),
        ("a batter swings his bat at the ball that was pitched.", "a batter swings his bat next to the ball that was pitched."),
    ],
    "compound that real captions write together": [
        ("the front of 2 green and yellow dump trucks parked.", "the front of 2 green and yellow dump buses parked."),
        ("a side of a delivery truck with a picture of people in chefs outfits.",
         "a side of a delivery bus with a picture of people in chefs outfits."),
    ],
    "thing out of its context": [
        ("The zebras are in the field.", "The zebras are in the forest."),
        ("a cheese pizza cooks in a small, dirty oven.", "a cheese pizza cooks in a small, dirty dishwasher."),
        ("A pizza tin containing a pineapple and ham pizza.", "A pizza tin containing a lemon and ham pizza."),
        ("The bat is swung by a baseball player while a ball floats above his head towards the catcher and umpire.",
         "The bat is swung by a baseball player while a frisbee floats above his head towards the catcher and umpire."),
        ("a hand holding a remote control next to a bottle of pills.",
         "a hand holding a remote control next to a wine glass of pills."),
        ("A yellow train pulling into the train station", "A yellow train pulling into the castle"),
        ("The cows are laying in their stalls in the barn.", "The cows are laying in their stalls in the hospital."),
        ("a very big pretty clock on a pole near the street.", "a very big pretty clock on a fire hydrant near the street."),
    ],
    "count that no longer agrees or adds up": [
        ("a man on skis goes through the snow", "two men on skis goes through the snow"),
        ("A man with glasses is holding up an iPhone.", "Two men with glasses are holding up an iPhone."),
        ("People are riding on elephants in a river.", "A person is riding on elephants in a river."),
    ],
    "unnatural negation": [
        ("a tall tower with a clock on top.", "a tall tower without a clock on top."),
    ],
    "posture or count that contradicts the rest of the caption": [
        ("a woman sitting in a seat holding a cell phone.", "a woman sitting above a seat holding a cell phone."),
        ("children sitting at a table eating and drinking.", "children lying at a table eating and drinking."),
        ("Two women are seated on a park bench, with one of them looking over their shoulder.",
         "Six women are seated on a park bench, with one of them looking over their shoulder."),
    ],
    "colour the thing never has": [
        ("A red stop sign with writing on top of it.", "A white stop sign with writing on top of it."),
        ("The sink contains a white and grey cat.", "The sink contains a gold and grey cat."),
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
    caption = "A brown dog chasing a small cat on a wooden bench next to a red ball."
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


def _swaps(caption: str) -> list[str]:
    return [n.text for n in HardNegativeGenerator(seed=2025).generate(caption, 8) if n.category in SWAP_CATEGORIES]


def test_swaps_move_each_noun_into_roles_it_fits():
    # Both can chase and be chased; a dog can sit on a bench.
    assert "A cat chasing a dog in a park." in _swaps("A dog chasing a cat in a park.")
    assert "A dog sitting on a bench next to a man." in _swaps("A man sitting on a bench next to a dog.")
    # A person rides, a horse does not; a plate is not on a cup nor a table on a plate.
    assert not any(t.startswith("A horse riding") for t in _swaps("A man riding a horse on the beach."))
    cup = _swaps("A cup on a plate on a table.")
    assert not any(t.startswith(("A plate on a cup", "A table on")) for t in cup), cup
    # A symmetric verb, or two things only placed side by side, keep the meaning when swapped.
    assert _swaps("A man talking to a woman.") == []
    assert _swaps("A white toilet is located in the bathroom next to the shower.") == []


def test_attributes_and_counts_trade_places_between_two_things():
    assert "A blue car next to a red truck." in _swaps("A red car next to a blue truck.")
    assert _swaps("A red apple next to a green apple.") == []  # one kind of thing: still true
    assert "Three dogs and two cats on a couch." in _swaps("Two dogs and three cats on a couch.")
    # A colour never lands next to another colour of the same thing ("a white black table").
    texts = _swaps("The white toilet is adjacent to a small black table.")
    assert not any("white black" in t for t in texts), texts


def test_a_person_of_the_other_gender_takes_the_pronouns_along():
    generator = HardNegativeGenerator(seed=2025, categories=["replace_obj"])
    assert "a young boy brushing his teeth at the sink." in generator("a young girl brushing her teeth at the sink.", 5)
    # Two people: the pronouns may be about the other one, so they stay.
    for text in generator("A man hugging his wife while he smiles.", 5):
        assert "she smiles" not in text and "her husband" not in text, text


def test_cooccurrence_statistics_hold_out_captions_and_their_images(tmp_path):
    from read_trainer.data.negatives import cooccurrence

    folder = tmp_path / "sugarcrepe"
    folder.mkdir()
    rows = {"0": {"filename": "000000000001.jpg", "caption": "A dog chasing a cat."},
            "1": {"filename": "000000000001.jpg", "caption": "A dog runs after a cat on the grass."},
            "2": {"filename": "000000000002.jpg", "caption": "A dog next to a horse."}}
    (folder / "x.json").write_text(json.dumps(rows))
    everything = cooccurrence.Cooccurrence(cooccurrence.build(tmp_path, []))
    assert everything.pair("n:dog", "n:cat") == 2 and everything.count("n:dog") == 3
    # Holding out one caption removes every caption of its image, not only itself.
    held = cooccurrence.Cooccurrence(cooccurrence.build(tmp_path, ["a dog chasing a cat"]))
    assert held.pair("n:dog", "n:cat") == 0 and held.count("n:dog") == 1 and held.pair("n:dog", "n:horse") == 1
    assert held.provenance["held_out_images"] == 1 and held.provenance["captions"] == 1


def test_shipped_cooccurrence_statistics_rebuild_from_the_shipped_captions():
    """The data file is what its provenance says: the shipped human captions minus the
    quality set (every caption of captions.jsonl and of its images)."""
    from read_trainer.data.negatives import cooccurrence
    from read_trainer.evaluation.bundled import bundled_data_root

    held_out = [json.loads(line)["caption"] for line in (QUALITY / "captions.jsonl").read_text().splitlines()]
    rebuilt = cooccurrence.build(bundled_data_root(), held_out)
    shipped = json.loads(cooccurrence.DATA.read_text())
    assert rebuilt == shipped
    assert shipped["provenance"]["held_out_captions"] == len({cooccurrence.normalize_caption(c) for c in held_out})


def test_shipped_caption_sample_rebuilds_and_its_splits_are_disjoint():
    """`negatives_quality.py sample` on its defaults gives the committed captions.jsonl, so
    each held-out split is what was drawn (before the version it measured), and no caption
    sits in two splits or equals a SugarCrepe positive."""
    from read_trainer.evaluation.bundled import bundled_data_root

    quality = _quality_module()
    rebuilt = quality.sample_captions(bundled_data_root(), 110, 130, 120, 23)
    assert rebuilt == quality.read_jsonl(QUALITY / "captions.jsonl")
    keys = [quality._norm(row["caption"]) for row in rebuilt]
    assert len(set(keys)) == len(keys)
    assert {row["split"] for row in rebuilt} == set(quality.SPLITS)
    positives = {quality._norm(row["caption"]) for path in (bundled_data_root() / "sugarcrepe").glob("*.json")
                 for row in json.loads(path.read_text()).values()}
    assert not positives & set(keys)


def test_object_replacements_seen_with_the_context_come_first():
    from read_trainer.data.negatives import cooccurrence

    stats = cooccurrence.load()
    # Real captions put giraffes with zebras far more often than lamps.
    assert cooccurrence.context_weight(stats, ["n:zebra"], "giraffe") > 10 * cooccurrence.context_weight(
        stats, ["n:zebra"], "lamp")


def _quality_module():
    spec = importlib.util.spec_from_file_location("negatives_quality", REPO / "benchmarks" / "negatives_quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The rates docs/hard-negatives.md reports (labelled by reading; each "final*" split was
# read only after the version it measures, the others were tuned on). A change that makes
# them worse, or makes negatives nobody read, fails here: label the new ones
# (benchmarks/negatives_quality.py report --unlabelled). Measured, garbled / still true:
# dev 1.6 / 0.0%, dev2 4.0 / 0.0%, fresh 3.9 / 0.0%, final 3.4 / 0.0%, final2 5.2 / 1.2%,
# final3 2.6 / 1.2%, final4 3.8 / 0.2%, final5 (held out) 7.8 / 0.9%.
MAX_GARBLED = {"dev": 0.02, "dev2": 0.045, "fresh": 0.045, "final": 0.04, "final2": 0.06, "final3": 0.03,
               "final4": 0.045, "final5": 0.08}
MAX_TRUE = {"final2": 0.013, "final3": 0.013}  # 0.01 elsewhere
# Negatives per split: the generator leaves captions short rather than garble them, so a
# split of 110-200 captions gives 229-428 (fresh: 229 for 120 captions).
MIN_NEGATIVES = 225


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
        assert total >= MIN_NEGATIVES, (split, total)
        assert counts["garbled"] <= MAX_GARBLED[split] * total, (split, counts)
        assert counts["true"] <= MAX_TRUE.get(split, 0.01) * total, (split, counts)
