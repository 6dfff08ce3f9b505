"""Texts of the synthetic world: caption templates, their meaning, a truth checker, paraphrases
and SugarCrepe-style false captions.

A caption is a tuple of *clauses* joined by ", and ". A clause is one template filled with
noun phrases (NPs) and, for relation templates, a relation. Its *meaning* is a set of atoms:

    ("exists", np)                 some object matches np
    ("rel", np_a, relation, np_b)  an object matching np_a is <relation> of a different one matching np_b

with ``right``/``below`` rewritten as ``left``/``above`` (arguments swapped), so
"a cube right of a sphere" and "a sphere left of a cube" mean the same thing. An NP is
(size or None, colour or None, shape); the article ("a"/"the") carries no meaning.

The same template strings are used both ways: :func:`render_caption` fills them, and
:func:`parse_caption` matches text against regexes compiled from them. The truth checker
(:func:`caption_is_true`) reads *text* only, so tests can verify every stored caption,
paraphrase and negative independently of how the generator built it.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import combinations

from .scenes import COLOURS, OPPOSITE, RELATIONS, SHAPES, SIZES, Scene, relation_holds, true_relations

# Synonyms for each relation; a paraphrase may pick another one.
REL_PHRASES: dict[str, tuple[str, ...]] = {
    "left": ("to the left of", "left of", "on the left side of"),
    "right": ("to the right of", "right of", "on the right side of"),
    "above": ("above", "over", "higher than"),
    "below": ("below", "under", "beneath", "lower than"),
}
# Where an object is relative to the other one in a pair ("... the cube is on the left").
SIDES: dict[str, str] = {"left": "on the left", "right": "on the right", "above": "at the top", "below": "at the bottom"}

# The SugarCrepe categories a world false caption can have (a world caption has no add_* edit).
FALSE_CAPTION_CATEGORIES: tuple[str, ...] = ("swap_att", "swap_obj", "replace_att", "replace_obj", "replace_rel")
CLAUSE_JOIN = ", and "

# Templates by kind. Slots: {X} {Y} {Z} noun phrases, {R} a relation phrase, {S}/{So} the
# side of X / of Y, {A} an anaphor (a bare shape naming one of X, Y).
# "exist": k NPs, each just exists. "rel": X <rel> Y. "side": same, told by sides.
# "anaphor": "X and Y, the <A> is <side>": the NP whose shape is A is <rel> of the other.
EXIST_TEMPLATES: dict[int, tuple[str, ...]] = {
    1: ("{X}", "there is {X}", "a photo of {X}", "a picture of {X}", "an image of {X}",
        "{X} in the picture", "we can see {X}", "a picture showing {X}"),
    2: ("{X} and {Y}", "there is {X} and {Y}", "a photo of {X} and {Y}", "{X} together with {Y}",
        "a picture showing {X} and {Y}"),
    3: ("{X}, {Y} and {Z}", "there is {X}, {Y} and {Z}", "a photo of {X}, {Y} and {Z}",
        "a picture showing {X}, {Y} and {Z}"),
}
# Only ever a second clause ("..., and there is also a green star").
ALSO_TEMPLATE = "there is also {X}"
# What a second clause about one more object may say (a photo-of phrase mid-sentence reads wrong).
SECOND_EXIST_TEMPLATES: tuple[str, ...] = (ALSO_TEMPLATE, "there is {X}", "we can see {X}")
REL_TEMPLATES: tuple[str, ...] = (
    "{X} {R} {Y}", "{X} is {R} {Y}", "there is {X} {R} {Y}", "a photo of {X} {R} {Y}",
    "{R} {Y} there is {X}", "{Y} with {X} {R} it", "we can see {X} {R} {Y}", "{X} sits {R} {Y}",
)
SIDE_TEMPLATE = "{X} {S} and {Y} {So}"
ANAPHOR_TEMPLATE = "{X} and {Y}, the {A} is {S}"


def template_kind(template: str) -> str:
    if template == SIDE_TEMPLATE:
        return "side"
    if template == ANAPHOR_TEMPLATE:
        return "anaphor"
    if template in REL_TEMPLATES:
        return "rel"
    return "exist"


@dataclass(frozen=True)
class NP:
    """A noun phrase: ``a [size] [colour] shape``. ``None`` attributes are not mentioned."""

    shape: str
    colour: str | None = None
    size: str | None = None
    article: str = "a"

    @property
    def key(self) -> tuple[str | None, str | None, str]:
        """What the NP means (the article is only discourse)."""
        return (self.size, self.colour, self.shape)

    def text(self) -> str:
        return " ".join(w for w in (self.article, self.size, self.colour, self.shape) if w)


@dataclass(frozen=True)
class Clause:
    """One filled template. ``rel`` is X's relation to Y (for the anaphor template: the
    referent's relation to the other NP); ``phrase`` picks the synonym in ``REL_PHRASES``."""

    template: str
    nps: tuple[NP, ...]
    rel: str | None = None
    phrase: int = 0
    anaphor: str | None = None

    @property
    def kind(self) -> str:
        return template_kind(self.template)


