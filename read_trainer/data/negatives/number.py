"""Count negatives: "a dog runs" -> "two dogs run", "zebras graze" -> "a zebra grazes",
"a man holding a cup" -> "a man holding two cups".

Changing how many of the main thing a caption names makes it false for its image while it
stays fluent, for most captions (counting is one of the attributes VL benchmarks probe).
The edit is only made where the rest of the sentence can follow the new number with
certainty; otherwise the caption gets no count negative:

* the subject is the caption's first noun phrase (or the one after "there is/are"),
  headed by a countable lexicon noun of a kind one can have one or several of (people,
  animals, vehicles, furniture, food, ...), not a place, a body part, a measure or a
  collective ("a group of", "a plate of");
* nothing else refers back to it in the singular or plural ("his", "its", "their",
  "each other", "another", "both"), and it is not one of several coordinated subjects;
* the sentence's finite verb, if any, is the first one after the subject, comes before
  any relative clause, and is the only finite verb (one more could belong to the subject
  or to something else: "a cat plays with a knife that is sharp");
* every other thing the caption names fits the new count: several subjects share only
  places and large things ("two dogs in a field", never "two dogs catch a frisbee" or "two
  men riding a surfboard"); one subject has several things only if they are places or
  scenery (never "a person riding on elephants").
"""

from __future__ import annotations

from typing import Iterator

from .. import lexicon as lx
from . import fit
from .parsing import Parsed
from .text import _match_case as match_case
from .text import apply_edits, indefinite_article

# Noun classes whose members one can count in a photo.
COUNTABLE_CLASSES = frozenset({
    "person", "person_role", "animal", "vehicle", "food", "furniture", "tableware", "appliance",
    "electronics", "household", "clothing", "sports", "street", "family", "shape_object", "more_objects",
})
# Words that refer back to the subject with a number of its own, or count against it.
_REFERRING = frozenset(
    "he she it him her his hers its himself herself itself they them their theirs themselves "
    "each other another both one ones either neither all together lone alone single solitary only sole".split()
)
_FINITE_TO_PLURAL = {"is": "are", "was": "were", "has": "have", "does": "do"}
_FINITE_TO_SINGULAR = {v: k for k, v in _FINITE_TO_PLURAL.items()}
_RELATIVE = frozenset("that which who whom whose where while when as because".split())
_SINGULAR_DETERMINERS = frozenset({"a", "an", "one"})
_PLURAL_DETERMINERS = frozenset({"the", "some", "several", "many"})  # "the cows" -> "the cow"
# Things several people or animals can be with at once, and places.
_SHARED_THINGS = frozenset({"bench", "benches", "couch", "sofa", "bed", "boat", "train", "bus", "table", "field",
                           "grass", "water", "street", "road", "beach", "snow", "sand", "sky", "air", "park"})
_BACKGROUND_KINDS = ("ground", "nature", "room", "street_building", "furniture_table", "vehicle_rail", "vehicle_water")


def _finite_singular(unit) -> str | None:
    """The plural form of a singular finite verb ("is" -> "are", "runs" -> "run")."""
    if unit.low in _FINITE_TO_PLURAL:
        return _FINITE_TO_PLURAL[unit.low]
    info = lx.VERBS.get(unit.low)
    if unit.pos == "VERB" and info is not None and info.form == "3sg":
        return info.forms[0]
    return None


def _finite_plural(unit) -> str | None:
    """The singular form of a plural finite verb ("are" -> "is", "run" -> "runs")."""
    if unit.low in _FINITE_TO_SINGULAR:
        return _FINITE_TO_SINGULAR[unit.low]
    info = lx.VERBS.get(unit.low)
    if unit.pos == "VERB" and info is not None and info.form == "base" and unit.vform in (None, "base"):
        return info.forms[1]
    return None


def _is_finite(units, j: int) -> bool:
    unit = units[j]
    if unit.low in _FINITE_TO_PLURAL or unit.low in _FINITE_TO_SINGULAR:
        return True
    if unit.low in lx.AUXILIARIES and unit.low not in ("being", "been", "be", "having"):
        return True  # "can", "will", "'s": finite, but not changed here
    if j > 0 and unit.vform == "base" and (units[j - 1].low == "to" or units[j - 1].low in lx.AUXILIARIES):
        return False  # "about to hit", "can see": an infinitive
    # Past forms are left out: they do not change with number ("a bus parked", "dogs ran").
    return unit.pos == "VERB" and unit.vform in ("3sg", "base") and unit.low not in lx.NON_VERB_ING_ED


# "An image of a bird flying over the water": the frame is not what the count is about.
_FRAMES = frozenset("image picture photo photograph view close-up closeup shot".split()) | {"close up"}


