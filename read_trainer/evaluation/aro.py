"""ARO (Yuksekgonul et al., 2023): VG-Relation, VG-Attribution, COCO-Order, Flickr30k-Order.

VG-Relation / VG-Attribution (``visual_genome_relation.json`` /
``visual_genome_attribution.json``): lists of ``{image_path, bbox_x, bbox_y, bbox_w,
bbox_h, true_caption, false_caption, relation_name | attributes}``; the image is
``<image_root>/<image_path>`` cropped to the box, as ARO's loader does. ARO reports
the mean over relations (attribute pairs); like ARO, attribute pairs with fewer than
25 samples are left out.

COCO-Order / Flickr30k-Order are built from the Karpathy test captions in BLIP's
format (``coco_karpathy_test.json`` / ``flickr30k_test.json``: ``[{image, caption:
[...]}]``): each caption (lower-cased and cleaned like BLIP's ``pre_caption``) is the
positive against four word-order perturbations. ARO draws those with spaCy POS tags
and unseeded RNGs; here the RNG is seeded, so numbers are reproducible, and the tagger
is an argument (spaCy ``en_core_web_sm`` by default) so it can be swapped or tested.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Callable, Sequence

from . import rules
from .items import Benchmark, Item, first, image_file, require_file

ARO_HINT = "ARO's annotation JSONs and the VG crops' images (vgr_vga_images) come from the ARO project " \
           "(mertyg/vision-language-models-are-bows on GitHub)"
ORDER_HINT = "COCO-Order / Flickr30k-Order use BLIP's Karpathy test annotation files (coco_karpathy_test.json, " \
             "flickr30k_test.json from the BLIP project) and the COCO 2014 / Flickr30k images"

# (token, Penn Treebank tag) pairs for a sentence.
Tagger = Callable[[str], Sequence[tuple[str, str]]]
NOUN_TAGS = {"NN", "NNS", "NNP", "NNPS"}
ADJ_TAGS = {"JJ", "JJR", "JJS"}


def _read(path: Path, hint: str) -> list:
    with open(require_file(path, "annotation file", hint), encoding="utf-8") as f:
        return json.load(f)


def _box(row: dict) -> tuple[float, float, float, float]:
    return (row["bbox_x"], row["bbox_y"], row["bbox_x"] + row["bbox_w"], row["bbox_y"] + row["bbox_h"])


def _vg_items(rows: list, image_root: Path, subset_of: Callable[[dict], str], limit: int | None,
              min_count: int) -> dict[str, list[Item]]:
    by_subset: dict[str, list[tuple[int, dict]]] = {}
    for i, row in enumerate(rows):
        by_subset.setdefault(subset_of(row), []).append((i, row))
    data = {}
    for subset in sorted(by_subset):
        if len(by_subset[subset]) < min_count:
            continue
        data[subset] = []
        for i, row in first(by_subset[subset], limit):
            image = image_file(image_root, row["image_path"], "ARO image", ARO_HINT, box=_box(row))
            data[subset].append(Item(str(i), (row["true_caption"], row["false_caption"]), (image,)))
    return data


def load_aro_vg_relation(annotation_dir: str | Path, image_root: str | Path, limit: int | None = None) -> Benchmark:
    """VG-Relation: true vs swapped relation caption on the relation's box; macro over relations."""
    rows = _read(Path(annotation_dir) / "visual_genome_relation.json", ARO_HINT)
    data = _vg_items(rows, Path(image_root), lambda r: r["relation_name"], limit, min_count=0)
    return Benchmark("aro_vg_relation", data, rules.positive_beats_all, averaging="macro",
                     description="ARO VG-Relation: macro mean over relations")


def load_aro_vg_attribution(annotation_dir: str | Path, image_root: str | Path, limit: int | None = None,
                            min_count: int = 25) -> Benchmark:
    """VG-Attribution: true vs swapped attributes; macro over attribute pairs with >= ``min_count`` samples."""
    rows = _read(Path(annotation_dir) / "visual_genome_attribution.json", ARO_HINT)
    data = _vg_items(rows, Path(image_root), lambda r: "_".join(r["attributes"][:2]), limit, min_count)
    return Benchmark("aro_vg_attribution", data, rules.positive_beats_all, averaging="macro",
                     description=f"ARO VG-Attribution: macro mean over attribute pairs with >= {min_count} samples")


def pre_caption(caption: str, max_words: int = 30) -> str:
    """BLIP's caption cleaning, which ARO applies to the positive and every perturbation."""
    caption = re.sub(r"([.!\"()*#:;~])", " ", caption.lower())
    caption = re.sub(r"\s{2,}", " ", caption).rstrip("\n").strip(" ")
    return " ".join(caption.split(" ")[:max_words])


def _trigrams(tokens: list[str]) -> list[list[str]]:
    return [tokens[i:i + 3] for i in range(0, len(tokens), 3)]


def _shuffle_positions(tokens: list[str], positions: list[int], rng: random.Random) -> list[str]:
    out = list(tokens)
    values = [tokens[i] for i in positions]
    rng.shuffle(values)
    for i, v in zip(positions, values):
        out[i] = v
    return out


def order_perturbations(caption: str, tagger: Tagger, rng: random.Random) -> list[str]:
    """ARO's four negatives: shuffle nouns and adjectives (each among themselves), shuffle all
    but nouns and adjectives, shuffle within trigrams, shuffle the trigrams."""
    tagged = list(tagger(caption))
    tokens = [t for t, _ in tagged]
    nouns = [i for i, (_, tag) in enumerate(tagged) if tag in NOUN_TAGS]
    adjs = [i for i, (_, tag) in enumerate(tagged) if tag in ADJ_TAGS]
    others = [i for i, (_, tag) in enumerate(tagged) if tag not in NOUN_TAGS | ADJ_TAGS]
    nouns_adj = _shuffle_positions(_shuffle_positions(tokens, nouns, rng), adjs, rng)
    allbut = _shuffle_positions(tokens, others, rng)
    within = [w for tri in _trigrams(tokens) for w in rng.sample(tri, len(tri))]
    trigrams = _trigrams(tokens)
    rng.shuffle(trigrams)
    across = [w for tri in trigrams for w in tri]
    return [" ".join(x) for x in (nouns_adj, allbut, within, across)]


def spacy_tagger(model: str = "en_core_web_sm") -> Tagger:
    """spaCy POS tagging, as ARO uses; an ImportError/OSError names what to install."""
    import spacy  # optional dependency: only the Order tasks need it

    nlp = spacy.load(model)
    return lambda text: [(t.text, t.tag_) for t in nlp(text)]


def load_aro_order(annotation_file: str | Path, image_root: str | Path, name: str = "aro_coco_order",
                   tagger: Tagger | None = None, seed: int = 0, max_words: int = 30,
                   limit: int | None = None) -> Benchmark:
    """COCO-Order / Flickr30k-Order: the clean caption beats its four shuffles (micro precision@1)."""
    rows = first(_read(Path(annotation_file), ORDER_HINT), limit)
    tagger = tagger or spacy_tagger()
    rng = random.Random(seed)
    items = []
    for i, row in enumerate(rows):
        image = image_file(image_root, row["image"], f"{name} image", ORDER_HINT)
        for j, caption in enumerate(row["caption"]):
            texts = [pre_caption(caption, max_words)]
            texts += [pre_caption(p, max_words) for p in order_perturbations(caption, tagger, rng)]
            items.append(Item(f"{i}/{j}", tuple(texts), (image,)))
    return Benchmark(name, {"test": items}, rules.positive_beats_all, averaging="micro",
                     description="ARO order: caption vs four word-order perturbations")
