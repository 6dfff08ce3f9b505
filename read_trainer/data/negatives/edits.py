"""Building one negative: swaps and replacements as edits on character spans of a parsed caption."""

from __future__ import annotations

import functools
import random
from typing import Callable, Hashable, Iterator, Sequence

from .. import lexicon as lx
from . import checks, cooccurrence, fit, number
from . import context as cx
from .parsing import _INDEFINITE, Parsed, Phrase, _gap, _plural_context, _starts_phrase
from .text import _WORD_RE, _match_case, apply_edits, bag_of_words, indefinite_article

SWAP_CATEGORIES = ("swap_noun", "swap_adj", "swap_adv", "swap_np", "swap_relation")
REPLACE_CATEGORIES = ("replace_att", "replace_obj", "replace_rel")
CATEGORIES = SWAP_CATEGORIES + REPLACE_CATEGORIES
# The order categories are drawn in, by the share of valid negatives each made on the labelled
# set (benchmarks/negatives_quality/): swaps, attribute/count and object replacements (~90-96%)
# take turns; relation replacements (~80%, and ~60% on captions the rules were not tuned
# on) fill only what those cannot.
TIERS = (SWAP_CATEGORIES + ("replace_att", "replace_obj"), ("replace_rel",))


def _with_article(parsed: Parsed, first_unit: int, start: int, end: int, text: str, protect: range = range(0)):
    """Extend an edit to the "a"/"an" just before it when the new text needs the other one.

    ``protect`` is a unit range the article must not belong to (the other span of a swap).
    """
    units = parsed.units
    art = first_unit - 1
    if art < 0 or units[art].low not in lx.ARTICLES or art in protect:
        return start, end, text
    if parsed.caption[units[art].end : start] != " ":
        return start, end, text
    words = _WORD_RE.findall(text)
    if not words:
        return start, end, text
    wanted = indefinite_article(words[0])
    if wanted == units[art].low:
        return start, end, text
    article = _match_case(parsed.caption[units[art].start : units[art].end], wanted, art == 0, parsed.caption.isupper())
    return units[art].start, end, article + " " + text


def _is_sentence_start(parsed: Parsed, unit_index: int) -> bool:
    """The caption's first word, written with a capital (so the capital is positional)."""
    return unit_index == 0 and parsed.caption[parsed.units[0].start].isupper()


def _move_case(parsed: Parsed, text: str, from_unit: int, to_unit: int) -> str:
    """Re-case a span that moves: a sentence-initial capital stays at the sentence start."""
    if parsed.caption.isupper():
        return text  # all capitals: nothing positional to move
    if _is_sentence_start(parsed, from_unit):
        first_word = _WORD_RE.match(text)
        # "A", "The", "Two": a capital that only marks the sentence start. Acronyms
        # ("TV") and unknown (possibly proper) names keep theirs.
        if first_word and not (len(first_word.group()) > 1 and first_word.group().isupper()):
            if lx.pos_candidates(first_word.group().lower()):
                text = text[:1].lower() + text[1:]
    if _is_sentence_start(parsed, to_unit):
        text = text[:1].upper() + text[1:]
    return text


def swap_spans(parsed: Parsed, a: tuple[int, int], b: tuple[int, int]) -> str | None:
    """Swap unit ranges ``a`` and ``b`` (inclusive, ``a`` before ``b``, disjoint).

    Articles in front of either span are fixed when that keeps the bag of words (an
    "a" turning into "an" on one side and back on the other); otherwise the swap is
    refused rather than leaving "a orange", which a text-only model could spot.
    """
    if not a[1] < b[0]:
        raise ValueError(f"swap spans overlap or are out of order: {a}, {b}")
    units, caption = parsed.units, parsed.caption
    sa, ea = units[a[0]].start, units[a[1]].end
    sb, eb = units[b[0]].start, units[b[1]].end
    text_a, text_b = caption[sa:ea], caption[sb:eb]
    new_a = _move_case(parsed, text_b, b[0], a[0])
    new_b = _move_case(parsed, text_a, a[0], b[0])
    edits = [
        _with_article(parsed, a[0], sa, ea, new_a),
        _with_article(parsed, b[0], sb, eb, new_b, protect=range(a[0], a[1] + 1)),
    ]
    text = apply_edits(caption, edits)
    if bag_of_words(text) != bag_of_words(caption):
        return None
    return text