def _subject(parsed: Parsed) -> tuple[int, int, int] | None:
    """(phrase index, first unit, head unit) of the subject: the first phrase, at the start,
    after "there is/are/was/were", or after a frame ("an image of | a bird")."""
    units = parsed.units
    if not parsed.phrases:
        return None
    p = parsed.phrase_of[0]
    if p is not None and parsed.phrases[p].first == 0:
        heads = parsed.phrases[p].heads
        if len(heads) == 2 and units[heads[0]].low in _FRAMES and units[heads[0] + 1].low == "of":
            return p, heads[0] + 2, heads[1]  # one phrase to the parser: "an image of a bird"
        return p, 0, parsed.phrases[p].last
    if len(units) > 3 and units[1].low in _FRAMES and units[2].low == "of":
        q = parsed.phrase_of[3]  # "a close up of | a cat"
        if q is not None and parsed.phrases[q].first == 3:
            return q, 3, parsed.phrases[q].last
    if len(units) > 2 and units[0].low == "there" and units[1].low in ("is", "are", "was", "were"):
        p = parsed.phrase_of[2]
        if p is not None and parsed.phrases[p].first == 2:
            return p, 2, parsed.phrases[p].last
    return None


def _agreement(parsed: Parsed, after: int, to_plural: bool) -> tuple[int, str] | None | bool:
    """The one finite verb to change (index, new form), None when the caption has none, or
    False when the agreement cannot be made with certainty.

    The subject's verb is the one finite verb after it ("a man in a red shirt is riding",
    "a train carrying containers is on the tracks"), with no relative clause or
    conjunction before it ("a man riding a horse that is brown": whose verb is it?). Two
    finite verbs, or a form the lexicon cannot change, and the edit is refused. An unknown
    word right after the subject ("a man reaches in") may be a verb the lexicon lacks:
    refused too.
    """
    units = parsed.units
    convert = _finite_singular if to_plural else _finite_plural
    if after < len(units) and units[after].pos == "UNK":
        return False
    found, participle = None, False
    for j in range(after, len(units)):
        unit = units[j]
        if unit.low in _RELATIVE and found is None:
            return False  # "a man riding a horse that is brown": whose verb is it?
        if _is_finite(units, j):
            if found is not None:
                return False  # a second finite verb: the subject's, or another thing's?
            new = convert(unit)
            if new is None:
                return False  # a verb form we cannot change ("can", "ran", an unknown word)
            found = (j, new)
        elif unit.pos == "VERB" and found is None:
            participle = True
    if found is None and not participle and any(u.pos == "UNK" for u in units[after:]):
        return False  # "a man on skis goes through": no verb the lexicon knows, and a word it does not
    return found


def _background(unit) -> bool:
    """A place, the ground or a large thing several can share ("two dogs in a field", "two
    men on a bench"), as opposed to one they would have to share ("two men holding an
    iPhone", "two dogs catch a frisbee")."""
    if unit.low in _SHARED_THINGS:
        return True
    info = lx.NOUNS.get(unit.low)
    if info is not None and info.cls in ("generic", "frame") and info.concept not in _COUNTABLE_GENERIC:
        return True  # "a trick", "a game", "the picture": no thing to share
    kind = fit.kind_of(unit.low)
    return kind is not None and (kind.animacy == "place" or kind.name.startswith(_BACKGROUND_KINDS))


def _others_fit(parsed: Parsed, skip: range, to_plural: bool) -> bool:
    """Every other thing named in the number the subject leaves stays plausible with the
    new count: several subjects with one thing only if it is a place or shared, one subject
    with several things only if they are places or scenery ("a person riding on elephants",
    "a person wearing helmets" are not)."""
    for j, unit in enumerate(parsed.units):
        if j in skip:
            continue
        p = parsed.phrase_of[j]
        if unit.pos in ("UNK", "NOUN") and unit.low not in lx.NOUNS and (p is None or parsed.phrases[p].last == j):
            return False  # a thing the lexicon does not know ("a wheelchair", "use rickshaws")
        if unit.pos != "NOUN" or unit.low not in lx.NOUNS:
            continue
        if unit.number == ("sg" if to_plural else "pl") and not _background(unit):
            return False
    return True


