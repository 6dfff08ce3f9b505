"""Quality of the rule generator's hard negatives, against negatives labelled by reading them.

The labelled set (``benchmarks/negatives_quality/``) holds real captions the generator was
not developed on (its lexicon and rules were tuned on the SugarCrepe positives): COCO-style
captions from the shipped VALSE and SugarCrepe++ annotation files, deduplicated against the
SugarCrepe positives. ``captions.jsonl`` lists them with their split (``dev``, ``dev2``,
``fresh``: captions fixes were made from; ``final``: held out, read only after the last fix,
to measure it) and ``labels.jsonl`` holds every negative that was read, with its label (see
``README.md`` in that folder for the splits and the labelling rules).

``report`` re-generates the negatives of each caption with the generator importable here
(seed 2025, K = 3), looks each one up by its exact text (a text that changed is no longer
labelled) and prints, per category, the rates of ``valid``/``garbled``/``true``/``other``,
and the coverage: the fraction of captions whose K negatives are all labelled valid
(no batch-level fallback counted). Texts without a label are listed, to be read and added.

    python benchmarks/negatives_quality.py                      # every split, then all together
    python benchmarks/negatives_quality.py report --split final
    python benchmarks/negatives_quality.py report --unlabelled new.jsonl   # stubs to label
    PYTHONPATH=/path/to/other/checkout python benchmarks/negatives_quality.py   # another generator

``sample`` rebuilds ``captions.jsonl`` from the shipped annotations (deterministic);
``cooccurrence`` rebuilds the generator's co-occurrence statistics, holding every caption of
``captions.jsonl`` (and of its images) out of them.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent / "negatives_quality"
LABELS = ("valid", "garbled", "true", "other")
SPLITS = ("dev", "dev2", "fresh", "final", "final2", "final3", "final4", "final5")
SEED, K = 2025, 3
# Category families the report groups by.
FAMILIES = {
    "swap_noun": "swaps", "swap_adj": "swaps", "swap_adv": "swaps", "swap_np": "swaps",
    "swap_relation": "swaps", "replace_att": "replace_att", "replace_obj": "replace_obj",
    "replace_rel": "replace_rel",
}


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


# --------------------------------------------------------------------------------------
# The caption sample
# --------------------------------------------------------------------------------------


def _visdial_caption(text: str) -> str:
    """VALSE's coreference rows are "<COCO caption>. <question>? <answer>.": the caption."""
    return text.rsplit("?", 1)[0].rsplit(". ", 1)[0].strip() + "."