Caption = tuple[Clause, ...]
Atom = tuple


# ----------------------------------------------------------------------------- rendering


def render_clause(clause: Clause) -> str:
    slots = {name: np.text() for name, np in zip("XYZ", clause.nps)}
    if clause.rel is not None:
        phrases = REL_PHRASES[clause.rel]
        slots["R"] = phrases[clause.phrase % len(phrases)]
        slots["S"] = SIDES[clause.rel]
        slots["So"] = SIDES[OPPOSITE[clause.rel]]
    if clause.anaphor is not None:
        slots["A"] = clause.anaphor
    return clause.template.format(**slots)


def render_caption(caption: Caption) -> str:
    return CLAUSE_JOIN.join(render_clause(c) for c in caption)


# ----------------------------------------------------------------------------- meaning


def canonical_rel(a: tuple, relation: str, b: tuple) -> Atom:
    """Write "a right of b" as "b left of a" (and below as above) so equal meanings compare equal."""
    if relation in ("right", "below"):
        return ("rel", b, OPPOSITE[relation], a)
    return ("rel", a, relation, b)


def clause_meaning(clause: Clause) -> frozenset[Atom]:
    kind = clause.kind
    if kind == "exist":
        return frozenset(("exists", np.key) for np in clause.nps)
    x, y = clause.nps
    if kind == "anaphor":
        referents = [np for np in clause.nps if np.shape == clause.anaphor]
        if len(referents) != 1:
            raise ValueError(f"anaphor 'the {clause.anaphor}' must name exactly one of two different shapes")
        x, y = (x, y) if referents[0] is x else (y, x)
    return frozenset({canonical_rel(x.key, clause.rel, y.key)})


def caption_meaning(caption: Caption) -> frozenset[Atom]:
    return frozenset().union(*(clause_meaning(c) for c in caption))


def _matches(obj, key: tuple) -> bool:
    size, colour, shape = key
    return obj.shape == shape and colour in (None, obj.colour) and size in (None, obj.size)


def atom_is_true(atom: Atom, scene: Scene) -> bool:
    if atom[0] == "exists":
        return any(_matches(o, atom[1]) for o in scene.objects)
    _, a, relation, b = atom
    return any(o1 is not o2 and _matches(o1, a) and _matches(o2, b)
               and relation_holds(o1, relation, o2, scene.image_size)
               for o1 in scene.objects for o2 in scene.objects)


def meaning_is_true(meaning: frozenset[Atom], scene: Scene) -> bool:
    return all(atom_is_true(a, scene) for a in meaning)


# ----------------------------------------------------------------------------- parsing

_ALT = lambda words: "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))  # noqa: E731
_PHRASE_TO_REL = {p: r for r, ps in REL_PHRASES.items() for p in ps}
_SIDE_TO_REL = {s: r for r, s in SIDES.items()}


def _np_regex(name: str) -> str:
    return (rf"(?P<{name}_art>a|the) (?:(?P<{name}_size>{_ALT(SIZES)}) )?"
            rf"(?:(?P<{name}_colour>{_ALT(COLOURS)}) )?(?P<{name}_shape>{_ALT(SHAPES)})")


