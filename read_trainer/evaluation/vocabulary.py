"""How much of a benchmark's text a model's tokenizer knows as whole words.

A tokenizer learnt on a small corpus (the demo's, trained on the synthetic world's few
hundred words) splits almost every word of real captions ("skateboard", "giraffe") into
characters: the model then scores strings it never saw, and its accuracy says nothing
about composition. ``run_suite`` warns when most words are out of vocabulary.
"""

from __future__ import annotations

import logging
import re
from typing import Iterable

logger = logging.getLogger(__name__)

WORD = re.compile(r"[a-z]+")
# Real CLIP's 49k-token vocabulary holds nearly every caption word whole; a tokenizer that
# misses this share of the words was not trained for this text.
WARN_ABOVE = 0.3


def out_of_vocabulary_fraction(tokenizer, texts: Iterable[str]) -> float:
    """Share of word occurrences in ``texts`` that ``tokenizer`` cannot write as one known token."""
    counts: dict[str, int] = {}
    for text in texts:
        for word in WORD.findall(text.lower()):
            counts[word] = counts.get(word, 0) + 1
    if not counts:
        return 0.0
    unk = getattr(tokenizer, "unk_token", None)
    missing = 0
    for word, n in counts.items():
        pieces = tokenizer.tokenize(word)
        if len(pieces) != 1 or pieces[0] == unk:
            missing += n
    return missing / sum(counts.values())


def warn_if_out_of_vocabulary(tokenizer, texts: list[str], threshold: float = WARN_ABOVE) -> float | None:
    """Log a warning (and return the fraction) when more than ``threshold`` of the words are unknown."""
    if tokenizer is None or not texts:
        return None
    fraction = out_of_vocabulary_fraction(tokenizer, texts)
    if fraction > threshold:
        logger.warning(
            "%.0f%% of the benchmark's words are not whole tokens of this model's tokenizer (%d words in its "
            "vocabulary): it was trained on other text (e.g. the demo's synthetic world), so these scores do not "
            "measure composition. Evaluate a model trained on real captions.", 100 * fraction, len(tokenizer))
    return fraction