def replace_span(parsed: Parsed, first: int, last: int, new: str) -> str:
    """Replace unit range ``first..last`` by ``new`` (lexicon-cased to match), fixing "a"/"an".

    A person replaced by one of the other gender takes the caption's pronouns along when
    they can only be about that person ("a girl brushing her teeth" -> "a boy brushing his
    teeth"); see ``checks.object_check``.
    """
    units, caption = parsed.units, parsed.caption
    start, end = units[first].start, units[last].end
    new_text = _match_case(caption[start:end], new, first == 0, caption.isupper())
    edits = [_with_article(parsed, first, start, end, new_text)]
    old_gender, new_gender = fit.gender_of(units[first].low), fit.gender_of(new)
    if first == last and new_gender not in (None, old_gender) and cx.sole_gendered_person(parsed) == first:
        for j, unit in enumerate(units):
            if unit.low in _PRONOUN_FLIP:
                word = _PRONOUN_FLIP[unit.low]
                if word == "her/him":  # "her teeth" -> "his teeth", "hugging her" -> "him"
                    nxt = units[j + 1] if j + 1 < len(units) else None
                    word = "his" if nxt is not None and nxt.pos in ("NOUN", "ADJ", "UNK", "NUM") else "him"
                text = _match_case(caption[unit.start:unit.end], word, j == 0, caption.isupper())
                edits.append((unit.start, unit.end, text))
        edits.sort()
    return apply_edits(caption, edits)


_PRONOUN_FLIP = {"he": "she", "him": "her", "his": "her", "himself": "herself",
                 "she": "he", "hers": "his", "herself": "himself", "her": "her/him"}


# --------------------------------------------------------------------------------------
# Candidates per category. Each is a lazy generator of texts in random order; the
# selection loop pulls from them round-robin, so unused candidates cost nothing.
# --------------------------------------------------------------------------------------


def _between(parsed: Parsed, lo: int, hi: int, skip_phrases: bool) -> str:
    """Words strictly between units ``lo`` and ``hi``, optionally leaving out noun phrases."""
    return " ".join(
        u.low for i, u in enumerate(parsed.units[lo + 1 : hi], lo + 1)
        if not (skip_phrases and parsed.phrase_of[i] is not None)
    )


def _linked(parsed: Parsed, lo: int, hi: int, skip_phrases: bool) -> bool:
    """Whether units ``lo`` and ``hi`` are only coordinated ("x and y", "x, y", "x next to y").

    Swapping coordinated items gives a caption with the same meaning, a false negative.
    """
    words = _between(parsed, lo, hi, skip_phrases)
    return words == "" or words in lx.SYMMETRIC_LINKS


# Words that may sit between two phrases without making their relation one-sided:
# "a giraffe standing next to a baby giraffe" says what "a baby giraffe standing next to
# a giraffe" says.
_SYMMETRIC_FILLERS = frozenset("""is are that which who sitting standing lying laying parked placed resting positioned
    situated located set seated shown""".split())


def _phrases_linked(parsed: Parsed, p: int, q: int) -> bool:
    """Coordinated phrases, or two halves of one phrase ("a large body | of | water")."""
    first, second = sorted((p, q))
    lo, hi = parsed.phrases[first].last, parsed.phrases[second].first
    if _linked(parsed, lo, hi, skip_phrases=True) or _between(parsed, lo, hi, skip_phrases=False) == "of":
        return True
    words = _between(parsed, lo, hi, skip_phrases=False).split()
    while words and words[0] in _SYMMETRIC_FILLERS:
        words.pop(0)
    return bool(words) and len(words) < len(_between(parsed, lo, hi, skip_phrases=False).split()) and (
        " ".join(words) in lx.SYMMETRIC_LINKS)


def _pairs(items: Sequence, rng: random.Random) -> list[tuple]:
    """All unordered pairs of ``items`` (in their order), shuffled."""
    pairs = [(items[i], items[j]) for i in range(len(items)) for j in range(i + 1, len(items))]
    rng.shuffle(pairs)
    return pairs


def _interleave(option_lists: Sequence[Sequence[str]]) -> Iterator[tuple[int, str]]:
    """Round-robin over slots: every slot's first option before any slot's second."""
    for depth in range(max((len(o) for o in option_lists), default=0)):
        for slot, options in enumerate(option_lists):
            if depth < len(options):
                yield slot, options[depth]


