"""Text utilities shared by the parser, the span edits and the generators.

Tokenising, the comparison key of "the same caption", the per-caption random stream,
articles and capitalisation.
"""

from __future__ import annotations

import collections
import random
import re

from ..rows import sha256_rng

# CLIP reads 77 BPE tokens, about 60 words of a COCO caption; an edit beyond that would
# be truncated away and leave a "negative" identical to the caption for the model.
MAX_WORDS = 60

# A token is a word, a number or a hyphen/apostrophe compound ("half-eaten", "man's").
_WORD_RE = re.compile(r"[A-Za-z0-9]+(?:[-'\u2019][A-Za-z0-9]+)*")


def normalize(text: str) -> str:
    """Comparison key for "the same caption": lower-cased, whitespace collapsed."""
    return " ".join(text.lower().split())


def bag_of_words(text: str) -> collections.Counter:
    """Multiset of lower-cased word tokens; a swap negative keeps it exactly."""
    return collections.Counter(m.group().lower().replace("\u2019", "'") for m in _WORD_RE.finditer(text))


def apply_edits(caption: str, edits) -> str:
    """Replace disjoint character spans ``(start, end, text)``, sorted by start, in one
    pass (``start == end`` inserts)."""
    out, pos = [], 0
    for start, end, text in edits:
        if start < pos:
            raise ValueError(f"overlapping edits in {caption!r}: {edits}")
        out.append(caption[pos:start])
        out.append(text)
        pos = end
    out.append(caption[pos:])
    return "".join(out)


def caption_rng(seed: int, caption: str, salt: object = None) -> random.Random:
    """A random stream that depends only on (seed, [salt,] caption).

    sha256, not ``hash()``: Python salts string hashes per process, which would give
    DataLoader workers (and reruns) different negatives for the same caption. ``salt``
    (e.g. the epoch) lets a collator draw fresh negatives each epoch, still reproducibly.
    """
    key = f"{seed}:{caption}" if salt is None else f"{seed}:{salt}:{caption}"
    # Big-endian, unlike the row streams: this byte order fixes every negative already
    # generated (shipped sidecar files, the demo world), so it is kept.
    return sha256_rng(key, byteorder="big")


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