def all_templates() -> list[str]:
    return [t for k in sorted(EXIST_TEMPLATES) for t in EXIST_TEMPLATES[k]] + [
        ALSO_TEMPLATE, *REL_TEMPLATES, SIDE_TEMPLATE, ANAPHOR_TEMPLATE]


@lru_cache(maxsize=None)
def _compiled_templates() -> tuple[tuple[str, re.Pattern], ...]:
    slot_regex = {
        "X": _np_regex("X"), "Y": _np_regex("Y"), "Z": _np_regex("Z"),
        "R": rf"(?P<R>{_ALT(_PHRASE_TO_REL)})", "S": rf"(?P<S>{_ALT(_SIDE_TO_REL)})",
        "So": rf"(?P<So>{_ALT(_SIDE_TO_REL)})", "A": rf"(?P<A>{_ALT(SHAPES)})",
    }
    compiled = []
    for template in all_templates():
        pieces = re.split(r"\{(\w+)\}", template)  # literal, slot, literal, slot, ...
        regex = "".join(re.escape(p) if i % 2 == 0 else slot_regex[p] for i, p in enumerate(pieces))
        compiled.append((template, re.compile(regex)))
    return tuple(compiled)


def _clause_from_match(template: str, m: re.Match) -> Clause:
    groups = m.groupdict()
    nps = tuple(NP(groups[f"{n}_shape"], groups[f"{n}_colour"], groups[f"{n}_size"], groups[f"{n}_art"])
                for n in "XYZ" if groups.get(f"{n}_shape"))
    kind = template_kind(template)
    rel = None
    if kind == "rel":
        rel = _PHRASE_TO_REL[groups["R"]]
    elif kind in ("side", "anaphor"):
        rel = _SIDE_TO_REL[groups["S"]]
        if kind == "side" and groups["So"] != SIDES[OPPOSITE[rel]]:
            raise ValueError(f"contradictory sides: {m.group(0)!r}")
    return Clause(template, nps, rel, 0, groups.get("A"))


def parse_clause(text: str) -> Clause:
    """Recognise one clause. Raises ``ValueError`` for text no world template produces."""
    found = [_clause_from_match(t, m) for t, rx in _compiled_templates() if (m := rx.fullmatch(text))]
    if not found:
        raise ValueError(f"not a world caption clause: {text!r}")
    meanings = {clause_meaning(c) for c in found}
    if len(meanings) != 1:  # the template set must stay unambiguous; this guards against edits
        raise ValueError(f"ambiguous clause {text!r}: {meanings}")
    return found[0]


def parse_caption(text: str) -> Caption:
    return tuple(parse_clause(part) for part in text.split(CLAUSE_JOIN))


def caption_to_meaning(text: str) -> frozenset[Atom]:
    """The meaning of a caption given as text (see the module docstring)."""
    return caption_meaning(parse_caption(text))


def caption_is_true(text: str, scene: Scene | str | dict) -> bool:
    """The truth checker: does caption ``text`` (from the world's templates) hold in ``scene``?

    ``scene`` may be a :class:`Scene` or its JSON (the dataset's ``scene`` column).
    """
    if not isinstance(scene, Scene):
        scene = Scene.from_json(scene)
    return meaning_is_true(caption_to_meaning(text), scene)


def caption_pairs(text: str) -> set[tuple[str, str]]:
    """The (colour, shape) combinations a caption mentions (for the held-out-pairs checks)."""
    return {(np.colour, np.shape) for c in parse_caption(text) for np in c.nps if np.colour}


def world_vocabulary() -> list[str]:
    """Every word any world text can contain, sorted (the full word list for tokenizers)."""
    words = set(COLOURS) | set(SHAPES) | set(SIZES) | {"a", "the", "and", ","}
    for text in [*all_templates(), *SIDES.values(), *(p for ps in REL_PHRASES.values() for p in ps)]:
        words.update(re.sub(r"\{\w+\}", " ", text).replace(",", " , ").split())
    return sorted(words)


# ----------------------------------------------------------------------------- generation


def _np(obj, rng: random.Random, size_prob: float = 0.35) -> NP:
    return NP(obj.shape, obj.colour, obj.size if rng.random() < size_prob else None)