def _takes_indefinite(parsed: Parsed, phrase: Phrase) -> bool:
    return parsed.units[phrase.first].low in _INDEFINITE


def _swap_nouns(parsed: Parsed, rng: random.Random) -> Iterator[str]:
    units = parsed.units
    slots = []  # (unit index, phrase index)
    for p_index, phrase in enumerate(parsed.phrases):
        for head in phrase.heads:
            info = lx.NOUNS.get(units[head].low)
            if units[head].pos == "NOUN" and info is not None and info.cls in lx.SWAPPABLE_NOUN_CLASSES:
                slots.append((head, p_index))
    for (u, p), (v, q) in _pairs(slots, rng):
        # Same concept ("tennis racket" / "racket"): the swap would keep the meaning.
        if p == q or lx.NOUNS[units[u].low].concept == lx.NOUNS[units[v].low].concept:
            continue
        if _phrases_linked(parsed, p, q):
            continue
        # Agreement: a plural noun in a singular slot ("two water") reads as an error.
        if (units[u].number == "pl") != (units[v].number == "pl"):
            continue
        if (units[u].number == "mass" and _takes_indefinite(parsed, parsed.phrases[q])) or (
            units[v].number == "mass" and _takes_indefinite(parsed, parsed.phrases[p])
        ):
            continue
        if not checks.nouns_trade_places(parsed, u, p, v, q):
            continue
        text = swap_spans(parsed, (u, u), (v, v))
        if text is not None:
            yield text


def _span_between(parsed: Parsed, p: int, q: int) -> tuple[int, int]:
    first, second = sorted((p, q))
    return parsed.phrases[first].last, parsed.phrases[second].first


def _same_head(parsed: Parsed, p: int, q: int) -> bool:
    """Whether two phrases name one kind of thing ("a red apple", "a green apple")."""
    a, b = (parsed.units[parsed.phrases[i].last].low for i in (p, q))
    concept = lambda w: lx.NOUNS[w].concept if w in lx.NOUNS else w  # noqa: E731
    return concept(a) == concept(b)


_NON_CONTENT_ADJECTIVES = frozenset("other another same different various several only main".split())


def _count(low: str) -> int:
    return int(low) if low.isdigit() else lx.NUMBER_WORDS.get(low, 0)


def _swap_adjectives(parsed: Parsed, rng: random.Random) -> Iterator[str]:
    units = parsed.units
    # Adjectives inside a noun phrase or after a verb ("is red", "wearing red"); one
    # right after a noun ("a bowl full of food") would not survive the move.
    slots = [
        i for i, u in enumerate(units)
        if u.pos == "ADJ" and u.low not in _NON_CONTENT_ADJECTIVES and u.low not in lx.DIRECTION_ANTONYMS
        and (parsed.phrase_of[i] is not None or (i > 0 and units[i - 1].pos in ("AUX", "VERB")))
    ]
    # Counts of two things trade places too: "two dogs and three cats" -> "three dogs and two cats".
    slots += [i for i, u in enumerate(units) if u.pos == "NUM" and parsed.phrase_of[i] is not None and _count(u.low) >= 2]
    for u, v in _pairs(slots, rng):
        if units[u].low == units[v].low or (units[u].pos == "NUM") != (units[v].pos == "NUM"):
            continue
        p, q = parsed.phrase_of[u], parsed.phrase_of[v]
        if p is not None and q is not None:
            # Same phrase: "a big red car" -> "a red big car" means the same. Across "and"
            # or "next to" the swap changes which thing has which attribute ("a red car
            # next to a blue truck"), unless the two things are one kind ("a red apple next
            # to a green apple" says what its swap says) or one phrase continues the other.
            if p == q or (_phrases_linked(parsed, p, q) and (
                    _same_head(parsed, p, q) or _between(parsed, *_span_between(parsed, p, q), False) == "of")):
                continue
        elif _linked(parsed, u, v, skip_phrases=False):
            continue
        if units[u].pos == "NUM":
            if not checks.counts_trade_places(parsed, u, v):
                continue
        elif not checks.adjectives_trade_places(parsed, u, v):
            continue
        text = swap_spans(parsed, (u, u), (v, v))
        if text is not None:
            yield text


