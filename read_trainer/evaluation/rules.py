"""Decision rules: which similarities must beat which, as each benchmark's paper defines it.

Every rule is a conjunction of strict comparisons ``a > b``. ``decide`` turns such a
list into one outcome:

- ``"correct"`` when every comparison holds strictly;
- ``"wrong"`` when any comparison fails (``a < b``);
- ``"tie"`` otherwise: nothing fails but some ``a == b``.

A tie is never counted as correct (a model that maps the positive and a negative to
the same embedding has not told them apart), and it is counted separately so reports
can show how often it happens. Rules work on plain Python floats so they can be tested
on hand-built numbers and reused by the ``evaluate`` metric module unchanged.

The one exception is the READ harness's protocol (``protocol.py``): its multiple-choice
benchmarks take ``argmax(similarities) == 0``, and an argmax returns the *first* maximum, so a
positive tied with the best negative is credited. ``positive_first_max`` reproduces that and
marks such an item ``"tie_credited"``: counted as correct, and still reported as a tie.
"""

from __future__ import annotations

from typing import Iterable

from .items import ItemScores

CORRECT, TIE, WRONG = "correct", "tie", "wrong"
TIE_CREDITED = "tie_credited"  # a tie the READ harness's first-maximum argmax counts for the positive
COUNTED_CORRECT = (CORRECT, TIE_CREDITED)
COUNTED_TIE = (TIE, TIE_CREDITED)


def decide(comparisons: Iterable[tuple[float, float]]) -> str:
    """Outcome of "every ``better`` > its ``worse``" (see the module docstring)."""
    tied = False
    for better, worse in comparisons:
        if better < worse:
            return WRONG
        if better == worse:
            tied = True
    return TIE if tied else CORRECT


def positive_beats_all(scores: ItemScores) -> dict[str, str]:
    """One image, texts = [positive, *negatives]: s(I, pos) > s(I, neg) for every negative.

    SugarCrepe, VALSE, WhatsUp, CREPE, ARO: the reference evaluators take the argmax and
    call it right when it is the positive; with strict ``>`` a tied argmax is not a win.
    """
    row = scores.image_text[0]
    return {"accuracy": decide((row[0], neg) for neg in row[1:])}


def positive_first_max(scores: ItemScores) -> dict[str, str]:
    """The READ harness's rule for the same items: ``argmax([s(I,pos), s(I,neg)...]) == 0``.

    torch's argmax returns the first maximum, so a positive tied with the best negative wins:
    the outcome is ``"tie_credited"`` (correct, and still counted as a tie). A strictly
    better negative is wrong, as under ``positive_beats_all``.
    """
    outcome = positive_beats_all(scores)["accuracy"]
    return {"accuracy": TIE_CREDITED if outcome == TIE else outcome}


def sugarcrepe_pp_itt(scores: ItemScores) -> dict[str, str]:
    """Image-to-text, texts = [p1, p2, n]: s(I,p1) > s(I,n) and s(I,p2) > s(I,n)."""
    p1, p2, n = scores.image_text[0]
    return {"accuracy": decide([(p1, n), (p2, n)])}


def sugarcrepe_pp_tot(scores: ItemScores) -> dict[str, str]:
    """Text-only, texts = [p1, p2, n]: s(p1,p2) > s(p1,n) and s(p1,p2) > s(p2,n)."""
    t = scores.text_text
    return {"accuracy": decide([(t[0][1], t[0][2]), (t[0][1], t[1][2])])}


def winoground(scores: ItemScores) -> dict[str, str]:
    """Images [i0, i1], texts [c0, c1]; ``s[i][c]`` = image_text.

    text: each image prefers its own caption; image: each caption prefers its own
    image; group: both (Thrush et al., 2022).
    """
    s = scores.image_text
    text = [(s[0][0], s[0][1]), (s[1][1], s[1][0])]
    image = [(s[0][0], s[1][0]), (s[1][1], s[0][1])]
    return {"text": decide(text), "image": decide(image), "group": decide(text + image)}
