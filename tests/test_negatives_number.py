"""Count negatives ("a dog runs" -> "two dogs run") and the order categories are drawn in:
the agreement they must keep, the captions they must leave alone, and relation
replacements only filling what the other categories cannot."""

from __future__ import annotations

import pytest

from read_trainer.data.negatives import HardNegativeGenerator, parse_rules
from read_trainer.data.negatives import edits as edits_module
from read_trainer.data.negatives.number import object_number_change, subject_number_change


def _subject(caption: str) -> list[str]:
    return list(subject_number_change(parse_rules(caption)))


@pytest.mark.parametrize("caption, expected", [
    # one -> two, with the verb, the article and the capital
    ("A cat plays on a table.", "Two cats play on a table."),
    ("an elephant walks in the water", "two elephants walk in the water"),
    ("The dog is sleeping on the couch", "Two dogs are sleeping on the couch"),
    ("There is a dog on the bed.", "There are two dogs on the bed."),
    ("A person skis down a snowy hill.", "Two people ski down a snowy hill."),
    ("A dog runs in the grass.", "Two dogs run in the grass."),
    # several -> one
    ("Small children play in the park.", "A small child plays in the park."),
    ("Several elephants are walking", "An elephant is walking"),
    ("Zebras grazing in a field.", "A zebra grazing in a field."),
    # the count is about what a frame shows
    ("an image of a bird flying over the water", "an image of two birds flying over the water"),
])
def test_subject_number_changes_with_its_verb_and_article(caption, expected):
    assert _subject(caption) == [expected]


@pytest.mark.parametrize("caption, why", [
    ("a man holding his phone", "a pronoun refers back to the subject"),
    ("A cat plays with a knife that is sharp.", "a second finite verb: whose is it?"),
    ("a man riding a wave on a surfboard", "several riders of one surfboard"),
    ("A man in a red shirt is holding an umbrella.", "several people in one shirt"),
    ("a dog catches a frisbee in the air.", "several dogs catching one frisbee"),
    ("a man reaches in the back of a truck", "a verb the lexicon does not know: no agreement"),
    ("a man on skis goes through the snow", "a verb the lexicon does not know: no agreement"),
    ("People are riding on elephants in a river.", "one person riding several elephants"),
    ("a lone giraffe walking across a dirt road.", "'lone' says there is one"),
    ("A toilet and towel rack are in a bathroom.", "coordinated subjects"),
    ("Two dogs run in a field", "a number word: the count replacement handles it"),
    ("A picture of a dog is on the wall", "after a frame, the verb may be the frame's"),
    ("a group of people on a beach", "a collective"),
])
def test_subject_number_is_left_alone_where_agreement_is_uncertain(caption, why):
    assert _subject(caption) == [], why


def test_held_object_count():
    assert list(object_number_change(parse_rules("a man holding a cup"))) == ["a man holding two cups"]
    assert list(object_number_change(parse_rules("A woman eating a sandwich on a bench."))) == [
        "A woman eating two sandwiches on a bench."]
    # a measure or what follows needs the number: left alone
    assert list(object_number_change(parse_rules("a man holding a slice of pizza"))) == []
    assert list(object_number_change(parse_rules("a boy holding a cell phone in his hand"))) == []


def test_count_negatives_come_from_the_generator_as_attribute_replacements():
    negatives = HardNegativeGenerator(seed=2025).generate("A cat plays on a table.", 3)
    assert ("Two cats play on a table.", "replace_att") in {(n.text, n.category) for n in negatives}


SAMPLE = [
    "a clock is sitting below an american flag.",
    "a toothbrush sitting next to a soap bottle",
    "a cat is laying on a sunny windowsill behind a cabinet.",
    "a black bear is walking into a river.",
    "a red car parked next to a blue truck on the street.",
    "a man holding an umbrella while standing in the rain",
    "two dogs playing with a frisbee on the grass",
    "a woman sitting on a bench next to a dog",
    "a plate of food next to a cup of coffee on a wooden table",
    "a boy standing on a skateboard in front of a house",
]


def test_relation_replacements_only_fill_what_the_other_categories_cannot(monkeypatch):
    generator = HardNegativeGenerator(seed=2025)
    with_relations = {c: generator.generate(c, 3) for c in SAMPLE}
    assert any(n.category == "replace_rel" for negs in with_relations.values() for n in negs)
    monkeypatch.setitem(edits_module._GENERATORS, "replace_rel", lambda parsed, rng: iter(()))
    without = HardNegativeGenerator(seed=2025)
    for caption, negatives in with_relations.items():
        others = [n for n in negatives if n.category != "replace_rel"]
        assert without.generate(caption, 3) == others, caption
        if len(others) < len(negatives):
            assert len(others) < 3, caption  # a relation was drawn only because the rest ran out