def _swap_adverbs(parsed: Parsed, rng: random.Random) -> Iterator[str]:
    units = parsed.units
    # Adverbs of a verb only ("walking slowly"): one before an adjective, a preposition or
    # another adverb says how much ("slightly tilted", "barely off") and garbles elsewhere.
    slots = [
        i for i, u in enumerate(units)
        if u.pos == "ADV" and u.low not in lx.NON_CONTENT_ADVERBS and u.low not in lx.PARTICLES
        and i > 0 and units[i - 1].pos == "VERB" and (i + 1 == len(units) or units[i + 1].pos not in ("ADJ", "ADV", "PREP"))
    ]
    for u, v in _pairs(slots, rng):
        if units[u].low == units[v].low or _linked(parsed, u, v, skip_phrases=False):
            continue
        text = swap_spans(parsed, (u, u), (v, v))
        if text is not None:
            yield text


def _phrase_core(parsed: Parsed, phrase: Phrase) -> str:
    """A phrase's words without leading determiners ("the dog" and "a dog" are one core)."""
    units = parsed.units
    start = phrase.first
    while start < phrase.last and units[start].pos in ("DET", "POSS"):
        start += 1
    return " ".join(u.low for u in units[start : phrase.last + 1])


def _swap_phrases(parsed: Parsed, rng: random.Random) -> Iterator[str]:
    phrases = parsed.phrases
    indices = [
        i for i, ph in enumerate(phrases)
        if any(lx.NOUNS.get(parsed.units[h].low, lx.NounForm("", "unknown", "", None, None)).cls != "frame"
               for h in ph.heads)
    ]
    for p, q in _pairs(indices, rng):
        a, b = phrases[p], phrases[q]
        # One side must carry a modifier, or this is just a noun swap with articles.
        if not (a.has_modifier or b.has_modifier) or a.number != b.number:
            continue
        if _phrase_core(parsed, a) == _phrase_core(parsed, b) or _phrases_linked(parsed, p, q):
            continue
        if not checks.phrases_trade_places(parsed, a, b):
            continue
        text = swap_spans(parsed, (a.first, a.last), (b.first, b.last))
        if text is not None:
            yield text


def _relation_units(parsed: Parsed) -> list[tuple[int, int, str]]:
    """Relations as (first unit, last unit, kind).

    A verb takes its particle and preposition along ("walking away from", "looks at"),
    so a swap moves the whole relation and never splits it; a preposition that a verb
    took is not a relation of its own, so relation spans cannot overlap.
    """
    units = parsed.units
    out, i = [], 0
    while i < len(units):
        u = units[i]
        if u.pos == "VERB":
            last = i
            while (
                last + 1 < len(units)
                and units[last + 1].pos in ("ADV", "PREP")
                and (units[last + 1].low in lx.PARTICLES or units[last + 1].pos == "PREP")
                and units[last + 1].low not in lx.NON_RELATIONAL_PREPOSITIONS
                and not _gap(parsed.caption, units, last).strip(" ")
                and last - i < 2
            ):
                last += 1
            # A verb with an object (or a preposition) only trades places with another
            # such verb: "standing" cannot take over the object of "sitting in".
            takes_object = last + 1 < len(units) and _starts_phrase(units[last + 1])
            out.append((i, last, f"verb:{u.vform}:{takes_object}"))
            i = last + 1
            continue
        if u.pos == "PREP" and u.low not in lx.NON_RELATIONAL_PREPOSITIONS:
            out.append((i, i, "prep"))
        i += 1
    return out


def _swap_relations(parsed: Parsed, rng: random.Random) -> Iterator[str]:
    units = parsed.units
    for (a0, a1, kind_a), (b0, b1, kind_b) in _pairs(_relation_units(parsed), rng):
        if kind_a != kind_b:
            continue
        text_a = " ".join(u.low for u in units[a0 : a1 + 1])
        text_b = " ".join(u.low for u in units[b0 : b1 + 1])
        if text_a == text_b or _linked(parsed, a1, b0, skip_phrases=False):
            continue
        if kind_a == "prep" and lx.RELATIONS.get(text_a) == lx.RELATIONS.get(text_b):
            continue  # "adjacent to" and "next to" say one thing
        if not checks.relations_trade_places(parsed, (a0, a1), (b0, b1)):
            continue
        text = swap_spans(parsed, (a0, a1), (b0, b1))
        if text is not None:
            yield text