def relation_clause(rng: random.Random, x: NP, relation: str, y: NP, second: bool = False) -> Clause:
    """A random wording of "x <relation> y": any relation template, synonym or argument order.

    ``second``: the clause follows ", and "; the "X and Y, the cube is ..." form would then
    read as a run-on list, so it is kept for first clauses.
    """
    if rng.random() < 0.4:  # say it the other way round: "y <opposite> x"
        x, relation, y = y, OPPOSITE[relation], x
    templates = list(REL_TEMPLATES) + [SIDE_TEMPLATE]
    if x.shape != y.shape and not second:  # "the cube" must name exactly one of the two
        templates.append(ANAPHOR_TEMPLATE)
    template = rng.choice(templates)
    phrase = rng.randrange(len(REL_PHRASES[relation]))
    if template != ANAPHOR_TEMPLATE:
        return Clause(template, (x, y), relation, phrase)
    if rng.random() < 0.5:  # "the <y shape> is <side>" describes y's position instead
        return Clause(template, (x, y), OPPOSITE[relation], phrase, y.shape)
    return Clause(template, (x, y), relation, phrase, x.shape)


def exist_clause(rng: random.Random, nps: tuple[NP, ...], second: bool = False) -> Clause:
    templates = SECOND_EXIST_TEMPLATES if second and len(nps) == 1 else EXIST_TEMPLATES[len(nps)]
    return Clause(rng.choice(templates), nps)


def with_articles(caption: Caption) -> Caption:
    """Use "the" for an NP already mentioned in an earlier clause, "a" otherwise."""
    seen: set[tuple] = set()
    out = []
    for clause in caption:
        nps = tuple(replace(np, article="the" if np.key in seen else "a") for np in clause.nps)
        seen.update(np.key for np in clause.nps)
        out.append(replace(clause, nps=nps))
    return tuple(out)


def _random_fact(rng: random.Random, scene: Scene, a, b) -> tuple[NP, str, NP]:
    return _np(a, rng), rng.choice(true_relations(a, b, scene.image_size)), _np(b, rng)


def random_caption(rng: random.Random, scene: Scene) -> Caption:
    """One true caption: a relation between two objects (most often), a list of objects, or
    (3 objects) a relation plus a second clause about the third object."""
    objs = scene.objects
    if len(objs) == 1:
        return with_articles((exist_clause(rng, (_np(objs[0], rng),)),))
    u = rng.random()
    if u < 0.15:
        chosen = rng.sample(objs, len(objs))
        return with_articles((exist_clause(rng, tuple(_np(o, rng) for o in chosen)),))
    a, b = rng.sample(objs, 2)
    first = relation_clause(rng, *_random_fact(rng, scene, a, b))
    if len(objs) == 2 or u < 0.65:
        return with_articles((first,))
    (c,) = [o for o in objs if o is not a and o is not b]
    if rng.random() < 0.5:
        second = exist_clause(rng, (_np(c, rng),), second=True)
    else:  # relate the third object to one already mentioned, reusing its NP ("the blue sphere")
        other = rng.choice((a, b))
        other_np = next(np for np in first.nps if (np.colour, np.shape) == (other.colour, other.shape))
        x, rel, _ = _random_fact(rng, scene, c, other)
        second = relation_clause(rng, x, rel, other_np, second=True)
    return with_articles((first, second))


def paraphrase_clause(rng: random.Random, clause: Clause, second: bool) -> Clause:
    """Same meaning, fresh wording: another template / synonym / argument order."""
    if clause.kind == "exist":
        nps = tuple(rng.sample(clause.nps, len(clause.nps)))
        return exist_clause(rng, nps, second=second)
    (atom,) = clause_meaning(clause)
    _, a, relation, b = atom
    by_key = {np.key: np for np in clause.nps}
    return relation_clause(rng, by_key[a], relation, by_key[b], second=second)


def paraphrase(rng: random.Random, caption: Caption) -> Caption:
    clauses = list(caption)
    if len(clauses) == 2 and clauses[1].template != ALSO_TEMPLATE and rng.random() < 0.5:
        clauses.reverse()
    return with_articles(tuple(paraphrase_clause(rng, c, i > 0) for i, c in enumerate(clauses)))


