"""Offline hard-negative captions: NegCLIP-style swaps and SugarCrepe-style replacements.

READ's contrastive loss scores each image against its caption *and* K hard-negative
captions that reuse the caption's words but say something false about the image. This
module makes them from the caption alone, with word lists the package ships
(:mod:`read_trainer.data.lexicon`), so it needs no model download and runs in a
DataLoader collator (well under a millisecond per caption).

Categories
----------
Swaps (NegCLIP): the negative has exactly the caption's bag of words.

* ``swap_noun``     two nouns of different noun phrases ("a dog on a couch" -> "a couch on a dog")
* ``swap_adj``      two adjectives of different noun phrases
* ``swap_adv``      two adverbs
* ``swap_np``       two noun phrases with their modifiers
* ``swap_relation`` two relations: verbs with their particle ("looks at") or prepositions

Replacements (SugarCrepe):

* ``replace_att``   an attribute by another of its kind (colour, material, size, count, ...)
* ``replace_obj``   an object noun by another of its class, keeping number, fixing "a"/"an"
* ``replace_rel``   a spatial preposition or a verb by another of its kind

Guarantees
----------
* Deterministic per (seed, caption): the random stream is seeded from
  ``sha256(f"{seed}:{caption}")`` (never Python's salted ``hash()``), so a caption gets
  the same negatives in every process, worker and call order (for a given ``k``,
  category set and backend, which shape the draw).
* No negative is empty or equal to its caption (compared lower-cased with whitespace
  collapsed), no two of one caption's negatives are equal, the two spans of a swap never
  overlap, and text outside the edited spans (case, punctuation, spacing) is untouched.
* Swaps between coordinated phrases ("a cat and a dog", "red and white") are refused:
  they would give a caption that still describes the image, a false negative.

Fallback when a caption allows fewer than K negatives
-----------------------------------------------------
1. The preferred categories (``categories``; all by default) are drawn round-robin in a
   per-caption random order, so K negatives come from K different categories when the
   caption allows it, and from repeated categories otherwise.
2. Still short: categories outside the preferred set are tried (counted as
   ``fallback/other_category``).
3. Still short: :meth:`HardNegativeGenerator.generate` returns what is possible and
   counts the shortfall; the collator then calls :func:`fill_shortfall`, which tops the
   caption up with other captions' negatives (and captions) from the same batch.
"""

from __future__ import annotations

import collections
import hashlib
import importlib.util
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Hashable, Iterator, Sequence

from . import lexicon as lx

SWAP_CATEGORIES = ("swap_noun", "swap_adj", "swap_adv", "swap_np", "swap_relation")
REPLACE_CATEGORIES = ("replace_att", "replace_obj", "replace_rel")
CATEGORIES = SWAP_CATEGORIES + REPLACE_CATEGORIES
BACKENDS = ("rules", "spacy")

# CLIP reads 77 BPE tokens, about 60 words of a COCO caption; an edit beyond that would
# be truncated away and leave a "negative" identical to the caption for the model.
MAX_WORDS = 60

# A token is a word, a number or a hyphen/apostrophe compound ("half-eaten", "man's").
_WORD_RE = re.compile(r"[A-Za-z0-9]+(?:[-'\u2019][A-Za-z0-9]+)*")


@dataclass(frozen=True)
class Negative:
    """One hard-negative caption and the category that produced it."""

    text: str
    category: str


# --------------------------------------------------------------------------------------
# Small pure helpers
# --------------------------------------------------------------------------------------


def normalize(text: str) -> str:
    """Comparison key for "the same caption": lower-cased, whitespace collapsed."""
    return " ".join(text.lower().split())


def bag_of_words(text: str) -> collections.Counter:
    """Multiset of lower-cased word tokens; a swap negative keeps it exactly."""
    return collections.Counter(m.group().lower().replace("\u2019", "'") for m in _WORD_RE.finditer(text))