def _present_concepts(parsed: Parsed) -> set[str]:
    """Concepts already in the caption: a replacement must add a new one."""
    present = set()
    for u in parsed.units:
        for table in (lx.NOUNS, lx.VERBS):
            if u.low in table:
                present.add(table[u.low].concept)
        if u.low in lx.ATTRIBUTES:
            present.add(lx.ATTRIBUTES[u.low][1])
        present.add(u.low)
    return present


def _described_class(parsed: Parsed, i: int) -> str | None:
    """Lexicon class of the noun that the adjective at unit ``i`` describes, if known."""
    p = parsed.phrase_of[i]
    if p is None:
        return None
    info = lx.NOUNS.get(parsed.units[parsed.phrases[p].heads[0]].low)
    return info.cls if info else None


_QUANTITY_OPPOSITES = {"many": "few", "few": "many", "numerous": "few"}


def _attribute_options(parsed: Parsed, i: int, present: set[str]) -> list[str]:
    unit = parsed.units[i]
    if unit.pos == "NUM" and lx.NUMBER_WORDS.get(unit.low, 0) >= 2:
        return [w for w in lx.REPLACEABLE_COUNTS if w != unit.low]
    if unit.pos == "DET" and unit.low in _QUANTITY_OPPOSITES:  # "many people" -> "few people"
        return [_QUANTITY_OPPOSITES[unit.low]]
    if unit.pos == "NUM" and unit.low.isdigit() and 2 <= int(unit.low) <= 12:  # "2 people" -> "3 people"
        return [str(lx.NUMBER_WORDS[w]) for w in lx.REPLACEABLE_COUNTS if str(lx.NUMBER_WORDS[w]) != unit.low]
    if unit.pos != "ADJ":
        return []
    if unit.low in lx.AGE_ANTONYMS:  # an old man is not a "new man"; an old car not a "young car"
        animate, inanimate = lx.AGE_ANTONYMS[unit.low]
        return [animate if _described_class(parsed, i) in lx.ANIMATE_CLASSES else inanimate]
    if unit.low in lx.ATTRIBUTES:
        group, _ = lx.ATTRIBUTES[unit.low]
        return [word for concept, word in lx.ATTRIBUTE_POOLS[group] if concept not in present]
    if unit.low in lx.ANTONYMS:
        return sorted(w for w in lx.ANTONYMS[unit.low] if w not in present)
    return []


def _replace_single_words(parsed: Parsed, rng: random.Random,
                          options_for: Callable[[Parsed, int, set[str]], list[str]],
                          positions: Sequence[int] | None = None,
                          check: Callable[[Parsed, int], checks.Check] | None = None,
                          meaning: Callable[[Parsed, int, str], Hashable] | None = None,
                          weight: Callable[[Parsed, int], Callable[[str], float]] | None = None) -> Iterator[str]:
    """One-word replacements: every replaceable slot's options shuffled, slots interleaved
    in random order, so the first K negatives edit different words where possible.
    ``positions``: the units that may be replaced (default: all).

    ``check(parsed, i)`` gives the test that an option for slot ``i`` fits its context
    (built once per slot, when the slot's first option comes up), and
    ``meaning(parsed, i, word)`` names what an option says, so that two options saying the
    same ("big", "huge" for "small") give one negative. Both act after the shuffles, on the
    same candidate lists, so that the random draws (and every negative that fits) are the
    same as without them.

    ``weight(parsed, i)`` gives, per slot, a weight per option: options are then drawn in a
    weighted random order (heavier ones tend to come first), still one order per (seed,
    caption).
    """
    present = _present_concepts(parsed)
    slots, options = [], []
    for i in range(len(parsed.units)) if positions is None else positions:
        choices = options_for(parsed, i, present)
        if choices:
            if weight is None:
                rng.shuffle(choices)
            else:
                # Efraimidis-Spirakis: sorting by u ** (1 / w) draws without replacement,
                # each next option with probability proportional to its weight.
                weigh = weight(parsed, i)
                keys = {word: rng.random() ** (1.0 / weigh(word)) for word in choices}
                choices.sort(key=lambda word: -keys[word])
            slots.append(i)
            options.append(choices)
    order = list(range(len(slots)))
    rng.shuffle(order)
    said = set()
    tests: dict[int, checks.Check] = {}
    for slot, word in _interleave([options[o] for o in order]):
        i = slots[order[slot]]
        if check is not None:
            if i not in tests:
                tests[i] = check(parsed, i)
            if not tests[i](word):
                continue
        if meaning is not None:
            key = meaning(parsed, i, word)
            if key in said:
                continue
            said.add(key)
        yield replace_span(parsed, i, i, word)


