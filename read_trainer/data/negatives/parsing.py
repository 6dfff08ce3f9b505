"""The rules backend: a caption -> tagged units -> noun phrases, with the shipped lexicon only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .. import lexicon as lx
from .text import _WORD_RE, MAX_WORDS


@dataclass(slots=True)
class Unit:
    """A word or multi-word expression of the caption, with its tag."""

    start: int  # character span in the caption
    end: int
    low: str  # lower-cased text, single-spaced
    ntok: int
    cands: frozenset  # tags the lexicon allows
    pos: str = "UNK"
    number: str | None = None  # nouns: "sg", "pl" or "mass"
    vform: str | None = None  # verbs: "base", "3sg", "ing" or "past"


@dataclass(slots=True)
class Phrase:
    """A noun phrase: units ``first..last``; ``heads`` are its nouns that can be swapped.

    A measure phrase ("a plate of food") has two heads, the container and the content.
    """

    first: int
    last: int
    heads: tuple[int, ...]
    number: str
    has_modifier: bool  # a word other than a determiner before the head


@dataclass(slots=True)
class Parsed:
    caption: str
    units: list[Unit]
    phrases: list[Phrase]
    phrase_of: list[int | None]  # unit index -> phrase index


def _tokens(caption: str) -> list[tuple[int, int, str]]:
    """Word tokens as (start, end, lower-cased text), at most ``MAX_WORDS`` of them."""
    out = []
    for m in _WORD_RE.finditer(caption):
        if len(out) == MAX_WORDS:
            break
        out.append((m.start(), m.end(), m.group().lower().replace("\u2019", "'")))
    return out


def _merge_multiwords(caption: str, tokens: Sequence[tuple[int, int, str]]) -> list[tuple[int, int, int, str]]:
    """Group tokens into units, merging lexicon phrases ("in front of", "hot dog").

    Returns (first_token, last_token, ntok, lower text). Only tokens separated by plain
    spaces are merged: "next, to" is not "next to".
    """
    units = []
    i = 0
    while i < len(tokens):
        match = 1
        for words in lx.MULTIWORD_BY_FIRST.get(tokens[i][2], ()):
            n = len(words)
            if i + n <= len(tokens) and all(
                tokens[i + m][2] == words[m] and caption[tokens[i + m - 1][1] : tokens[i + m][0]] == " "
                for m in range(1, n)
            ):
                match = n
                break
        units.append((i, i + match - 1, match, " ".join(t[2] for t in tokens[i : i + match])))
        i += match
    return units


def _gap(parsed_caption: str, units: Sequence[Unit], i: int) -> str:
    """Text between unit ``i`` and unit ``i + 1``."""
    return parsed_caption[units[i].end : units[i + 1].start]


_NOMINAL_TAGS = frozenset({"NOUN", "ADJ", "NUM"})
_NP_START_TAGS = frozenset({"DET", "NUM", "ADJ", "NOUN", "PRON"})


def _guess_unknown(low: str) -> tuple[str, str | None]:
    """Tag and verb form for a word the lexicon does not know, from its ending."""
    if low.endswith("'s"):
        stem = low[:-2]
        return ("PRON", None) if stem in lx.PRONOUNS or stem in ("that", "what", "who") else ("POSS", None)
    if low in lx.NON_VERB_ING_ED:
        return "UNK", None
    if low.endswith("ing") and len(low) >= 5:
        return "VERB", "ing"
    if low.endswith("ed") and len(low) > 4:
        return "VERB", "past"
    if low.endswith("ly") and len(low) > 4:
        return "ADV", None
    if low.endswith(("ful", "ous", "less", "ish", "able")):
        return "ADJ", None
    return "UNK", None


def _looks_nominal(unit: Unit | None) -> bool:
    """Whether ``unit`` can continue a noun phrase (a noun, adjective or unknown word)."""
    if unit is None:
        return False
    if not unit.cands:
        return _guess_unknown(unit.low)[0] in ("UNK", "ADJ")
    return bool(unit.cands & _NOMINAL_TAGS) and not (unit.cands & {"DET", "PREP", "AUX", "CONJ", "PRON"})


def _starts_phrase(unit: Unit | None) -> bool:
    """Whether ``unit`` can open a noun phrase (used to tell prepositions from particles)."""
    if unit is None:
        return False
    if not unit.cands:
        return _guess_unknown(unit.low)[0] in ("UNK", "ADJ", "POSS")
    return bool(unit.cands & _NP_START_TAGS)


def _choose_tag(units: list[Unit], i: int) -> str:
    """Pick one tag for unit ``i`` from its lexicon candidates and its neighbours.

    Closed classes win (they are rarely anything else in captions); the open-class
    ambiguities that matter in COCO captions are noun/verb ("skis", "waves", "walks"),
    adjective/noun ("orange", "glass", "adult") and preposition/particle ("over", "up").
    """
    u = units[i]
    c = u.cands
    prev = units[i - 1] if i > 0 else None
    prev_pos = prev.pos if prev is not None else None
    nxt = units[i + 1] if i + 1 < len(units) else None
    for closed in ("DET", "NUM", "PRON", "AUX", "CONJ"):
        if closed in c:
            return closed
    if "PREP" in c:
        if prev_pos in ("DET", "ADJ", "POSS") and _looks_nominal(nxt):
            return "ADJ"  # "a small outside restaurant", "the inside wall"
        if c & {"ADV", "ADJ", "NOUN"} and not _starts_phrase(nxt):
            return "ADV" if "ADV" in c else ("ADJ" if "ADJ" in c else "NOUN")
        return "PREP"
    noun, verb, adj, adv = "NOUN" in c, "VERB" in c, "ADJ" in c, "ADV" in c
    if adj and (noun or verb or adv):
        nxt2 = units[i + 2] if i + 2 < len(units) else None
        coordinated = nxt is not None and nxt.low in ("and", "or") and nxt2 is not None and "ADJ" in nxt2.cands
        if _looks_nominal(nxt) or coordinated:
            return "ADJ"
    if noun and verb:
        vform = lx.VERBS[u.low].form
        if prev_pos in ("DET", "NUM", "POSS", "ADJ") or (prev is not None and prev.low == "of"):
            return "NOUN"
        if prev_pos in ("PRON", "AUX") or vform == "ing":
            return "VERB"
        if prev_pos in ("NOUN", "UNK", "CONJ") and (nxt is None or not _looks_nominal(nxt)):
            if vform != "base" or (prev is not None and prev.number == "pl"):
                return "VERB"
        return "NOUN"
    if adj and verb:
        return "ADJ" if prev_pos == "AUX" else "VERB"
    if adj and noun:
        # "a glass", "floor tile", "tank top": a noun after a determiner or a noun.
        return "NOUN" if prev_pos in ("DET", "NUM", "POSS", "ADJ", "NOUN", "UNK") else "ADJ"
    if adj and adv:
        return "ADV" if prev_pos == "VERB" else "ADJ"
    for tag in ("NOUN", "VERB", "ADJ", "ADV"):
        if tag in c:
            return tag
    guess = _guess_unknown(u.low)[0]
    after_determiner = prev_pos in ("DET", "ADJ", "NUM", "POSS")
    # "an old fashioned train", "a sleeping cat": a participle between a determiner
    # (or adjective) and a noun modifies the noun.
    if guess == "VERB" and after_determiner and _looks_nominal(nxt):
        return "ADJ"
    # "jelly", "family", "lovely": after a determiner an -ly word is no adverb.
    if guess == "ADV" and (after_determiner or _looks_nominal(nxt)):
        return "UNK"
    return guess


# Determiners of one single thing ("a dog", "each cup").
_INDEFINITE = frozenset({"a", "an", "one", "another", "each", "every"})


_PLURAL_DETERMINERS = frozenset(
    "these those several many few both various multiple numerous some all".split()
    + ["a lot of", "lots of", "a couple of", "a number of", "a bunch of", "a few"]
)


def _plural_context(units: list[Unit], i: int) -> bool:
    """Whether the words before unit ``i`` ask for a plural ("two white", "a herd of")."""
    j = i - 1
    while j >= 0 and units[j].pos == "ADJ":
        j -= 1
    if j < 0:
        return False
    prev = units[j]
    return (
        prev.low in _PLURAL_DETERMINERS
        or lx.NUMBER_WORDS.get(prev.low, 0) >= 2
        or (prev.low.isdigit() and int(prev.low) >= 2)
        or (prev.low == "of" and j > 0 and units[j - 1].low in lx.MEASURE_NOUNS)
    )


def _annotate(units: list[Unit], i: int) -> None:
    """Fill number (nouns) and verb form (verbs) once the tag is known."""
    unit = units[i]
    if unit.pos == "NOUN" and unit.low in lx.NOUNS:
        info = lx.NOUNS[unit.low]
        if info.singular == info.plural:  # "sheep", "deer", "fish": the context decides
            unit.number = "pl" if _plural_context(units, i) else "sg"
        else:
            unit.number = info.number
    elif unit.pos in ("NOUN", "UNK"):
        unit.number = "pl" if unit.low.endswith("s") and not unit.low.endswith(("ss", "us", "is")) else "sg"
    elif unit.pos == "VERB":
        unit.vform = lx.VERBS[unit.low].form if unit.low in lx.VERBS else _guess_unknown(unit.low)[1]


def _tag_rules(units: list[Unit]) -> None:
    """Tag ``units`` in place with the lexicon and the context rules of ``_choose_tag``."""
    for i, unit in enumerate(units):
        unit.pos = _choose_tag(units, i)
        _annotate(units, i)


_PHRASE_INNER_TAGS = frozenset({"NUM", "ADJ", "NOUN", "UNK", "POSS"})


def _joins_phrase(caption: str, units: list[Unit], j: int) -> bool:
    """Whether unit ``j`` continues the noun phrase that unit ``j - 1`` is in."""
    gap = _gap(caption, units, j - 1)
    prev, unit = units[j - 1], units[j]
    if gap.strip(" ") == "," and prev.pos == "ADJ" and unit.pos == "ADJ":
        return True  # "a small, white dog"
    if gap.strip(" "):
        return False
    if unit.pos in _PHRASE_INNER_TAGS:
        return True
    nxt = units[j + 1] if j + 1 < len(units) else None
    if nxt is None or _gap(caption, units, j).strip(" "):
        return False
    # "a brown and white cow", "a very large dog": one phrase, not two.
    if unit.low in ("and", "or") and prev.pos == "ADJ" and nxt.pos == "ADJ":
        return True
    return unit.pos == "ADV" and unit.low in lx.NON_CONTENT_ADVERBS and nxt.pos == "ADJ"


def _phrase_number(units: list[Unit], head: int) -> str:
    """"pl" or "sg" (mass nouns agree like singulars)."""
    return "pl" if units[head].number == "pl" else "sg"


def _chunk(caption: str, units: list[Unit]) -> list[Phrase]:
    """Noun phrases: maximal runs of determiner/modifier words ending at their last noun.

    A run without a lexicon noun still makes a phrase when an unknown word follows a
    determiner, number or adjective ("the tarmac"): that word is almost surely a noun.
    """
    phrases: list[Phrase] = []
    i, n = 0, len(units)
    while i < n:
        if units[i].pos not in ("DET", "POSS", "NUM", "ADJ", "NOUN", "UNK"):
            i += 1
            continue
        j = i + 1
        while j < n and _joins_phrase(caption, units, j):
            j += 1
        head = next((h for h in range(j - 1, i - 1, -1) if units[h].pos == "NOUN"), None)
        if head is None:
            head = _unknown_head(units, i, j)
        if head is None:
            i = j
            continue
        if head < j - 1 and _compound_tail(units, i, head, j):
            head = j - 1  # "a bathroom stall", "a train engine": the unknown word is the head
        has_modifier = any(units[m].pos not in ("DET", "POSS") for m in range(i, head))
        phrases.append(Phrase(i, head, (head,), _phrase_number(units, head), has_modifier))
        i = head + 1
    return _merge_measure_phrases(caption, units, phrases)


def _unknown_head(units: list[Unit], first: int, end: int) -> int | None:
    """Head of a run with no lexicon noun: its last unknown word after the first unit,
    unless that word is in -s after a singular determiner ("a bee stings": a verb)."""
    unknown = [h for h in range(first + 1, end) if units[h].pos == "UNK"]
    if not unknown:
        return None
    if _singular_start(units, first) and units[unknown[-1]].low.endswith("s"):
        return unknown[-2] if len(unknown) > 1 else None
    return unknown[-1]


def _singular_start(units: list[Unit], first: int) -> bool:
    return units[first].low in _INDEFINITE or units[first].low in ("the", "this", "that")


def _compound_tail(units: list[Unit], first: int, head: int, end: int) -> bool:
    """Whether the words after a noun that still belong to its run form a compound head.

    Unknown words ("stall") and material words used as nouns ("floor tile") qualify. An
    unknown word in -s after a singular determiner is more likely a verb ("a bee stings").
    """
    tail = units[head + 1 : end]
    if not all(u.pos == "UNK" or (u.pos == "ADJ" and lx.ATTRIBUTES.get(u.low, ("",))[0] == "material") for u in tail):
        return False
    return not (tail[-1].pos == "UNK" and tail[-1].low.endswith("s") and _singular_start(units, first))


def _merge_measure_phrases(caption: str, units: list[Unit], phrases: list[Phrase]) -> list[Phrase]:
    """Join "a group | of | people" into one phrase whose number is the content's."""
    merged: list[Phrase] = []
    for phrase in phrases:
        if merged:
            outer = merged[-1]
            of_index = outer.last + 1
            if (
                units[outer.last].low in lx.MEASURE_NOUNS
                and of_index + 1 == phrase.first
                and units[of_index].low == "of"
                and not _gap(caption, units, outer.last).strip()
                and not _gap(caption, units, of_index).strip()
            ):
                # "of people" modifies the measure noun, so the phrase has a modifier.
                merged[-1] = Phrase(outer.first, phrase.last, outer.heads + phrase.heads, phrase.number, True)
                continue
        merged.append(phrase)
    return merged


def _build_units(caption: str) -> list[Unit]:
    tokens = _tokens(caption)
    return [
        Unit(tokens[a][0], tokens[b][1], low, ntok, lx.pos_candidates(low))
        for a, b, ntok, low in _merge_multiwords(caption, tokens)
    ]


def _finish(caption: str, units: list[Unit]) -> Parsed:
    phrases = _chunk(caption, units)
    phrase_of: list[int | None] = [None] * len(units)
    for p_index, phrase in enumerate(phrases):
        for u in range(phrase.first, phrase.last + 1):
            phrase_of[u] = p_index
    return Parsed(caption, units, phrases, phrase_of)


def parse_rules(caption: str) -> Parsed:
    """Tag and chunk ``caption`` with the shipped lexicon only (the "rules" backend)."""
    units = _build_units(caption)
    _tag_rules(units)
    return _finish(caption, units)
