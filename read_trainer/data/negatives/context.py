"""Roles of words in a parsed caption: the noun a phrase is about, a verb's subject and
object, a preposition's landmark, compounds and phrase boundaries.

The rules parser gives flat noun phrases; these helpers read the few relations between
them that the fit checks (:mod:`.fit`) need. They are deliberately cautious: when a
role cannot be read with confidence they return None, and the edit that needed it is
not made.
"""

from __future__ import annotations

from .. import lexicon as lx
from .parsing import Parsed, Phrase, _gap

# Frames that count things ("a herd of zebras"): the phrase is about what they count.
QUANTITY_FRAMES = frozenset(
    "group bunch lots pair couple herd flock pile stack row line set variety number pack assortment collection "
    "slice piece bit".split()
)
# Words that select their preposition: "filled with", "dressed in", "full of" are no spatial relation.
SELECTING_WORDS = frozenset(
    """filled covered dressed topped decorated stuffed loaded lined surrounded made wrapped full painted
    piled packed crowded stacked mixed served garnished sprinkled smothered coated dipped
    playing talking dealing working cooks cooking cooked bakes baking baked fried frying grilled""".split()
)
GENDERED_PRONOUNS = {"m": frozenset("he him his himself".split()), "f": frozenset("she her hers herself".split())}
POSSESSIVE_DETERMINERS = frozenset("his her its it's their my your our".split())


def anchor_head(parsed: Parsed, phrase: Phrase) -> int | None:
    """The unit of the noun a phrase is about: its first lexicon noun (the last of a
    compound: "a soap | bottle"), or what a quantity frame counts ("a herd of | zebras");
    None for other frames ("the side of a bus", "a photo") and phrases without a lexicon noun."""
    units = parsed.units
    i = phrase.first
    while i <= phrase.last:
        i = _noun_from(parsed, i, phrase.last)
        if i is None:
            return None
        info = lx.NOUNS.get(units[i].low)
        if info is None:
            return None
        if info.cls != "frame":
            return i
        if info.concept not in QUANTITY_FRAMES:
            return None
        i += 1
    return None


# Unknown words the chunker may put after a noun that are not its head ("a bus shown ...").
_NOT_NOUNS = frozenset("shown maybe seen pictured being getting sitting standing made".split())


def _noun_from(parsed: Parsed, start: int, last: int) -> int | None:
    """The first lexicon-tagged noun at or after ``start`` (up to ``last``), moved to the
    end of its run of nouns ("a soap | bottle")."""
    units = parsed.units
    i = start
    while i <= last and units[i].pos != "NOUN":
        i += 1
    if i > last:
        return None
    while i < last and units[i + 1].pos == "NOUN" and _gap(parsed.caption, units, i) == " ":
        i += 1
    if i < last and units[i + 1].pos == "UNK" and units[i + 1].low not in _NOT_NOUNS:
        return None  # "chefs | outfits", "train | engine": an unknown word is the head
    return i


def head_low(parsed: Parsed, phrase_index: int | None) -> str | None:
    """Lower-cased anchor noun of phrase ``phrase_index`` (None if none)."""
    if phrase_index is None:
        return None
    unit = anchor_head(parsed, parsed.phrases[phrase_index])
    return parsed.units[unit].low if unit is not None else None


def modified_head(parsed: Parsed, i: int) -> str | None:
    """The noun that the modifier at unit ``i`` describes: the first head after it in its phrase."""
    p = parsed.phrase_of[i]
    if p is None:
        return None
    head = _noun_from(parsed, i + 1, parsed.phrases[p].last)
    return parsed.units[head].low if head is not None and parsed.units[head].low in lx.NOUNS else None


def in_compound(parsed: Parsed, head: int) -> bool:
    """Whether the noun at ``head`` is tied to a neighbouring noun ("palm | trees",
    "soap | bottle", "train | tracks"): replacing or moving it alone breaks the compound."""
    units = parsed.units
    if head > 0 and units[head - 1].pos in ("NOUN", "UNK") and _gap(parsed.caption, units, head - 1) == " ":
        return True
    if head + 1 < len(units) and units[head + 1].pos in ("NOUN", "UNK") and _gap(parsed.caption, units, head) == " ":
        return True
    return False


def phrase_is_whole(parsed: Parsed, phrase: Phrase) -> bool:
    """Whether a phrase is a complete noun phrase: nothing of it is left behind when it moves
    ("a cut | piece of cake" would strand "a cut")."""
    units = parsed.units
    j = phrase.first - 1
    if j >= 0 and _gap(parsed.caption, units, j).strip(" ") == "":
        if units[j].pos in ("DET", "NUM", "POSS", "ADJ", "NOUN", "UNK"):
            return False
        if units[j].pos == "VERB" and j > 0 and units[j - 1].pos in ("DET", "ADJ", "NUM", "POSS"):
            return False
    k = phrase.last + 1
    if k < len(units) and units[k].pos in ("NOUN", "UNK") and _gap(parsed.caption, units, phrase.last).strip(" ") == "":
        return False
    return True


def phrase_starting_at(parsed: Parsed, i: int) -> int | None:
    """Index of the phrase whose first unit is ``i``."""
    if i >= len(parsed.units):
        return None
    p = parsed.phrase_of[i]
    return p if p is not None and parsed.phrases[p].first == i else None


def subject_of(parsed: Parsed, verb: int) -> str | None:
    """The noun doing the verb at unit ``verb`` (lower-cased), or None if unclear.

    Reads back over "is", "that", adverbs, an earlier verb of the same subject ("a woman
    sitting in a seat | holding") and prepositional phrases ("a man in a tie | waits");
    after "while"/"and" the subject is the caption's first phrase.
    """
    units = parsed.units
    j = verb - 1
    while j >= 0:
        unit = units[j]
        if unit.low in ("while", "as", "and", "then", "when"):
            return head_low(parsed, 0) if parsed.phrases and parsed.phrases[0].last < j else None
        if unit.pos in ("AUX", "ADV", "VERB") or unit.low in ("that", "who", "which", "to"):
            j -= 1
            continue
        p = parsed.phrase_of[j]
        if p is None:
            return None
        phrase = parsed.phrases[p]
        before = phrase.first - 1
        if before >= 0 and units[before].pos == "PREP":
            j = before - 1  # "a man [in a tie] waits": skip the prepositional phrase
            continue
        return head_low(parsed, p)
    return None


def object_after(parsed: Parsed, last: int) -> str | None:
    """The noun of the phrase that starts right after unit ``last`` (a verb's object, a
    preposition's landmark), or None."""
    return head_low(parsed, phrase_starting_at(parsed, last + 1))


def pronoun_genders(parsed: Parsed) -> set[str]:
    """Genders of the personal pronouns in the caption ("m", "f")."""
    words = {u.low for u in parsed.units}
    return {g for g, pronouns in GENDERED_PRONOUNS.items() if words & pronouns}
