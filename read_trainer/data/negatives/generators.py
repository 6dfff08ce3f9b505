"""HardNegativeGenerator (rules or spaCy backend), the batch-level fill and the report."""

from __future__ import annotations

import collections
import importlib.util
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Hashable, Iterator, Sequence

from .. import lexicon as lx
from .edits import _GENERATORS, CATEGORIES, SWAP_CATEGORIES, TIERS
from .parsing import Parsed, Unit, _finish, _merge_multiwords, parse_rules
from .text import _WORD_RE, MAX_WORDS, _adjacent_repeats, caption_rng, normalize

BACKENDS = ("rules", "spacy")


@dataclass(frozen=True)
class Negative:
    """One hard-negative caption and the category that produced it."""

    text: str
    category: str


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
# The generator
# --------------------------------------------------------------------------------------


class HardNegativeGenerator:
    """Makes up to ``k`` hard-negative captions per caption; see the package docstring.

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

        def stream_rng(category: str) -> random.Random:
            # One stream per category: a change to one category's candidates leaves the
            # draws of the others as they were.
            return caption_rng(self.seed, caption, category if salt is None else f"{salt}/{category}")

        self._draw(parsed, self.categories, k, rng, stream_rng, chosen, seen)
        preferred_count = len(chosen)
        if len(chosen) < k and self.fallback_categories:
            self._draw(parsed, self.fallback_categories, k, rng, stream_rng, chosen, seen)
        self._count(chosen, preferred_count, k)
        return chosen

    def __call__(self, caption: str, k: int, salt: object = None) -> list[str]:
        """Texts only; see :meth:`generate`."""
        return [negative.text for negative in self.generate(caption, k, salt)]

    def _draw(self, parsed, categories, k, rng, stream_rng, chosen, seen) -> None:
        """Tiers of categories in order of measured precision (``edits.TIERS``): the
        swaps (the method's own negatives, NegCLIP-style) with the attribute, count and
        object replacements, then relation replacements. Within a tier
        the categories take turns, one valid negative per turn, in a random order per
        caption (swaps first); a later tier is drawn only when the earlier ones are spent.
        """
        repeats = _adjacent_repeats(normalize(parsed.caption))
        breaks = _breaks(parsed.caption)
        # Streams are created when a category's turn first comes: a category's random
        # stream and candidates are only built if needed, which keeps the common case fast.
        streams: dict[str, Iterator[str]] = {}
        for tier in TIERS:
            swaps = [c for c in categories if c in tier and c in SWAP_CATEGORIES]
            others = [c for c in categories if c in tier and c not in SWAP_CATEGORIES]
            rng.shuffle(swaps)
            rng.shuffle(others)
            order = swaps + others
            while len(chosen) < k and order:
                for category in list(order):
                    if len(chosen) >= k:
                        break
                    if category not in streams:
                        streams[category] = _GENERATORS[category](parsed, stream_rng(category))
                    text = self._next_valid(streams[category], seen, repeats, breaks)
                    if text is None:
                        order.remove(category)
                    else:
                        chosen.append(Negative(text, category))
                        seen.add(normalize(text))

    @staticmethod
    def _next_valid(stream: Iterator[str], seen: set[str], caption_repeats: int, caption_breaks: int) -> str | None:
        """The stream's next text that is non-empty, new, and adds no doubled word or break.

        swap_spans already keeps the bag of words of swaps. A doubled word ("a soccer
        soccer ball") or a broken word sequence ("a smiling an american flag", "three
        four coins", "seen from in") is a text-only giveaway, so such candidates are skipped.
        """
        for text in stream:
            key = normalize(text)
            if key and key not in seen and _adjacent_repeats(key) <= caption_repeats and _breaks(text) <= caption_breaks:
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


_ARTICLE_BLOCKERS = lx.DETERMINERS | frozenset(lx.NUMBER_WORDS)
_DANGLING = lx.PREPOSITIONS - lx.PARTICLES


def _breaks(text: str) -> int:
    """Word sequences that no caption has: an article before another determiner or a
    number ("a the", "an two"), two articles one word apart ("a smiling an american
    flag", "a cut a plate"), two numbers in a row, a preposition at the very end."""
    words = [w.lower() for w in _WORD_RE.findall(text)]
    count = sum(1 for a, c in zip(words, words[2:]) if a in lx.ARTICLES and c in lx.ARTICLES)
    for a, b in zip(words, words[1:]):
        b_number = b in lx.NUMBER_WORDS or b.isdigit()
        if a in lx.ARTICLES and (b in _ARTICLE_BLOCKERS or b.isdigit()):
            count += 1
        elif (a in lx.NUMBER_WORDS or a.isdigit()) and b_number:
            count += 1
    return count + (1 if words and words[-1] in _DANGLING else 0)


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
    themselves. A text equal (after ``normalize``) to the caption's own anchor or to one of its
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