def caption_rng(seed: int, caption: str, salt: object = None) -> random.Random:
    """A random stream that depends only on (seed, [salt,] caption).

    sha256, not ``hash()``: Python salts string hashes per process, which would give
    DataLoader workers (and reruns) different negatives for the same caption. ``salt``
    (e.g. the epoch) lets a collator draw fresh negatives each epoch, still reproducibly.
    """
    key = f"{seed}:{caption}" if salt is None else f"{seed}:{salt}:{caption}"
    return random.Random(int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big"))


def indefinite_article(word: str) -> str:
    """ "a" or "an" for the word that follows the article (by sound, approximately)."""
    w = word.lower()
    if w.startswith(("hour", "honest", "honor", "honour", "heir")) or w in ("suv", "mri", "x-ray", "fbi", "nba", "nfl"):
        return "an"
    if w.startswith(("uni", "use", "usu", "uti", "ura", "uri", "eu", "one", "once", "ewe", "uk")):
        return "a"
    return "an" if w[:1] in ("a", "e", "i", "o", "u") else "a"


def _adjacent_repeats(text: str) -> int:
    """Number of places where a word repeats directly or across "and"/"or"
    ("soccer soccer ball", "brown and brown")."""
    words = _WORD_RE.findall(text)
    direct = sum(1 for a, b in zip(words, words[1:]) if a == b)
    coordinated = sum(1 for a, c, b in zip(words, words[1:], words[2:]) if a == b and c in ("and", "or"))
    return direct + coordinated


def _match_case(template: str, text: str, sentence_start: bool = False, shouting: bool = False) -> str:
    """Give ``text`` the capitalisation of the word it replaces.

    In an all-capitals caption (``shouting``) everything is upper case. Elsewhere an
    all-capitals word is an acronym ("TV") unless it starts the caption: its
    replacement is written in lower case ("radio", not "RADIO").
    """
    if shouting:
        return text.upper()
    if template[:1].isupper() and (sentence_start or not (len(template) > 1 and template.isupper())):
        return text[:1].upper() + text[1:]
    return text


# --------------------------------------------------------------------------------------
# Parsing: tokens -> units (words or multi-word expressions) -> tags -> noun phrases
# --------------------------------------------------------------------------------------


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


# spaCy's universal POS tags -> ours.
_SPACY_POS = {
    "NOUN": "NOUN", "PROPN": "NOUN", "ADJ": "ADJ", "ADV": "ADV", "VERB": "VERB",
    "AUX": "AUX", "ADP": "PREP", "DET": "DET", "NUM": "NUM", "PRON": "PRON",
    "CCONJ": "CONJ", "SCONJ": "CONJ", "PART": "ADV",
}
_SPACY_VFORM = {"VBG": "ing", "VBZ": "3sg", "VBD": "past", "VBN": "past", "VB": "base", "VBP": "base"}


def parse_spacy(nlp: Callable, caption: str) -> Parsed:
    """Tag with a spaCy pipeline instead of the lexicon rules; chunking is shared.

    spaCy splits "man's" into "man" + "'s"; the two are glued back so that units cover
    the same words as the rules backend. Lexicon multi-word expressions keep their
    lexicon tag ("in front of" is one relation whatever the parser says of "front").
    """
    words: list[tuple[int, int, str, str, str]] = []  # start, end, low, pos, fine tag
    for tok in nlp(caption):
        if tok.is_space or tok.is_punct:
            continue
        low = tok.text.lower().replace("\u2019", "'")
        if low == "'s" and words and words[-1][1] == tok.idx:
            start, _, prev_low, _, _ = words[-1]
            words[-1] = (start, tok.idx + len(tok.text), prev_low + "'s", "POSS", "POS")
            continue
        words.append((tok.idx, tok.idx + len(tok.text), low, _SPACY_POS.get(tok.pos_, "UNK"), tok.tag_))
        if len(words) == MAX_WORDS:
            break
    units = []
    for a, b, ntok, low in _merge_multiwords(caption, [(w[0], w[1], w[2]) for w in words]):
        unit = Unit(words[a][0], words[b][1], low, ntok, lx.pos_candidates(low))
        if ntok > 1:
            unit.pos = "NOUN" if low in lx.NOUNS else "PREP"
        else:
            unit.pos = words[a][3]
            if unit.pos == "VERB":
                unit.vform = _SPACY_VFORM.get(words[a][4])
        if unit.pos == "NOUN":
            lexicon_noun = lx.NOUNS.get(low)
            unit.number = lexicon_noun.number if lexicon_noun else ("pl" if words[a][4] in ("NNS", "NNPS") else "sg")
        units.append(unit)
    return _finish(caption, units)


# --------------------------------------------------------------------------------------
# Building one negative: edits on character spans
# --------------------------------------------------------------------------------------


def _apply_edits(caption: str, edits: Sequence[tuple[int, int, str]]) -> str:
    """Replace disjoint character spans (sorted by start) in one pass."""
    out, pos = [], 0
    for start, end, text in edits:
        if start < pos:
            raise ValueError(f"overlapping edits in {caption!r}: {edits}")
        out.append(caption[pos:start])
        out.append(text)
        pos = end
    out.append(caption[pos:])
    return "".join(out)


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
    text = _apply_edits(caption, edits)
    if bag_of_words(text) != bag_of_words(caption):
        return None
    return text


def replace_span(parsed: Parsed, first: int, last: int, new: str) -> str:
    """Replace unit range ``first..last`` by ``new`` (lexicon-cased to match), fixing "a"/"an"."""
    units, caption = parsed.units, parsed.caption
    start, end = units[first].start, units[last].end
    new = _match_case(caption[start:end], new, first == 0, caption.isupper())
    return _apply_edits(caption, [_with_article(parsed, first, start, end, new)])


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


def _phrases_linked(parsed: Parsed, p: int, q: int) -> bool:
    """Coordinated phrases, or two halves of one phrase ("a large body | of | water")."""
    first, second = sorted((p, q))
    lo, hi = parsed.phrases[first].last, parsed.phrases[second].first
    return _linked(parsed, lo, hi, skip_phrases=True) or _between(parsed, lo, hi, skip_phrases=False) == "of"


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


_INDEFINITE = frozenset({"a", "an", "one", "another", "each", "every"})


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
        text = swap_spans(parsed, (u, u), (v, v))
        if text is not None:
            yield text


_NON_CONTENT_ADJECTIVES = frozenset("other another same different various several only main".split())


def _swap_adjectives(parsed: Parsed, rng: random.Random) -> Iterator[str]:
    units = parsed.units
    # Adjectives inside a noun phrase or after a verb ("is red", "wearing red"); one
    # right after a noun ("a bowl full of food") would not survive the move.
    slots = [
        i for i, u in enumerate(units)
        if u.pos == "ADJ" and u.low not in _NON_CONTENT_ADJECTIVES and u.low not in lx.DIRECTION_ANTONYMS
        and (parsed.phrase_of[i] is not None or (i > 0 and units[i - 1].pos in ("AUX", "VERB")))
    ]
    for u, v in _pairs(slots, rng):
        if units[u].low == units[v].low:
            continue
        p, q = parsed.phrase_of[u], parsed.phrase_of[v]
        if p is not None and q is not None:
            # Same phrase: "a big red car" -> "a red big car" means the same.
            if p == q or _phrases_linked(parsed, p, q):
                continue
        elif _linked(parsed, u, v, skip_phrases=False):
            continue
        text = swap_spans(parsed, (u, u), (v, v))
        if text is not None:
            yield text


def _swap_adverbs(parsed: Parsed, rng: random.Random) -> Iterator[str]:
    units = parsed.units
    slots = [
        i for i, u in enumerate(units)
        if u.pos == "ADV" and u.low not in lx.NON_CONTENT_ADVERBS and u.low not in lx.PARTICLES
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


def _attribute_options(parsed: Parsed, i: int, present: set[str]) -> list[str]:
    unit = parsed.units[i]
    if unit.pos == "NUM" and lx.NUMBER_WORDS.get(unit.low, 0) >= 2:
        return [w for w in lx.REPLACEABLE_COUNTS if w != unit.low]
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
                          options_for: Callable[[Parsed, int, set[str]], list[str]]) -> Iterator[str]:
    """One-word replacements: every replaceable slot's options shuffled, slots interleaved
    in random order, so the first K negatives edit different words where possible."""
    present = _present_concepts(parsed)
    slots, options = [], []
    for i in range(len(parsed.units)):
        choices = options_for(parsed, i, present)
        if choices:
            rng.shuffle(choices)
            slots.append(i)
            options.append(choices)
    order = list(range(len(slots)))
    rng.shuffle(order)
    for slot, word in _interleave([options[o] for o in order]):
        i = slots[order[slot]]
        yield replace_span(parsed, i, i, word)


def _replace_attributes(parsed: Parsed, rng: random.Random) -> Iterator[str]:
    return _replace_single_words(parsed, rng, _attribute_options)


def _object_options(unit: Unit, present: set[str]) -> list[str]:
    info = lx.NOUNS.get(unit.low)
    if unit.pos != "NOUN" or info is None or info.cls not in lx.REPLACEABLE_NOUN_CLASSES:
        return []
    pool = lx.NOUN_POOLS.get((info.cls, unit.number), ())  # the unit's: "sheep" may be plural
    return [word for concept, word in pool if concept not in present]


def _replace_objects(parsed: Parsed, rng: random.Random) -> Iterator[str]:
    present = _present_concepts(parsed)
    slots, options = [], []
    # Heads only: a replaced compound modifier ("tomato sauce" -> "pie sauce") rarely
    # names a thing that could be in the image.
    heads = sorted(h for phrase in parsed.phrases for h in phrase.heads)
    for i in heads:
        unit = parsed.units[i]
        choices = _object_options(unit, present)
        if choices:
            rng.shuffle(choices)
            slots.append(i)
            options.append(choices)
    order = list(range(len(slots)))
    rng.shuffle(order)
    for slot, word in _interleave([options[o] for o in order]):
        i = slots[order[slot]]
        yield replace_span(parsed, i, i, word)


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
        return [lx.DIRECTION_ANTONYMS[unit.low]]
    if unit.pos == "PREP" and unit.low in lx.RELATIONS:
        concept = lx.RELATIONS[unit.low]
        if concept in lx.EXCLUSIVE_RELATION_PAIRS:
            return list(lx.EXCLUSIVE_RELATION_PAIRS[concept])
        if concept in ("left", "right"):
            return [_RELATION_TARGETS["right" if concept == "left" else "left"]]
        if concept in lx.NON_REPLACEABLE_RELATIONS:
            return []
        return [
            phrase for target, phrase in _RELATION_TARGETS.items()
            if target != concept and frozenset((target, concept)) not in lx.CONFUSABLE_RELATIONS
        ]
    info = lx.VERBS.get(unit.low)
    if unit.pos != "VERB" or info is None or info.concept in lx.PARTICLE_VERBS or info.form == "past":
        return []
    # Keep transitivity: "sitting on" -> "standing on", "holding a cup" -> "throwing a cup".
    nxt = parsed.units[i + 1] if i + 1 < len(parsed.units) else None
    takes_object = nxt is not None and nxt.pos in ("DET", "NUM", "POSS", "ADJ", "NOUN", "PRON")
    if takes_object == (info.cls in _INTRANSITIVE_VERB_CLASSES):
        return []
    return [word for concept, word in lx.VERB_POOLS.get((info.cls, info.form), ()) if concept not in present]


def _replace_relations(parsed: Parsed, rng: random.Random) -> Iterator[str]:
    return _replace_single_words(parsed, rng, _relation_options)


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


# --------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------


class HardNegativeGenerator:
    """Makes up to ``k`` hard-negative captions per caption; see the module docstring.

    Args:
        seed: with the caption, fixes the negatives (same seed + caption -> same output).
        categories: preferred categories (default: all of ``CATEGORIES``); others are
            used only as a fallback when these give fewer than ``k``.
        backend: "rules" (shipped lexicon, no download) or "spacy" (spaCy's tagger;
            needs ``spacy`` and the ``spacy_model`` package installed).
        spacy_model: the spaCy pipeline to load for ``backend="spacy"``.

    ``stats`` counts, over all calls: ``captions``, ``negatives``, ``category/<name>``,
    ``fallback/other_category`` (negatives from a non-preferred category),
    ``shortfall/captions`` and ``shortfall/negatives`` (captions left short of ``k``
    and how many negatives they miss), ``complete/preferred`` (captions that got ``k``
    from preferred categories alone). See :func:`format_report`.
    """

    def __init__(
        self,
        seed: int = 2025,
        categories: Sequence[str] | None = None,
        backend: str = "rules",
        spacy_model: str = "en_core_web_sm",
    ):
        preferred = tuple(CATEGORIES if categories is None else categories)
        unknown = [c for c in preferred if c not in CATEGORIES]
        if unknown or not preferred:
            raise ValueError(f"unknown or empty categories {unknown or preferred}; choose from {CATEGORIES}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.seed = seed
        self.categories = preferred
        self.fallback_categories = tuple(c for c in CATEGORIES if c not in preferred)
        self.backend = backend
        self.spacy_model = spacy_model
        self._nlp = _load_spacy(spacy_model) if backend == "spacy" else None
        self.stats: collections.Counter = collections.Counter()

    def parse(self, caption: str) -> Parsed:
        """Tag and chunk ``caption`` with this generator's backend."""
        if self._nlp is not None:
            return parse_spacy(self._nlp, caption)
        return parse_rules(caption)

    def generate(self, caption: str, k: int, salt: object = None) -> list[Negative]:
        """Up to ``k`` distinct valid negatives for ``caption`` (fewer only on shortfall).

        ``salt`` (e.g. the epoch) is mixed into the seed; ``None`` keeps the plain
        (seed, caption) determinism.
        """
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        rng = caption_rng(self.seed, caption, salt)
        parsed = self.parse(caption)
        chosen: list[Negative] = []
        seen = {normalize(caption)}
        self._draw(parsed, self.categories, k, rng, chosen, seen)
        preferred_count = len(chosen)
        if len(chosen) < k and self.fallback_categories:
            self._draw(parsed, self.fallback_categories, k, rng, chosen, seen)
        self._count(chosen, preferred_count, k)
        return chosen

    def __call__(self, caption: str, k: int, salt: object = None) -> list[str]:
        """Texts only; see :meth:`generate`."""
        return [negative.text for negative in self.generate(caption, k, salt)]

    def _draw(self, parsed, categories, k, rng, chosen, seen) -> None:
        """Round-robin over ``categories`` in a random order, one valid negative per turn."""
        order = list(categories)
        rng.shuffle(order)
        repeats = _adjacent_repeats(normalize(parsed.caption))
        # Generators are created lazily: a category's candidates are only built when
        # its turn comes, which keeps the common case (k small) fast.
        streams = {category: _GENERATORS[category](parsed, rng) for category in order}
        while len(chosen) < k and order:
            for category in list(order):
                if len(chosen) >= k:
                    break
                text = self._next_valid(streams[category], seen, repeats)
                if text is None:
                    order.remove(category)
                    continue
                chosen.append(Negative(text, category))
                seen.add(normalize(text))

    @staticmethod
    def _next_valid(stream: Iterator[str], seen: set[str], caption_repeats: int) -> str | None:
        """The stream's next text that is non-empty, new, and adds no doubled word.

        swap_spans already keeps the bag of words of swaps. A doubled word ("a soccer
        soccer ball") is a text-only giveaway, so such candidates are skipped.
        """
        for text in stream:
            key = normalize(text)
            if key and key not in seen and _adjacent_repeats(key) <= caption_repeats:
                return text
        return None

    def _count(self, chosen: list[Negative], preferred_count: int, k: int) -> None:
        stats = self.stats
        stats["captions"] += 1
        stats["negatives"] += len(chosen)
        for negative in chosen:
            stats[f"category/{negative.category}"] += 1
        stats["fallback/other_category"] += len(chosen) - preferred_count
        if preferred_count >= k:
            stats["complete/preferred"] += 1
        if len(chosen) < k:
            stats["shortfall/captions"] += 1
            stats["shortfall/negatives"] += k - len(chosen)


def _load_spacy(model: str):
    """Load a spaCy pipeline, or say exactly how to install what is missing."""
    if importlib.util.find_spec("spacy") is None:
        raise ImportError(
            "backend='spacy' needs spaCy and an English pipeline, which are not installed. "
            f"Install them with `pip install spacy && python -m spacy download {model}`, "
            "or use backend='rules' (no download needed)."
        )
    import spacy

    # An installed package name ("en_core_web_sm") or a local pipeline folder.
    if not spacy.util.is_package(model) and not Path(model).is_dir():
        raise ImportError(
            f"backend='spacy' needs the spaCy pipeline {model!r}, which is not installed. "
            f"Install it with `python -m spacy download {model}`, or use backend='rules'."
        )
    # The parser and NER are not used: tagging is all the swap logic needs.
    return spacy.load(model, disable=["parser", "ner", "lemmatizer"])


# --------------------------------------------------------------------------------------
# Batch-level fallback and reporting
# --------------------------------------------------------------------------------------


def fill_shortfall(
    negatives_per_caption: list[list[str]],
    anchors: list[str],
    k: int,
    rng: random.Random,
    groups: Sequence[Hashable] | None = None,
) -> list[list[str]]:
    """Top every caption up to ``k`` negatives with texts from the rest of the batch.

    The last step of the fallback, for the collator: other captions' negatives first
    (each is false of its own image, and is a fluent caption), then the other anchors
    themselves. A text equal (normalised) to the caption's own anchor or to one of its
    negatives is never picked. ``groups`` (e.g. image ids) marks anchors that describe
    the same image: those are never used as each other's negatives, since they are
    true of it. Returns new lists; the input is not modified. When the whole batch
    cannot supply enough distinct texts, a list stays shorter than ``k``.
    """
    if len(negatives_per_caption) != len(anchors):
        raise ValueError(f"{len(negatives_per_caption)} negative lists for {len(anchors)} anchors")
    if groups is None:
        groups = range(len(anchors))
    elif len(groups) != len(anchors):
        raise ValueError(f"{len(groups)} groups for {len(anchors)} anchors")
    out = []
    for i, (own, anchor) in enumerate(zip(negatives_per_caption, anchors)):
        filled = list(own)
        if len(filled) < k:
            seen = {normalize(anchor)} | {normalize(t) for t in filled}
            others = [t for j, negs in enumerate(negatives_per_caption) if j != i for t in negs]
            rng.shuffle(others)
            other_anchors = [a for j, a in enumerate(anchors) if groups[j] != groups[i]]
            rng.shuffle(other_anchors)
            for text in others + other_anchors:
                if len(filled) >= k:
                    break
                key = normalize(text)
                if key and key not in seen:
                    filled.append(text)
                    seen.add(key)
        out.append(filled)
    return out


def format_report(stats: collections.Counter, k: int) -> str:
    """Human-readable summary of a generator's ``stats`` (counts by category, fallbacks)."""
    captions = stats["captions"]
    negatives = stats["negatives"]
    complete = captions - stats["shortfall/captions"]
    lines = [
        f"captions: {captions}   negatives: {negatives}   k: {k}",
        "negatives by category:",
    ]
    for category in CATEGORIES:
        count = stats[f"category/{category}"]
        share = 100.0 * count / negatives if negatives else 0.0
        lines.append(f"  {category:<14} {count:>8}  ({share:5.1f}%)")

    def pct(n: int) -> float:
        return 100.0 * n / captions if captions else 0.0

    lines += [
        f"fallback to another category: {stats['fallback/other_category']} negatives",
        f"shortfall: {stats['shortfall/captions']} captions missing {stats['shortfall/negatives']} negatives "
        "(left to the batch-level fill_shortfall)",
    ]
    if "fallback/other_caption" in stats:  # set by callers that ran fill_shortfall
        lines += [
            f"fallback to another caption's negative: {stats['fallback/other_caption']} negatives; "
            f"captions still short after it: {stats['shortfall/after_batch_fill']}",
        ]
    lines += [
        f"captions with >= {k} negatives from the preferred categories: {stats['complete/preferred']} "
        f"({pct(stats['complete/preferred']):.2f}%)",
        f"captions with >= {k} negatives without another caption's negative: {complete} ({pct(complete):.2f}%)",
    ]
    return "\n".join(lines)
