"""Offline hard-negative captions: NegCLIP-style swaps and SugarCrepe-style replacements.

READ's contrastive loss scores each image against its caption *and* K hard-negative
captions that reuse the caption's words but say something false about the image. This
package makes them from the caption alone, with word lists the package ships
(:mod:`read_trainer.data.lexicon`), so it needs no model download and runs in a
DataLoader collator (well under a millisecond per caption).

Modules: ``text`` (tokens, comparison key, the per-caption random stream), ``parsing``
(the rules backend: tagging and noun-phrase chunking), ``edits`` (the swaps and
replacements of each category, as edits on character spans), ``checks`` (whether a
candidate fits its caption), ``number`` (count negatives: the subject's number with its
verb and article), ``fit`` (what fits what: noun kinds, attributes, verbs,
relations), ``context`` (roles of words: subject, object, landmark, compounds),
``cooccurrence`` (what real captions mention together, shipped as ``cooccurrence.json``) and
``generators`` (:class:`HardNegativeGenerator` with the rules or spaCy backend, the
batch-level :func:`fill_shortfall`, :func:`format_report`). Every public name is
importable from ``read_trainer.data.negatives``.

Categories
----------
Swaps (NegCLIP): the negative has exactly the caption's bag of words.

* ``swap_noun``     two nouns of different noun phrases ("a dog on a couch" -> "a couch on a dog")
* ``swap_adj``      two adjectives of different noun phrases
* ``swap_adv``      two adverbs
* ``swap_np``       two noun phrases with their modifiers
* ``swap_relation`` two relations: verbs with their particle ("looks at") or prepositions

Replacements (SugarCrepe):

* ``replace_att``   an attribute by another of its kind (colour, material, size, count, ...),
                    or the subject's number ("a dog runs" -> "two dogs run")
* ``replace_obj``   an object noun by another of its class, keeping number, fixing "a"/"an"
* ``replace_rel``   a spatial preposition or a verb by another of its kind

Guarantees
----------
* Deterministic per (seed, caption): the random streams are seeded from
  ``sha256(f"{seed}:{caption}")`` (the category order) and from seed, caption and category
  (one stream per category, so a change to one category's candidates leaves the others'
  draws alone), never from Python's salted ``hash()``; a caption gets the same negatives in
  every process, worker and call order (for a given ``k``, category set and backend, which
  shape the draw).
* No negative is empty or equal to its caption (compared lower-cased with whitespace
  collapsed), no two of one caption's negatives are equal, the two spans of a swap never
  overlap, and text outside the edited spans (case, punctuation, spacing) is untouched.
* Noun swaps between coordinated phrases ("a cat and a dog") or across a symmetric verb
  or relation ("talking to", "next to") are refused: they would give a caption that still
  describes the image, a false negative. Attributes may swap across them when the two
  things differ ("a red car next to a blue truck"), never within one phrase ("red and
  white") or between two things of one kind.
* A negative must be wrong, not broken (``checks``): a swap moves each noun into the
  other's roles (subject, object, landmark, located thing) and is made only if each fits
  them ("a dog chasing a cat" -> "a cat chasing a dog", never "a horse riding a man");
  replacements only by another thing of the same kind that fits its colour words, verb,
  relation and context ("a gray cat" never becomes "a gray giraffe", "eating grass" never
  "eating gravel"), never by a synonym, hypernym or overlapping word ("girl" -> "child",
  "kitchen" -> "room"). A caption the checks leave with fewer than K negatives is left
  short rather than given a garbled one. The checks act after the random draws, so every
  negative that passes is the one drawn before them. Object replacements are drawn in an
  order weighted by how often real captions mention them with the caption's other words
  (``cooccurrence``). Measured against negatives labelled by reading them:
  docs/hard-negatives.md.

Fallback when a caption allows fewer than K negatives
-----------------------------------------------------
1. The preferred categories (``categories``; all by default) are drawn in tiers of
   measured precision (``edits.TIERS``): swaps, attribute/count and object replacements
   round-robin (the swap categories first, the method's own negatives; each in a
   per-caption random order), then relation replacements, the least reliable, only for
   what the first tier cannot fill. K negatives come from different categories when the
   caption allows it, and from repeated categories otherwise.
2. Still short: categories outside the preferred set are tried (counted as
   ``fallback/other_category``).
3. Still short: :meth:`HardNegativeGenerator.generate` returns what is possible and
   counts the shortfall; the collator then calls :func:`fill_shortfall`, which tops the
   caption up with other captions' negatives (and captions) from the same batch.
"""

from .edits import CATEGORIES, REPLACE_CATEGORIES, SWAP_CATEGORIES, replace_span, swap_spans
from .generators import BACKENDS, HardNegativeGenerator, Negative, fill_shortfall, format_report, parse_spacy
from .parsing import Parsed, Phrase, Unit, parse_rules
from .text import MAX_WORDS, bag_of_words, caption_rng, indefinite_article, normalize

__all__ = [
    "BACKENDS", "CATEGORIES", "MAX_WORDS", "REPLACE_CATEGORIES", "SWAP_CATEGORIES", "HardNegativeGenerator",
    "Negative", "Parsed", "Phrase", "Unit", "bag_of_words", "caption_rng", "fill_shortfall", "format_report",
    "indefinite_article", "normalize", "parse_rules", "parse_spacy", "replace_span", "swap_spans",
]
