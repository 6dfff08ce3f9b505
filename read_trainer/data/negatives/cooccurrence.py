"""What real captions mention together: the statistics behind the plausibility filter.

A replacement can be well formed and still describe a scene no photo shows ("a train ...
in a fancy restaurant", "a frisbee floats towards the catcher", "a recliner gazing out to
the ocean"). Such a negative is rejected from the text alone, so it teaches plausibility,
not grounding. Human captions say which things are seen together: this module counts, over
the human captions of the annotation files shipped in ``read_trainer/evaluation/annotations``,
how many captions mention each pair of lexicon concepts (nouns and verbs), and which
attribute words describe which nouns.

The counts are built once (:func:`build`, from ``benchmarks/negatives_quality.py
cooccurrence``) and shipped as ``cooccurrence.json`` beside this file, with their
provenance: the sources, and the captions held out of them (the hard-negative quality set,
every caption of the same images included), so that the filter is never measured on
captions it was built from. :func:`load` reads them once per process (~30 ms).
"""

from __future__ import annotations

import collections
import functools
import hashlib
import itertools
import json
import re
from pathlib import Path
from typing import Iterable

from .. import lexicon as lx
from .parsing import Parsed, parse_rules

DATA = Path(__file__).with_name("cooccurrence.json")

# The human captions of the shipped annotation files (file glob, caption fields, image
# field). Generated texts (SugarCrepe's and VALSE's negatives), VALSE's templated counting
# and existence captions and its rewritten plurals captions are left out.
SOURCES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("sugarcrepe/*.json", ("caption",), "filename"),
    ("sugarcrepe_pp/*.json", ("caption", "caption2"), "filename"),
    ("valse/foil-it.json", ("caption",), "image_file"),
    ("valse/relations.json", ("caption",), "image_file"),
    ("valse/coreference-hard.json", ("only_caption",), "image_file"),
    ("valse/coreference-standard.json", ("only_caption",), "image_file"),
    ("valse/actant-swap.json", ("caption",), "image_file"),
    ("valse/action-replacement.json", ("caption",), "image_file"),
)


def normalize_caption(text: str) -> str:
    """Words only, lower-cased: one caption written with or without its final period is one caption."""
    return " ".join(re.findall(r"[\w']+", text.lower()))


def image_key(file_name: str) -> str:
    """One key per image across sources: COCO file names of any split ("COCO_val2014_
    000000165831.jpg", "000000165831.jpg") give the COCO id; others stay as they are."""
    match = re.fullmatch(r"(?:COCO_(?:train|val)2014_)?0*(\d+)\.jpg", file_name)
    return f"coco:{match.group(1)}" if match else file_name


def human_captions(annotations: Path) -> list[tuple[str, str]]:
    """(caption, image key) for every human caption of ``SOURCES``, in a fixed order."""
    rows = []
    for pattern, fields, image_field in SOURCES:
        for path in sorted(annotations.glob(pattern)):
            data = json.loads(path.read_text(encoding="utf-8"))
            for row in (data[key] for key in sorted(data)) if isinstance(data, dict) else data:
                for field in fields:
                    rows.append((row[field], image_key(row[image_field])))
    return rows


def concepts(parsed: Parsed) -> dict[int, str]:
    """Unit index -> concept of every lexicon noun ("n:dog") and verb ("v:ride")."""
    out = {}
    for i, unit in enumerate(parsed.units):
        if unit.pos == "NOUN" and unit.low in lx.NOUNS:
            out[i] = "n:" + lx.NOUNS[unit.low].concept
        elif unit.pos == "VERB" and unit.low in lx.VERBS:
            out[i] = "v:" + lx.VERBS[unit.low].concept
    return out


def _modifier_pairs(parsed: Parsed) -> Iterable[tuple[str, str]]:
    """(attribute concept, noun concept) for each colour/material/... word before its noun."""
    units = parsed.units
    for phrase in parsed.phrases:
        nouns = [h for h in range(phrase.first, phrase.last + 1) if units[h].pos == "NOUN" and units[h].low in lx.NOUNS]
        for m in range(phrase.first, phrase.last + 1):
            low = units[m].low
            head = next((h for h in nouns if h > m), None)
            if units[m].pos == "ADJ" and low in lx.ATTRIBUTES and head is not None:
                yield lx.ATTRIBUTES[low][1], lx.NOUNS[units[head].low].concept


_NOT_COMPOUND_TAGS = frozenset({"DET", "NUM", "POSS", "PRON", "AUX", "CONJ", "PREP"})


def compound_key(first: str, second: str) -> str:
    """"dump trucks" and "dump truck" are one compound: lexicon nouns in their singular form."""
    return " ".join((lx.NOUNS[w].singular or w) if w in lx.NOUNS else w for w in (first, second))


def _compound_candidates(parsed: Parsed) -> Iterable[str]:
    """Adjacent word pairs that may be a compound: a content word (not a colour, material,
    size or count) right before a noun, or a noun right before another content word."""
    units = parsed.units
    for a, b in zip(units, units[1:]):
        if parsed.caption[a.end:b.start] != " " or a.pos in _NOT_COMPOUND_TAGS or b.pos in _NOT_COMPOUND_TAGS:
            continue
        if a.low in lx.ATTRIBUTES or a.low in lx.ANTONYMS:
            continue
        if b.pos == "NOUN" or (a.pos == "NOUN" and b.pos == "UNK"):
            yield compound_key(a.low, b.low)