def subject_number_change(parsed: Parsed, count: str = "two") -> Iterator[str]:
    """At most one negative: the subject's number changed, with its article and verb; a
    singular subject becomes ``count`` of it ("two", or "three" for a second negative)."""
    found = _subject(parsed)
    if found is None:
        return
    p, first, head = found
    units, caption = parsed.units, parsed.caption
    if head != parsed.phrases[p].last or (first == parsed.phrases[p].first and len(parsed.phrases[p].heads) != 1):
        return
    info = lx.NOUNS.get(units[head].low)
    if units[head].pos != "NOUN" or info is None or not (
            info.cls in COUNTABLE_CLASSES or info.concept in _COUNTABLE_GENERIC):
        return
    if units[head].low in lx.MEASURE_NOUNS or any(units[m].pos in ("NUM", "POSS") for m in range(first, head)):
        return
    after = head + 1
    if after < len(units) and (units[after].low in ("of", "and", "or", "&", "'s") or units[after].pos == "NOUN"):
        return  # "a pair of", "a man and a woman", an unread compound
    words = {u.low for u in units}
    if words & _REFERRING:
        return
    determiner = units[first].low if first < head and units[first].pos == "DET" else ""
    to_plural = info.number == "sg" and determiner in _SINGULAR_DETERMINERS | {"the"}
    to_singular = info.number == "pl" and (determiner in _PLURAL_DETERMINERS or not determiner)
    if not (to_plural or to_singular):
        return
    plural = _PLURAL_OF.get(units[head].low, info.plural)
    if to_plural and plural is None:
        return
    if not _others_fit(parsed, range(min(first, parsed.phrases[p].first), head + 1), to_plural):
        return
    singular = info.singular or _PLURAL_ONLY.get(units[head].low)
    if to_singular and singular is None:
        return
    verb = _agreement(parsed, after, to_plural)
    there = units[0].low == "there" and first == 2
    if verb is False or (verb is not None and first > 0):
        # After a frame a finite verb may be the frame's ("a photo of a dog is shown"); after
        # "there is" another one is the caption's slip ("there is a man is skiing").
        return
    if there and verb is None:  # "there is a dog": the verb is before the subject
        verb = (1, (_FINITE_TO_PLURAL if to_plural else _FINITE_TO_SINGULAR).get(units[1].low))
        if verb[1] is None:
            return
    shouting = caption.isupper()

    def word(j: int) -> str:
        return caption[units[j].start:units[j].end]

    sentence_start = first == 0
    edits = []
    if to_plural:
        edits.append((units[first].start, units[first].end, match_case(word(first), count, sentence_start, shouting)))
        edits.append((units[head].start, units[head].end, match_case(word(head), plural, False, shouting)))
    elif determiner:  # "the cows" -> "the cow", "several dogs" -> "a dog"
        article = "the" if determiner == "the" else indefinite_article(units[first + 1].low)
        edits.append((units[first].start, units[first].end, match_case(word(first), article, sentence_start, shouting)))
        edits.append((units[head].start, units[head].end, match_case(word(head), singular, False, shouting)))
    else:  # "zebras graze" -> "a zebra grazes", "Small children" -> "A small child"
        article = indefinite_article(units[first].low if first < head else singular)
        if sentence_start and not shouting:
            article = article.capitalize()
            if first < head and not (len(word(first)) > 1 and word(first).isupper()):
                edits.append((units[first].start, units[first].end, word(first)[:1].lower() + word(first)[1:]))
        edits.append((units[first].start, units[first].start, (article.upper() if shouting else article) + " "))
        head_text = singular.upper() if shouting else (
            singular if sentence_start and first == head else match_case(word(head), singular, False, shouting))
        edits.append((units[head].start, units[head].end, head_text))
    if verb is not None:
        j, form = verb
        edits.append((units[j].start, units[j].end, match_case(word(j), form, j == 0, shouting)))
    yield apply_edits(caption, sorted(edits))


# Plural-only lexicon nouns with a singular elsewhere in the lexicon, and the usual plural
# where the lexicon's regular one is formal.
_PLURAL_ONLY = {"people": "person"}
_PLURAL_OF = {"person": "people"}
# Countable words of the lexicon's generic class (the rest are "thing", "food", "light", ...).
_COUNTABLE_GENERIC = frozenset({"person", "people", "adult", "friend", "individual", "spectator", "vehicle", "animal"})


# Verbs whose object one can as well have two of in hand ("holding a cup" -> "two cups"),
# and the kinds of object that stays plausible for: things held or eaten, not ridden or worn.
_HANDLING_VERBS = frozenset({"hold", "carry", "eat"})
_HANDHELD_KINDS = ("food", "tableware", "drink", "electronics_hand", "household")


def object_number_change(parsed: Parsed) -> Iterator[str]:
    """At most one negative: "a man holding a cup" -> "a man holding two cups"; the object of
    holding, carrying or eating, written "a/an <noun>" with nothing after it that needs its
    number ("a cup of tea", "a donut in each hand")."""
    units, caption = parsed.units, parsed.caption
    for i, unit in enumerate(units[:-2]):
        verb = lx.VERBS.get(unit.low)
        if unit.pos != "VERB" or verb is None or verb.concept not in _HANDLING_VERBS:
            continue
        p = parsed.phrase_of[i + 1]
        if p is None or parsed.phrases[p].first != i + 1 or units[i + 1].low not in ("a", "an"):
            return
        phrase = parsed.phrases[p]
        head = phrase.last
        info = lx.NOUNS.get(units[head].low)
        kind = fit.kind_of(units[head].low)
        if (units[head].pos != "NOUN" or info is None or info.number != "sg" or info.plural is None
                or len(phrase.heads) != 1 or kind is None or not kind.name.startswith(_HANDHELD_KINDS)):
            return
        if any(units[m].pos not in ("ADJ",) for m in range(phrase.first + 1, head)):
            return  # "a slice of", "a hot dog bun": only adjectives between article and noun
        if head + 1 < len(units) and units[head + 1].low in ("of", "in", "with", "that", "which", "'s", "to"):
            return
        if {u.low for u in units} & {"it", "its", "each", "both", "another", "other", "one"}:
            return
        edits = [(units[i + 1].start, units[i + 1].end, "two"),
                 (units[head].start, units[head].end, match_case(caption[units[head].start:units[head].end],
                                                                 info.plural, False, caption.isupper()))]
        yield apply_edits(caption, edits)
        return