def sample_captions(annotations: Path, dev: int, dev2: int, fresh: int, seed: int, final: int = 140,
                    final2: int = 160, final3: int = 200, final4: int = 200, final5: int = 200) -> list[dict]:
    """Eight samples, none equal to a SugarCrepe positive or to another sampled caption
    (compared lower-cased, whitespace collapsed):

    * ``dev``: VALSE FOIL-it captions (COCO val2014), the first the fixes were made from;
    * ``dev2``: VALSE coreference-hard captions (VisDial, COCO-style), first read as a
      fresh sample after the first fixes, then used for a second round of fixes;
    * ``fresh``: SugarCrepe++ ``caption2`` paraphrases (human-checked rewordings of COCO
      val2017 captions), first read after the first two rounds of fixes, then used for a
      third round;
    * ``final``: VALSE relations captions (COCO val2017), held out of everything (the
      co-occurrence statistics included) until read after the last fixes, to measure them
      (then used to tune the fourth version);
    * ``final2``: half VALSE coreference-standard captions (VisDial, COCO-style), half
      SugarCrepe++ ``caption`` originals (COCO val2017), drawn before the fourth version
      was written and held out of everything until read after its last change (then used
      to tune the fifth);
    * ``final3``: a quarter each from VALSE FOIL-it, VALSE relations, VALSE
      coreference-standard and SugarCrepe++ ``caption`` originals, none drawn before, drawn
      before the fifth version was written and held out until read after its last change
      (then used to tune the sixth);
    * ``final4``, ``final5``: the same mix, none drawn before, each drawn before the next
      version was written (the sixth, the seventh) and held out until read after its last
      change; ``final4`` was then used to tune the seventh.

    Each split's draw comes after the previous ones from one random stream, so adding a
    split leaves the earlier ones as they were.
    """
    seen = set()
    for path in sorted((annotations / "sugarcrepe").glob("*.json")):
        seen |= {_norm(row["caption"]) for row in json.loads(path.read_text()).values()}
    positives = set(seen)

    def unseen(captions: list[str]) -> list[str]:
        out = []
        for caption in captions:
            if _norm(caption) not in seen:
                seen.add(_norm(caption))
                out.append(caption)
        return out

    def valse(piece: str, get=lambda row: row["caption"]) -> list[str]:
        rows = json.loads((annotations / "valse" / f"{piece}.json").read_text())
        return [get(rows[key]) for key in sorted(rows)]

    rng = random.Random(seed)
    rows = [{"caption": c, "source": "valse/foil-it", "split": "dev"}
            for c in rng.sample(unseen(valse("foil-it")), dev)]
    hard = unseen(valse("coreference-hard", lambda row: _visdial_caption(row["caption"])))
    rows += [{"caption": c, "source": "valse/coreference-hard", "split": "dev2"}
             for c in rng.sample(hard, min(dev2, len(hard)))]
    paraphrases = [row["caption2"] for path in sorted((annotations / "sugarcrepe_pp").glob("*.json"))
                   for row in json.loads(path.read_text())]
    rows += [{"caption": c, "source": "sugarcrepe_pp/caption2", "split": "fresh"}
             for c in rng.sample(unseen(paraphrases), fresh)]
    rows += [{"caption": c, "source": "valse/relations", "split": "final"}
             for c in rng.sample(unseen(valse("relations")), final)]
    standard = unseen(valse("coreference-standard", lambda row: _visdial_caption(row["caption"])))
    rows += [{"caption": c, "source": "valse/coreference-standard", "split": "final2"}
             for c in rng.sample(standard, final2 // 2)]
    originals = [row["caption"] for path in sorted((annotations / "sugarcrepe_pp").glob("*.json"))
                 for row in json.loads(path.read_text())]
    rows += [{"caption": c, "source": "sugarcrepe_pp/caption", "split": "final2"}
             for c in rng.sample(unseen(originals), final2 - final2 // 2)]
    # The earlier pools were consumed by ``unseen`` (every caption in them marked seen):
    # draw from what no split holds and no SugarCrepe positive equals.
    drawn = {_norm(row["caption"]) for row in rows}

    def undrawn(captions: list[str]) -> list[str]:
        out = []
        for caption in captions:
            if _norm(caption) not in positives and _norm(caption) not in drawn:
                drawn.add(_norm(caption))
                out.append(caption)
        return out

    pools = (("valse/foil-it", valse("foil-it")), ("valse/relations", valse("relations")),
             ("valse/coreference-standard", [_visdial_caption(c) for c in valse("coreference-standard")]),
             ("sugarcrepe_pp/caption", originals))
    for source, pool in pools:
        rows += [{"caption": c, "source": source, "split": "final3"} for c in rng.sample(undrawn(pool), final3 // 4)]
    # ``undrawn`` marked whole pools as drawn; from here only the captions a split holds are.
    for split, size in (("final4", final4), ("final5", final5)):
        rows += _draw_undrawn(rng, pools, rows, positives, split, size)
    return rows


def _draw_undrawn(rng: random.Random, pools, rows: list[dict], positives: set[str], split: str,
                  size: int) -> list[dict]:
    """A quarter of ``size`` from each pool: captions no split holds and no SugarCrepe
    positive equals (one of equal captions within a pool)."""
    out = []
    taken = {_norm(row["caption"]) for row in rows}
    for source, pool in pools:
        candidates = []
        for caption in pool:
            if _norm(caption) not in positives and _norm(caption) not in taken:
                taken.add(_norm(caption))  # within a pool, one of equal captions
                candidates.append(caption)
        picked = rng.sample(candidates, size // 4)
        out += [{"caption": c, "source": source, "split": split} for c in picked]
        taken = {_norm(row["caption"]) for row in rows + out}
    return out


# --------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------


def evaluate(captions: list[dict], labels: list[dict], split: str | None) -> dict:
    """Re-generate and look up labels. Returns counts per family and label, coverage, unlabelled."""
    from read_trainer.data.negatives import HardNegativeGenerator

    by_text = {(row["caption"], row["negative"]): row for row in labels}
    generator = HardNegativeGenerator(seed=SEED)
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    unlabelled, covered, full, rows = [], 0, 0, 0
    for row in captions:
        if split is not None and row["split"] != split:
            continue
        rows += 1
        negatives = generator.generate(row["caption"], K)
        full += len(negatives) == K
        valid = 0
        for negative in negatives:
            label = by_text.get((row["caption"], negative.text))
            name = label["label"] if label else "unlabelled"
            if label is None:
                unlabelled.append({"caption": row["caption"], "negative": negative.text,
                                   "category": negative.category, "label": "", "note": ""})
            for key in {negative.category, FAMILIES[negative.category], "all"}:
                counts[key][name] += 1
            valid += name == "valid"
        covered += valid == K
    return {"captions": rows, "counts": counts, "covered": covered, "full": full, "unlabelled": unlabelled}


def filter_check(labels: list[dict], split_of: dict[str, str], split: str | None) -> dict:
    """How the current generator's rules act as a filter on labelled negatives: a labelled
    text is *kept* if the generator can still make it (among all its candidates, ``k`` =
    1000), *rejected* otherwise. Precision: the share of rejected texts that were labelled
    invalid (garbled or true); recall: the share of invalid texts that are rejected."""
    from read_trainer.data.negatives import HardNegativeGenerator

    generator = HardNegativeGenerator(seed=SEED)
    candidates: dict[str, set[str]] = {}
    table = collections.Counter()
    for row in labels:
        if row["label"] == "other" or (split is not None and split_of.get(row["caption"]) != split):
            continue
        if row["caption"] not in candidates:
            candidates[row["caption"]] = set(generator(row["caption"], 1000))
        kept = row["negative"] in candidates[row["caption"]]
        table[("valid" if row["label"] == "valid" else "invalid", "kept" if kept else "rejected")] += 1
    return table


def format_filter(table: collections.Counter) -> str:
    rejected = table["valid", "rejected"] + table["invalid", "rejected"]
    invalid = table["invalid", "kept"] + table["invalid", "rejected"]
    precision = table["invalid", "rejected"] / rejected if rejected else float("nan")
    recall = table["invalid", "rejected"] / invalid if invalid else float("nan")
    return (f"labelled valid: kept {table['valid', 'kept']}, rejected {table['valid', 'rejected']}; "
            f"labelled garbled/true: kept {table['invalid', 'kept']}, rejected {table['invalid', 'rejected']}; "
            f"rejection precision {precision:.1%}, recall {recall:.1%}")


def kind_rates(labels: list[dict]) -> dict[str, collections.Counter]:
    """Labels of the object replacements that changed one noun, by the lexicon kind of the
    replaced noun (every version's labels together): the evidence for which kinds the
    generator no longer replaces (``checks.UNREPLACED_KINDS``)."""
    from read_trainer.data.negatives import fit, parse_rules

    rates: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for row in labels:
        if row["category"] != "replace_obj" or row["label"] == "other":
            continue
        old = [u.low for u in parse_rules(row["caption"]).units]
        new = [u.low for u in parse_rules(row["negative"]).units]
        changed = [i for i, (a, b) in enumerate(zip(old, new)) if a != b] if len(old) == len(new) else []
        if len(changed) == 1:
            kind = fit.kind_of(old[changed[0]])
            rates[kind.name if kind else "(none)"][row["label"]] += 1
    return rates


def format_kinds(rates: dict[str, collections.Counter]) -> str:
    from read_trainer.data.negatives import fit
    from read_trainer.data.negatives.checks import replaceable_kind

    kinds = {kind.name: kind for kind in fit.KIND_OF.values()}
    lines = [f"{'kind of the replaced noun':<26} {'n':>4} {'garbled':>8} {'true':>5}  (* not replaced any more)"]
    for name, c in sorted(rates.items(), key=lambda item: -item[1]["garbled"] / sum(item[1].values())):
        n = sum(c.values())
        mark = " *" if name in kinds and not replaceable_kind(kinds[name]) else ""
        lines.append(f"{name:<26} {n:>4} {100.0 * c['garbled'] / n:7.0f}% {c['true']:>5}{mark}")
    return "\n".join(lines)


def format_table(result: dict) -> str:
    order = ["swaps", "swap_noun", "swap_adj", "swap_adv", "swap_np", "swap_relation",
             "replace_att", "replace_obj", "replace_rel", "all"]
    lines = [f"{'category':<14} {'n':>5} " + " ".join(f"{name:>8}" for name in (*LABELS, "unlab."))]
    for key in order:
        c = result["counts"].get(key)
        if not c:
            continue
        n = sum(c.values())
        cells = " ".join(f"{100.0 * c[name] / n:7.1f}%" for name in (*LABELS, "unlabelled"))
        indent = "  " if key.startswith("swap_") else ""
        lines.append(f"{indent + key:<14} {n:>5} {cells}")
    rows = result["captions"]
    lines.append(f"captions: {rows}; with {K} negatives from the generator (no batch fallback): "
                 f"{result['full']} ({100.0 * result['full'] / max(rows, 1):.1f}%); "
                 f"with {K} negatives labelled valid: {result['covered']} ({100.0 * result['covered'] / max(rows, 1):.1f}%)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    report = sub.add_parser("report", help="Re-generate and score against the labels (the default).")
    report.add_argument("--split", choices=SPLITS, default=None, help="Default: each split, then all together.")
    report.add_argument("--unlabelled", type=Path, default=None, help="Write the unlabelled negatives here (JSONL).")
    report.add_argument("--filter", action="store_true",
                        help="Also score the generator's rules as a filter on every labelled text.")
    sample = sub.add_parser("sample", help="Rebuild captions.jsonl from the shipped annotations.")
    sample.add_argument("--dev", type=int, default=110)
    sample.add_argument("--dev2", type=int, default=130)
    sample.add_argument("--fresh", type=int, default=120)
    sample.add_argument("--final", type=int, default=140)
    sample.add_argument("--final2", type=int, default=160)
    sample.add_argument("--final3", type=int, default=200)
    sample.add_argument("--final4", type=int, default=200)
    sample.add_argument("--final5", type=int, default=200)
    sample.add_argument("--seed", type=int, default=23)
    sub.add_parser("kinds", help="Labelled object replacements by the kind of the replaced noun (garbled rates).")
    sub.add_parser("cooccurrence", help="Rebuild the generator's co-occurrence statistics from the shipped "
                                         "annotations, holding out every caption of captions.jsonl (and its images).")
    args = parser.parse_args(argv if argv is not None else sys.argv[1:] or ["report"])

    if args.command == "cooccurrence":
        from read_trainer.data.negatives import cooccurrence
        from read_trainer.evaluation.bundled import bundled_data_root

        held_out = [row["caption"] for row in read_jsonl(HERE / "captions.jsonl")]
        stats = cooccurrence.build(bundled_data_root(), held_out)
        cooccurrence.write(stats)
        print(f"wrote {cooccurrence.DATA}: {stats['provenance']}")
        return 0

    if args.command == "sample":
        from read_trainer.evaluation.bundled import bundled_data_root

        rows = sample_captions(bundled_data_root(), args.dev, args.dev2, args.fresh, args.seed, args.final, args.final2, args.final3, args.final4, args.final5)
        with (HERE / "captions.jsonl").open("w", encoding="utf-8") as f:
            f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        print(f"wrote {len(rows)} captions to {HERE / 'captions.jsonl'}")
        return 0

    captions = read_jsonl(HERE / "captions.jsonl")
    labels = read_jsonl(HERE / "labels.jsonl") if (HERE / "labels.jsonl").exists() else []
    if args.command == "kinds":
        print(format_kinds(kind_rates(labels)))
        return 0
    bad = [row for row in labels if row["label"] not in LABELS]
    if bad:
        raise ValueError(f"labels.jsonl: label {bad[0]['label']!r} not one of {LABELS} ({bad[0]['negative']!r})")
    if args.filter:
        split_of = {row["caption"]: row["split"] for row in captions}
        print(f"== rules as a filter (split: {args.split or 'all'})")
        print(format_filter(filter_check(labels, split_of, args.split)))
    unlabelled = []
    for split in ([args.split] if args.split else [*SPLITS, None]):
        result = evaluate(captions, labels, split)
        print(f"== split: {split or 'all'}")
        print(format_table(result))
        unlabelled += result["unlabelled"] if split is not None else []
    if unlabelled:
        print(f"{len(unlabelled)} negatives have no label:")
        for row in unlabelled:
            print(f"  [{row['category']}] {row['caption']!r} -> {row['negative']!r}")
        if args.unlabelled:
            with args.unlabelled.open("w", encoding="utf-8") as f:
                f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in unlabelled)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