def _unknown_heads(parsed: Parsed) -> Iterable[str]:
    """Unknown words that end a phrase after a determiner, number or adjective ("the
    engine"): nouns. A word never seen so ("commercial", "bends") is no noun."""
    units = parsed.units
    for phrase in parsed.phrases:
        last = units[phrase.last]
        if last.pos == "UNK" and phrase.last > phrase.first and units[phrase.last - 1].pos in ("DET", "NUM", "ADJ", "POSS"):
            yield last.low


def build(annotations: Path, held_out: Iterable[str]) -> dict:
    """Counts over the human captions of ``annotations``, leaving out every caption in
    ``held_out`` and every caption of an image one of them describes."""
    rows = human_captions(annotations)
    held = {normalize_caption(c) for c in held_out}
    held_images = {image for caption, image in rows if normalize_caption(caption) in held}
    seen: set[str] = set()
    documents = 0
    unigrams: collections.Counter = collections.Counter()
    pairs: collections.Counter = collections.Counter()
    modifiers: collections.Counter = collections.Counter()
    bigrams: collections.Counter = collections.Counter()
    unknown_seen: collections.Counter = collections.Counter()
    unknown_heads: collections.Counter = collections.Counter()
    for caption, image in rows:
        key = normalize_caption(caption)
        if key in held or image in held_images or key in seen:
            continue
        seen.add(key)
        parsed = parse_rules(caption)
        found = sorted(set(concepts(parsed).values()))
        documents += 1
        unigrams.update(found)
        pairs.update(f"{a}|{b}" for a, b in itertools.combinations(found, 2))
        modifiers.update(f"{a}|{n}" for a, n in set(_modifier_pairs(parsed)))
        unknown_seen.update(u.low for u in parsed.units if u.pos == "UNK")
        unknown_heads.update(_unknown_heads(parsed))
        bigrams.update(set(_compound_candidates(parsed)))
    digest = hashlib.sha256("\n".join(sorted(held)).encode()).hexdigest()
    return {
        "provenance": {
            "built_by": "python benchmarks/negatives_quality.py cooccurrence",
            "sources": [pattern for pattern, _, _ in SOURCES],
            "captions": documents,
            "held_out_captions": len(held),
            "held_out_images": len(held_images),
            "held_out_sha256": digest,
        },
        "concepts": dict(sorted(unigrams.items())),
        "pairs": dict(sorted(pairs.items())),
        "modifiers": dict(sorted(modifiers.items())),
        # Words the lexicon does not know, seen at least twice: [captions, times a phrase's head].
        "unknown_words": {w: [n, unknown_heads[w]] for w, n in sorted(unknown_seen.items()) if n >= 2},
        # Two words written together in at least two captions, the second a noun: "dump truck",
        # "cake stand", "christmas tree" (nouns in their singular form).
        "compounds": sorted(pair for pair, n in bigrams.items() if n >= 2),
    }


def write(stats: dict, path: Path = DATA) -> None:
    path.write_text(json.dumps(stats, separators=(",", ":"), sort_keys=False) + "\n", encoding="utf-8")


class Cooccurrence:
    """Counts of captions mentioning a concept, a pair of concepts, an attribute on a noun."""

    def __init__(self, stats: dict):
        self.provenance = stats["provenance"]
        self.unigrams: dict[str, int] = stats["concepts"]
        self.pairs: dict[str, int] = stats["pairs"]
        # concept -> {other concept: captions mentioning both}, for fast sums over a context.
        self.neighbours: dict[str, dict[str, int]] = collections.defaultdict(dict)
        for key, n in self.pairs.items():
            a, b = key.split("|")
            self.neighbours[a][b] = self.neighbours[b][a] = n
        self.modifiers: dict[str, int] = stats["modifiers"]
        self.unknown_words: dict[str, list[int]] = stats["unknown_words"]
        self.compounds: frozenset[str] = frozenset(stats["compounds"])

    def count(self, a: str) -> int:
        return self.unigrams.get(a, 0)

    def pair(self, a: str, b: str) -> int:
        if a == b:
            return self.unigrams.get(a, 0)
        return self.neighbours.get(a, {}).get(b, 0)

    def modifier(self, attribute: str, noun: str) -> int:
        return self.modifiers.get(f"{attribute}|{noun}", 0)

    def never_a_noun(self, word: str) -> bool:
        """Whether an unknown word was seen in several captions and never as a noun (never
        ending a phrase after a determiner or adjective): "commercial", "bends", "jumbo"."""
        seen, heads = self.unknown_words.get(word, (0, 0))
        return seen >= 3 and heads == 0

    def compound(self, first: str, second: str) -> bool:
        """Whether real captions write the two words together as one name ("dump truck")."""
        return compound_key(first, second) in self.compounds


def context_weight(stats: Cooccurrence, context: list[str], noun: str) -> float:
    """How strongly real captions tie lexicon noun ``noun`` to ``context`` (concepts of the
    caption's other words): captions mentioning both, summed over the context, relative to
    the noun's own frequency (to the 1/4 power: frequent nouns are not preferred for being
    frequent), squared so that the order follows it closely. Measured on labelled object
    replacements: a garbled one scores lower than a valid one 69% of the time (AUC 0.69)."""
    concept = "n:" + lx.NOUNS[noun].concept
    seen_with = stats.neighbours.get(concept, {})
    together = sum(stats.unigrams.get(c, 0) if c == concept else seen_with.get(c, 0) for c in context)
    return ((1.0 + together) / (1.0 + stats.unigrams.get(concept, 0)) ** 0.25) ** 2


@functools.lru_cache(maxsize=1)
def load(path: Path = DATA) -> Cooccurrence:
    """The shipped statistics (read once per process)."""
    return Cooccurrence(json.loads(path.read_text(encoding="utf-8")))