def _attribute_meaning(parsed: Parsed, i: int, word: str) -> Hashable:
    # The other side of an antonym pair is one meaning: "small" -> "big" or "huge", not both.
    low = parsed.units[i].low
    return (i, "opposite") if low in lx.ANTONYMS and low not in lx.ATTRIBUTES else (i, word)


def _replace_attributes(parsed: Parsed, rng: random.Random) -> Iterator[str]:
    """Attribute and count replacements, with the subject's and the held object's number
    ("a dog" -> "two dogs", "holding a cup" -> "holding two cups") as the second and third
    candidates, so that a caption with both kinds gets one of each."""
    words = _replace_single_words(parsed, rng, _attribute_options, check=checks.attribute_check,
                                  meaning=_attribute_meaning)
    first = next(words, None)
    if first is not None:
        yield first
    yield from number.subject_number_change(parsed)
    yield from number.object_number_change(parsed)
    yield from words
    # Last, a second count for a subject made plural ("two dogs run", then "three dogs
    # run"): a caption with nothing else to change still gets a second negative.
    yield from number.subject_number_change(parsed, count="three")


# Collectives whose "of" asks for a plural ("a herd of | zebras"), even when a caption
# writes the singular ("a herd of zebra").
_COLLECTIVES = frozenset(
    "herd flock group bunch pack couple pair lot lots row line pile stack number variety assortment "
    "collection crowd team dozen handful few family".split()
)


def _counted(parsed: Parsed, i: int) -> bool:
    """Whether the noun at unit ``i`` is counted as several ("two zebra", "a herd of zebra")."""
    units = parsed.units
    j = i - 1
    while j >= 0 and units[j].pos == "ADJ":
        j -= 1
    if j > 0 and units[j].low == "of":
        return units[j - 1].low in _COLLECTIVES  # not "a piece of | cake"
    return _plural_context(units, i)


def _object_options(parsed: Parsed, i: int, present: set[str]) -> list[str]:
    unit = parsed.units[i]
    info = lx.NOUNS.get(unit.low)
    if unit.pos != "NOUN" or info is None or info.cls not in lx.REPLACEABLE_NOUN_CLASSES:
        return []
    number = unit.number  # the unit's: "sheep" may be plural
    if number == "sg" and _counted(parsed, i):
        number = "pl"  # "a herd of zebra" -> "a herd of horses", not "of horse"
    pool = lx.NOUN_POOLS.get((info.cls, number), ())
    return [word for concept, word in pool if concept not in present]


def _replace_objects(parsed: Parsed, rng: random.Random) -> Iterator[str]:
    # Heads only: a replaced compound modifier ("tomato sauce" -> "pie sauce") rarely
    # names a thing that could be in the image.
    heads = sorted(h for phrase in parsed.phrases for h in phrase.heads)
    return _replace_single_words(parsed, rng, _object_options, heads, check=_object_check_and_name,
                                 meaning=_object_meaning, weight=_context_weight)


@functools.lru_cache(maxsize=4096)
def _base_noun(word: str) -> str:
    """The shortest lexicon noun of the same kind a word ends with: "armchair" -> "chair",
    "double decker bus" -> "bus". Two options with one base name one kind of thing for a
    reader. People are left as they are ("woman" is not a kind of "man")."""
    last = word.split()[-1]
    info = lx.NOUNS.get(last)
    last = info.singular or last if info is not None else last  # "scooters" and "motor scooters" too
    kind = fit.kind_of(word)
    if kind is None or kind.animacy == "person":
        return last  # "woman" is not a kind of "man"
    bases = [n for n in _SINGLE_WORD_NOUNS if len(n) >= 3 and last.endswith(n) and fit.kind_of(n) == kind]
    return min(bases, key=len) if bases else last


_SINGLE_WORD_NOUNS = frozenset(w for w in lx.NOUNS if " " not in w)


def _object_meaning(parsed: Parsed, i: int, word: str) -> Hashable:
    # "scooter" and "motor scooter", "chair" and "armchair": one negative, not two.
    return (i, _base_noun(word))