# ----------------------------------------------------------------------------- false captions
# Each function lists every candidate edit of one SugarCrepe category; the caller shuffles
# them and keeps the first that is false for the scene. Swaps exchange two words inside one
# clause, so the multiset of words never changes.


def _edit_np(caption: Caption, ci: int, ni: int, **changes) -> Caption:
    clause = caption[ci]
    old = clause.nps[ni]
    nps = list(clause.nps)
    nps[ni] = replace(old, **changes)
    anaphor = clause.anaphor
    if anaphor == old.shape and "shape" in changes:  # keep "the <shape>" pointing at the edited NP
        anaphor = changes["shape"]
    return caption[:ci] + (replace(clause, nps=tuple(nps), anaphor=anaphor),) + caption[ci + 1:]


def _swap_nps(caption: Caption, ci: int, i: int, j: int, field: str) -> Caption:
    clause = caption[ci]
    nps = list(clause.nps)
    vi, vj = getattr(nps[i], field), getattr(nps[j], field)
    nps[i], nps[j] = replace(nps[i], **{field: vj}), replace(nps[j], **{field: vi})
    return caption[:ci] + (replace(clause, nps=tuple(nps)),) + caption[ci + 1:]


def _swap_candidates(caption: Caption, fields: tuple[str, ...]) -> list[Caption]:
    out = []
    for ci, clause in enumerate(caption):
        for i, j in combinations(range(len(clause.nps)), 2):
            for field in fields:
                vi, vj = getattr(clause.nps[i], field), getattr(clause.nps[j], field)
                if vi is not None and vj is not None and vi != vj:
                    out.append(_swap_nps(caption, ci, i, j, field))
    return out


def _replace_att_candidates(caption: Caption) -> list[Caption]:
    out = []
    for ci, clause in enumerate(caption):
        for ni, np in enumerate(clause.nps):
            out += [_edit_np(caption, ci, ni, colour=c) for c in COLOURS if np.colour and c != np.colour]
            if np.size:
                out.append(_edit_np(caption, ci, ni, size=SIZES[1 - SIZES.index(np.size)]))
    return out


def _replace_obj_candidates(caption: Caption, scene: Scene) -> list[Caption]:
    absent = [s for s in SHAPES if s not in {o.shape for o in scene.objects}]
    return [_edit_np(caption, ci, ni, shape=s)
            for ci, clause in enumerate(caption) for ni in range(len(clause.nps)) for s in absent]


def _replace_rel_candidates(caption: Caption) -> list[Caption]:
    return [caption[:ci] + (replace(clause, rel=r),) + caption[ci + 1:]
            for ci, clause in enumerate(caption) if clause.rel is not None
            for r in RELATIONS if r != clause.rel]


def negative_candidates(caption: Caption, category: str, scene: Scene) -> list[Caption]:
    if category == "swap_att":
        return _swap_candidates(caption, ("colour", "size"))
    if category == "swap_obj":
        return _swap_candidates(caption, ("shape",))
    if category == "replace_att":
        return _replace_att_candidates(caption)
    if category == "replace_obj":
        return _replace_obj_candidates(caption, scene)
    if category == "replace_rel":
        return _replace_rel_candidates(caption)
    raise ValueError(f"unknown category {category!r}")


def false_caption(rng: random.Random, caption: Caption, category: str, scene: Scene,
                  allowed_pairs: frozenset[tuple[str, str]]) -> Caption | None:
    """A random edit of ``caption`` in ``category`` that is false for ``scene`` and mentions
    only ``allowed_pairs`` (so train/test negatives never show a held-out combination), or
    ``None`` when the caption admits none (e.g. no two different shapes to swap)."""
    candidates = negative_candidates(caption, category, scene)
    rng.shuffle(candidates)
    for cand in candidates:
        if any((np.colour, np.shape) not in allowed_pairs for c in cand for np in c.nps if np.colour):
            continue
        # The anaphor template needs two different shapes; an edit that breaks this is not a caption.
        if any(c.kind == "anaphor" and len({np.shape for np in c.nps}) != 2 for c in cand):
            continue
        if not meaning_is_true(caption_meaning(cand), scene):
            return cand
    return None
