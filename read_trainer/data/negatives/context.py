"""Roles of words in a parsed caption: the noun a phrase is about, a verb's subject and
object, a preposition's landmark, compounds and phrase boundaries.

The rules parser gives flat noun phrases; these helpers read the few relations between
them that the fit checks (:mod:`.fit`) need. They are deliberately cautious: when a
role cannot be read with confidence they return None, and the edit that needed it is
not made.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import lexicon as lx
from . import cooccurrence
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


def caption_words(parsed: Parsed) -> set[str]:
    """Every word of the caption, multi-word units split ("tennis player" says "tennis")."""
    return {word for unit in parsed.units for word in unit.low.split()}


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
    stats = cooccurrence.load()
    for j, gap_at in ((head - 1, head - 1), (head + 1, head)):
        if not (0 <= j < len(units)) or _gap(parsed.caption, units, gap_at) != " ":
            continue
        # An unknown word that real captions never use as a noun is no compound half when it
        # reads as an adjective before the noun ("a commercial | bus") or as a verb after it
        # ("a giraffe | bends down").
        looks_adjective = j < head and units[j].low.endswith(_ADJECTIVE_ENDINGS)
        looks_verb = j > head and units[j].low.endswith("s") and units[head].number == "sg"
        if units[j].pos == "UNK" and (looks_adjective or looks_verb) and stats.never_a_noun(units[j].low):
            continue
        first, second = (units[j].low, units[head].low) if j < head else (units[head].low, units[j].low)
        if stats.compound(first, second) or units[j].pos in ("NOUN", "UNK"):
            return True  # "dump | truck", "palm | trees": real captions write them together
    # "a pineapple and | ham pizza": the first of two coordinated modifiers of one compound.
    if head + 3 < len(units) and units[head + 1].low in ("and", "or") and units[head + 3].pos == "NOUN" and (
            stats.compound(units[head + 2].low, units[head + 3].low)) and units[head + 2].low in lx.NOUNS:
        return True
    return False


_ADJECTIVE_ENDINGS = ("al", "ic", "ive", "ous", "ful", "less", "ish", "able", "ible", "ant", "ent", "ar", "ary",
                      "ern", "ian", "ese")


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
    """The noun doing the verb at unit ``verb`` (lower-cased), or None if unclear; see
    :func:`subject_unit`."""
    unit = subject_unit(parsed, verb)
    return parsed.units[unit].low if unit is not None else None


def subject_unit(parsed: Parsed, verb: int) -> int | None:
    """The unit of the noun doing the verb at unit ``verb``, or None if unclear.

    Reads back over "is", "that", adverbs, an earlier verb of the same subject ("a woman
    sitting in a seat | holding") and prepositional phrases ("a man in a tie | waits");
    after "while"/"and" the subject is the caption's first phrase.
    """
    units = parsed.units
    j = verb - 1
    while j >= 0:
        unit = units[j]
        if unit.low in ("while", "as", "and", "then", "when"):
            return anchor_head(parsed, parsed.phrases[0]) if parsed.phrases and parsed.phrases[0].last < j else None
        if unit.low in ("that", "who", "which"):
            p = parsed.phrase_of[j - 1] if j > 0 else None  # "a cat | that is walking": the phrase before
            return anchor_head(parsed, parsed.phrases[p]) if p is not None else None
        if unit.pos in ("AUX", "ADV", "VERB") or unit.low == "to":
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
        return anchor_head(parsed, phrase)
    return None


def object_after(parsed: Parsed, last: int) -> str | None:
    """The noun of the phrase that starts right after unit ``last`` (a verb's object, a
    preposition's landmark), or None."""
    return head_low(parsed, phrase_starting_at(parsed, last + 1))


def sole_gendered_person(parsed: Parsed) -> int | None:
    """The unit of the caption's only gendered person noun when every gendered pronoun
    agrees with it ("a girl brushing her teeth"): the pronouns can only be about it."""
    from .fit import gender_of  # fit reads no context: imported here to keep modules acyclic

    people = [i for i, u in enumerate(parsed.units) if u.pos == "NOUN" and gender_of(u.low) is not None]
    if len(people) != 1:
        return None
    genders = pronoun_genders(parsed)
    return people[0] if genders == {gender_of(parsed.units[people[0]].low)} else None


def pronoun_genders(parsed: Parsed) -> set[str]:
    """Genders of the personal pronouns in the caption ("m", "f")."""
    words = {u.low for u in parsed.units}
    return {g for g, pronouns in GENDERED_PRONOUNS.items() if words & pronouns}


# --------------------------------------------------------------------------------------
# Roles of a noun phrase: what a swap moves a noun into
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Role:
    """One role of a noun in its caption.

    ``kind``: "subject" or "object" of verb ``word`` (a verb concept, or the word itself when
    the lexicon does not know it), "landmark" of relation ``word`` (a relation concept, or
    the preposition) for the thing at unit ``other``, "located" by relation ``word`` at the
    landmark at unit ``other``, or "attribute" (``word`` said of it: "the car is red").
    """

    kind: str
    word: str
    other: int | None = None


_COORDINATORS = frozenset({"and", "or", "&", "nor", "plus"})
# Verbs whose "at" introduces their object ("looking at a cat"), not a place ("seated at a table").
AT_OBJECT_VERBS = frozenset("look stare gaze peer glance point watch smile laugh wave yell bark throw aim swing".split())
_CLAUSE_STARTS = frozenset({"while", "as", "when", "where", "that", "which", "who", "then"})


def _verb_word(low: str) -> str:
    info = lx.VERBS.get(low)
    return info.concept if info is not None else low


def _relation_word(low: str) -> str:
    return lx.RELATIONS.get(low, low)


_POSITIONS = frozenset("left right top bottom side middle center centre front back background foreground distance".split())


def _position_frame(parsed: Parsed, p: int) -> bool:
    """Whether phrase ``p`` only names a position ("the left", "the top")."""
    phrase = parsed.phrases[p]
    return phrase.first == phrase.last - 1 and parsed.units[phrase.last].low in _POSITIONS or (
        phrase.first == phrase.last and parsed.units[phrase.last].low in _POSITIONS)


def located_before(parsed: Parsed, prep: int) -> int | None:
    """What the preposition at unit ``prep`` places: the noun right before it ("a cat | on
    a couch"), or the subject of the verb right before it ("a cat sitting | on a couch")."""
    units = parsed.units
    j = prep - 1
    while j > 0 and units[j].pos == "AUX":
        j -= 1  # "people are | on the bleachers"
    if j < 0:
        return None
    if parsed.phrase_of[j] is not None:
        return anchor_head(parsed, parsed.phrases[parsed.phrase_of[j]])
    if units[j].pos == "ADV" and units[j].low in lx.PARTICLES and j > 0:
        j -= 1
    if units[j].pos == "VERB":
        return subject_unit(parsed, j)
    return None


def phrase_roles(parsed: Parsed, p: int) -> list[Role] | None:
    """The roles of phrase ``p``'s anchor noun, or None when one cannot be read with
    confidence (coordination with a third phrase, a list, "of", a word the rules cannot
    place): a swap that needs them is then not made.

    Read from the words right before the phrase (the verb whose object it is, the
    preposition whose landmark it is), right after it (the preposition that places it, a
    predicate adjective) and from every verb whose subject it is.
    """
    units, phrase = parsed.units, parsed.phrases[p]
    head = anchor_head(parsed, phrase)
    if head is None:
        return None
    roles: list[Role] = []
    clause = False
    # Before the phrase.
    j = phrase.first - 1
    if j >= 0:
        gap = _gap(parsed.caption, units, j)
        unit = units[j]
        if gap.strip(" "):
            if parsed.phrase_of[j] is not None or gap.strip(" ") != ",":
                return None  # "a batter, catcher": a list (or a fronted phrase); quotes, a new sentence
        elif unit.low in _COORDINATORS:
            before = parsed.phrase_of[j - 1] if j > 0 else None
            if before is None or not _position_frame(parsed, before):
                return None  # "a cat and | a dog": it shares another phrase's roles
            # "a cross at the bottom and | a sphere at the top": a clause of its own
        elif unit.pos == "VERB":
            roles.append(Role("object", _verb_word(unit.low)))
        elif unit.pos == "ADV" and unit.low in lx.PARTICLES and j > 0 and units[j - 1].pos == "VERB":
            roles.append(Role("object", _verb_word(units[j - 1].low)))  # "picking up | a ball"
        elif unit.pos == "PREP":
            if unit.low == "of":
                return None  # "the side of | a bus", "a picture of | a dog"
            before = units[j - 1] if j > 0 else None
            if unit.low == "by" and before is not None and before.pos == "VERB" and before.vform == "past":
                roles.append(Role("subject", _verb_word(before.low)))  # "swung by | a girl": the agent
            elif unit.low == "at" and before is not None and before.pos == "VERB" and (
                    _verb_word(before.low) in AT_OBJECT_VERBS):
                roles.append(Role("object", _verb_word(before.low)))  # "looking at | a cat"
            else:
                roles.append(Role("landmark", _relation_word(unit.low), located_before(parsed, j)))
        elif unit.pos == "AUX":
            if not (j > 0 and units[j - 1].low == "there"):
                return None  # "the dog is | a puppy"
        elif unit.low == "as":
            clause = True  # "... as four giraffes stand": a clause only if a verb follows
        elif unit.low == "than" and j > 0 and units[j - 1].pos in ("ADJ", "ADV", "UNK"):
            roles.append(Role("landmark", "than", located_before(parsed, j - 1)))  # "lower than | a diamond"
        elif unit.low not in _CLAUSE_STARTS:
            return None
    # After the phrase: "a cat | on a couch", "a car | is red", "a racket | is being swung".
    k = phrase.last + 1
    if k < len(units) and _gap(parsed.caption, units, phrase.last).strip(" "):
        if parsed.phrase_of[k] is not None or _gap(parsed.caption, units, phrase.last).strip(" ") not in (",", "."):
            return None  # "a dog, | a cat and a bird"; quotes
    elif k < len(units):
        if units[k].low in _COORDINATORS:
            if k + 1 < len(units) and parsed.phrase_of[k + 1] is not None:
                return None  # "a cat | and a dog"
        else:
            m, aux = k, False
            if units[m].low in ("that", "which", "who"):
                m += 1
            while m < len(units) and (units[m].pos == "AUX" or (aux and units[m].pos == "ADV")):
                aux = aux or units[m].pos == "AUX"
                m += 1
            unit = units[m] if m < len(units) else None
            if unit is None:
                pass
            elif unit.pos == "PREP":
                landmark = phrase_starting_at(parsed, m + 1)
                if unit.low == "of" or landmark is None:
                    return None
                if not _position_frame(parsed, landmark):  # "on the left", "at the top": a side, no landmark
                    roles.append(Role("located", _relation_word(unit.low),
                                      anchor_head(parsed, parsed.phrases[landmark])))
            elif aux and unit.pos == "ADJ":
                roles.append(Role("attribute", unit.low))
            elif unit.pos == "VERB" and unit.vform == "ing" and m == k and phrase.first > 0 and (
                    units[phrase.first - 1].pos == "PREP"):
                return None  # "a tree in front of a dog | standing": which of the two stands?
            elif unit.pos == "VERB" and unit.vform == "past":
                roles.append(Role("object", _verb_word(unit.low)))  # "a racket is | swung", "a car | parked"
                nxt = m + 1
                while nxt < len(units) and units[nxt].pos == "ADV":
                    nxt += 1  # "positioned out | in the water"
                if nxt < len(units) and units[nxt].pos == "PREP" and units[nxt].low not in ("of", "by"):
                    landmark = phrase_starting_at(parsed, nxt + 1)  # "a dog is positioned | on the armchair"
                    if landmark is None:
                        return None
                    roles.append(Role("located", _relation_word(units[nxt].low),
                                      anchor_head(parsed, parsed.phrases[landmark])))
            elif aux and unit.pos != "VERB":
                return None  # "a hat is | worn", "the dog is | a puppy": not read
    # Every verb this phrase is the subject of, and where those verbs place it.
    for v, unit in enumerate(units):
        if unit.pos != "VERB" or v <= phrase.last or subject_unit(parsed, v) != head:
            continue
        if unit.vform == "past" and v > 0 and units[v - 1].pos == "AUX":
            continue  # passive: read above as its object
        roles.append(Role("subject", _verb_word(unit.low)))
        nxt = v + 1
        if nxt < len(units) and units[nxt].pos == "ADV" and units[nxt].low in lx.PARTICLES:
            nxt += 1
        if nxt < len(units) and units[nxt].pos == "PREP" and units[nxt].low not in ("of", "at", "by"):
            landmark = phrase_starting_at(parsed, nxt + 1)
            if landmark is not None:
                roles.append(Role("located", _relation_word(units[nxt].low),
                                  anchor_head(parsed, parsed.phrases[landmark])))
    if clause and not any(r.kind == "subject" for r in roles):
        return None  # "a donut as | the bun"
    return roles