def _object_check_and_name(parsed: Parsed, i: int) -> checks.Check:
    """``checks.object_check``, and never a kind of the original ("bus" -> "double decker
    bus", "trolley car" -> "trolley bus" could still be true)."""
    check = checks.object_check(parsed, i)
    original = _base_noun(parsed.units[i].low)
    return lambda word: _base_noun(word) != original and check(word)


def _context_weight(parsed: Parsed, i: int) -> Callable[[str], float]:
    """Object replacements seen with the caption's other words come first ("a train in a
    station" -> "a bus in a station" before "... in a restaurant"): see ``cooccurrence``."""
    stats = cooccurrence.load()
    context = [c for j, c in cooccurrence.concepts(parsed).items() if j != i]
    return lambda word: cooccurrence.context_weight(stats, context, word)


# Relations proposed as replacements: one clear phrase per concept. "between"/"among"
# need two objects, "through"/"along" a path; they would rarely make sense in a slot.
_RELATION_TARGETS = {
    "on": "on", "in": "in", "under": "under", "above": "above", "next": "next to",
    "behind": "behind", "front": "in front of", "left": "to the left of",
    "right": "to the right of", "across": "across from", "outside": "outside of",
}
_INTRANSITIVE_VERB_CLASSES = frozenset({"posture", "motion"})


def _relation_options(parsed: Parsed, i: int, present: set[str]) -> list[str]:
    unit = parsed.units[i]
    if unit.low in lx.DIRECTION_ANTONYMS:
        if i > 0 and parsed.units[i - 1].low in lx.AUXILIARIES | lx.PRONOUNS:
            return []  # "skiers have left a trail": the verb, not the side
        return [lx.DIRECTION_ANTONYMS[unit.low]]
    if unit.pos == "PREP" and unit.low in lx.RELATIONS:
        concept = lx.RELATIONS[unit.low]
        if concept in lx.EXCLUSIVE_RELATION_PAIRS:
            return list(lx.EXCLUSIVE_RELATION_PAIRS[concept])
        if concept in ("left", "right"):
            return [_RELATION_TARGETS["right" if concept == "left" else "left"]]
        if concept in ("up", "down"):  # "skiing down a slope" -> "up"; checks keeps it to slopes
            return ["down" if concept == "up" else "up"]
        if concept in lx.NON_REPLACEABLE_RELATIONS:
            return []
        return [
            phrase for target, phrase in _RELATION_TARGETS.items()
            if target != concept and frozenset((target, concept)) not in lx.CONFUSABLE_RELATIONS
        ]
    info = lx.VERBS.get(unit.low)
    if unit.pos != "VERB" or info is None or info.form == "past":
        return []
    if info.concept in lx.PARTICLE_VERBS:
        # "looking at" -> "pointing at": verbs that take the same particle are replaced as a set.
        nxt = parsed.units[i + 1] if i + 1 < len(parsed.units) else None
        if info.concept not in fit.AT_VERBS or nxt is None or nxt.low != "at":
            return []
        form = ("base", "3sg", "ing").index(info.form)
        return [lx.VERBS[c].forms[form] for c in sorted(fit.AT_VERBS) if c != info.concept and c not in present]
    # Keep transitivity: "sitting on" -> "standing on", "holding a cup" -> "throwing a cup".
    nxt = parsed.units[i + 1] if i + 1 < len(parsed.units) else None
    takes_object = nxt is not None and nxt.pos in ("DET", "NUM", "POSS", "ADJ", "NOUN", "PRON")
    if takes_object == (info.cls in _INTRANSITIVE_VERB_CLASSES):
        return []
    return [word for concept, word in lx.VERB_POOLS.get((info.cls, info.form), ()) if concept not in present]


def _replace_relations(parsed: Parsed, rng: random.Random) -> Iterator[str]:
    return _replace_single_words(parsed, rng, _relation_options, check=checks.relation_check)


_GENERATORS: dict[str, Callable[[Parsed, random.Random], Iterator[str]]] = {
    "swap_noun": _swap_nouns,
    "swap_adj": _swap_adjectives,
    "swap_adv": _swap_adverbs,
    "swap_np": _swap_phrases,
    "swap_relation": _swap_relations,
    "replace_att": _replace_attributes,
    "replace_obj": _replace_objects,
    "replace_rel": _replace_relations,
}
