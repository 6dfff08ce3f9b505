"""`make ablation`: which part of READ does what, on the synthetic world, over several seeds.

    python recipes/ablation.py                       # recipes/demo_world.yaml, seeds 2025 2026 2027
    python recipes/ablation.py --seeds 1 2 --max_steps 100 --ablation_md /tmp/ablation.md
    python recipes/ablation.py --variants NegCLIP READ   # a subset

Variants, all from the same cached base models, with the same data, steps and optimiser
(``recipes/demo_world.yaml`` plus flags); only what ``VARIANT_SETTINGS`` lists changes
("yaml's" = the config's value: λ_rec 0.1, λ_align 0.5, K 3, target random_caption):

==================================  ====  ============  ============  ===================
variant                             K     λ_rec         λ_align       other
==================================  ====  ============  ============  ===================
base                                (no fine-tuning)
CLIP fine-tuning                    0     0             0
CLIP + reconstruction               0     yaml's        0
CLIP + reconstruction λ=1           0     1             0
CLIP + reconstruction of the        0     yaml's        0             target: the anchor
anchor
CLIP + reconstruction of the        0     1             0             target: the anchor
anchor λ=1
NegCLIP                             yaml  0             0
+reconstruction                     yaml  yaml's        0
+reconstruction λ=0.3               yaml  0.3           0
+reconstruction λ=1                 yaml  1             0
+reconstruction of the anchor       yaml  yaml's        0             target: the anchor
+reconstruction of the anchor λ=0.3 yaml  0.3           0             target: the anchor
+reconstruction of the anchor λ=1   yaml  1             0             target: the anchor
+alignment                          yaml  0             yaml's
READ                                yaml  yaml's        yaml's
READ, reconstruction of the anchor  yaml  yaml's        yaml's        target: the anchor
READ, reference alignment           yaml  yaml's        yaml's        paraphrase -> in-batch
                                                                      anchors only
==================================  ====  ============  ============  ===================

The seed changes what fine-tuning draws (the decoder projection's initialisation, batch
order, anchors, negatives); the world and the base models are fixed. Every run also
records its logged losses and, every 100 steps, each loss term's share of the text tower's
gradient norm (``read_trainer.term_gradients``); the frozen decoder itself is probed once
(``read_trainer.demo.reconstruction_probe``). Writes the tables, the comparisons and that
evidence to ``--ablation_md`` and every number to ``<--out>/ablation.json``. Each finished
run is saved under ``<--out>/runs/`` and reused when the script is run again with the same
settings, so an interrupted ablation resumes.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import os
import re
import shlex
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from transformers import TrainerCallback  # noqa: E402

from read_trainer.cli import parse_args_with_config  # noqa: E402
from read_trainer.config import ReadConfig  # noqa: E402
from read_trainer.demo.pipeline import DemoArguments, Stopwatch  # noqa: E402
from read_trainer.term_gradients import TermGradientCallback  # noqa: E402

DEFAULT_CONFIG = Path(__file__).with_name("demo_world.yaml")
YAML = object()  # "the config's value" (recipes/demo_world.yaml unless overridden on the command line)

# Each fine-tuned variant: the config fields it sets. Everything else (data, steps, optimiser,
# K where not set, the reconstruction target where not set) is the config's.
VARIANT_SETTINGS: dict[str, dict] = {
    "CLIP fine-tuning": dict(num_hard_negatives=0, reconstruction_weight=0.0, alignment_weight=0.0),
    "CLIP + reconstruction": dict(num_hard_negatives=0, reconstruction_weight=YAML, alignment_weight=0.0),
    "CLIP + reconstruction λ=1": dict(num_hard_negatives=0, reconstruction_weight=1.0, alignment_weight=0.0),
    "CLIP + reconstruction of the anchor": dict(num_hard_negatives=0, reconstruction_weight=YAML,
                                                alignment_weight=0.0, reconstruction_target="anchor"),
    "CLIP + reconstruction of the anchor λ=1": dict(num_hard_negatives=0, reconstruction_weight=1.0,
                                                    alignment_weight=0.0, reconstruction_target="anchor"),
    "NegCLIP": dict(reconstruction_weight=0.0, alignment_weight=0.0),
    "+reconstruction": dict(reconstruction_weight=YAML, alignment_weight=0.0),
    "+reconstruction λ=0.3": dict(reconstruction_weight=0.3, alignment_weight=0.0),
    "+reconstruction λ=1": dict(reconstruction_weight=1.0, alignment_weight=0.0),
    "+reconstruction of the anchor": dict(reconstruction_weight=YAML, alignment_weight=0.0,
                                          reconstruction_target="anchor"),
    "+reconstruction of the anchor λ=0.3": dict(reconstruction_weight=0.3, alignment_weight=0.0,
                                                reconstruction_target="anchor"),
    "+reconstruction of the anchor λ=1": dict(reconstruction_weight=1.0, alignment_weight=0.0,
                                              reconstruction_target="anchor"),
    "+alignment": dict(reconstruction_weight=0.0, alignment_weight=YAML),
    "READ": dict(reconstruction_weight=YAML, alignment_weight=YAML),
    "READ, reconstruction of the anchor": dict(reconstruction_weight=YAML, alignment_weight=YAML,
                                               reconstruction_target="anchor"),
    "READ, reference alignment": dict(reconstruction_weight=YAML, alignment_weight=YAML,
                                      alignment_include_negatives=False, alignment_symmetric=False),
}
VARIANTS = ("base", *VARIANT_SETTINGS)


@dataclass
class AblationArguments:
    """Flags of the ablation beyond the demo's."""

    seeds: list[int] = field(default_factory=lambda: [2025, 2026, 2027],
                             metadata={"help": "Fine-tuning seeds (one run per variant and seed)."})
    variants: list[str] = field(default_factory=lambda: list(VARIANTS[1:]),
                                metadata={"help": "Fine-tuned variants to run (split them across processes to "
                                                  "run in parallel; a last run with all of them reuses every result)."})
    ablation_md: str = field(default="docs/ablation.md", metadata={"help": "Where to write the markdown table."})
    keep_models: bool = field(default=False, metadata={"help": "Keep every run's exported CLIPModel."})
    probe_limit: int = field(default=300, metadata={"help": "Images per split for the decoder-probe losses."})


def parse(argv: list[str]):
    if not any(a == "--config" or a.startswith("--config=") for a in argv):
        argv = ["--config", str(DEFAULT_CONFIG), *argv]
    if not any(a == "--out" or a.startswith("--out=") for a in argv):
        argv = [*argv, "--out", "outputs/ablation"]
    return parse_args_with_config((AblationArguments, DemoArguments, ReadConfig), argv)


def variant_settings(variant: str, config: ReadConfig) -> dict:
    """The config fields a fine-tuned variant sets, with the config's own values filled in."""
    return {name: getattr(config, name) if value is YAML else value
            for name, value in VARIANT_SETTINGS[variant].items()}


def run_name(variant: str, seed: int) -> str:
    """A file-name-safe name for one run."""
    return re.sub(r"[^A-Za-z0-9]+", "-", variant).strip("-") + f"-{seed}"


def run_key(config: ReadConfig, params: dict, threads: int, base_files: dict[str, str]) -> str:
    """A hash of everything that changes a run's result: the training config, the world, the base models
    and the torch thread count.

    ``base_files``: the SHA-256 of every file of the base CLIP and T5 (``shipped_base.folder_checksums``).
    The config names the base models by path only, and a rebuilt base (e.g. another decoder) lives at
    the same path: without their contents in the key, a saved run of the old base would be reused.
    """
    keep = {k: v for k, v in config.to_dict().items()
            if k not in ("output_dir", "logging_dir", "disable_tqdm", "run_name", "overwrite_output_dir")}
    blob = json.dumps({"config": keep, "world": params, "threads": threads, "base_files": base_files},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


GRADIENT_EVERY = 100  # optimizer steps between per-term gradient measurements (and at steps 0 and the last)


class LossCurve(TrainerCallback):
    """Every logged training loss and its components, by step."""

    def __init__(self):
        self.records: list[dict] = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.records.append({"step": state.global_step,
                                 **{k: v for k, v in logs.items() if k == "loss" or k.startswith("loss/")}})


class ReadMemoryProbe(TrainerCallback):
    """What the fine-tuning taught the text tower about word order, measured on ``split``'s swap items.

    * ``order_separation`` (``reconstruction_probe.order_separation``) before the first step
      and after the last: how far apart the caption and its swap are in the pooled state, in
      the contrastive embedding and, with a decoder, in the decoder's memory;
    * ``result``, for a model with a decoder, after the last step: the order test through
      READ's own memory (``reconstruction_probe.read_memory_order_gap``: the fine-tuned
      text tower's pooled state of the caption and of its swap, through the learned
      projection, read by the frozen decoder).

    No gradients, no random numbers, the model's mode restored, so the run is unchanged.
    """

    def __init__(self, split, clip_path: str, t5_path: str):
        self.split, self.clip_path, self.t5_path = split, clip_path, t5_path
        self.result, self.separation, self._clip_tokenizer = None, {}, None

    def _tokenizer(self):
        if self._clip_tokenizer is None:  # read once, at the first measurement
            from transformers import CLIPProcessor

            self._clip_tokenizer = CLIPProcessor.from_pretrained(self.clip_path).tokenizer
        return self._clip_tokenizer

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        from read_trainer.demo.reconstruction_probe import order_separation

        if model is not None:
            self.separation["before"] = order_separation(model, self._tokenizer(), self.split)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if model is None:
            return
        from transformers import AutoTokenizer

        from read_trainer.demo.reconstruction_probe import order_separation, read_memory_order_gap

        self.separation["after"] = order_separation(model, self._tokenizer(), self.split)
        if getattr(model, "decoder", None) is not None:
            self.result = read_memory_order_gap(model, self._tokenizer(), AutoTokenizer.from_pretrained(self.t5_path),
                                                self.split)


def run_variant(prepared, benchmarks, config: ReadConfig, variant: str, seed: int, out: Path, demo,
                keep_model: bool) -> dict:
    """Fine-tune one (variant, seed) and score it, or load the saved result of an identical run."""
    import shutil

    from read_trainer.demo.pipeline import finetune
    from read_trainer.demo.report import accuracy_table, evaluate_clip
    from read_trainer.demo.shipped_base import folder_checksums

    settings = variant_settings(variant, config)
    # A copy with attributes set, not dataclasses.replace: that would re-run TrainingArguments'
    # __post_init__ on values it has already normalised.
    run_config = copy.deepcopy(config)
    run_config.torch_threads = demo.threads  # the trainer sets them for the run
    updates = dict(settings, seed=seed, model_name_or_path=str(prepared.base.clip),
                   decoder_name_or_path=str(prepared.base.t5), output_dir=str(out / "models" / run_name(variant, seed)),
                   disable_tqdm=not demo.progress, overwrite_output_dir=True)  # a run cut short is redone
    for name, value in updates.items():
        setattr(run_config, name, value)
    # The thread count is part of the key: CPU results are deterministic for a given count, not across counts.
    base_files = folder_checksums({"clip": prepared.base.clip, "t5": prepared.base.t5})
    key = run_key(run_config, prepared.world_params, demo.threads, base_files)
    saved = out / "runs" / f"{run_name(variant, seed)}-{key}.json"
    if saved.exists():
        print(f"[ablation] {variant} seed {seed}: reusing {saved}", flush=True)
        return json.loads(saved.read_text())
    began = time.perf_counter()
    curve, gradients = LossCurve(), TermGradientCallback(every=GRADIENT_EVERY)
    memory_probe = ReadMemoryProbe(prepared.world["test"], str(prepared.base.clip), str(prepared.base.t5))
    exported = finetune(prepared.world["train"], run_config, callbacks=[curve, gradients, memory_probe])
    table = accuracy_table(evaluate_clip(exported, benchmarks, demo.progress, demo.eval_batch_size))
    record = {"variant": variant, "seed": seed, "settings": settings,
              "wall_time_s": round(time.perf_counter() - began, 1), "accuracy": table,
              "loss_curve": curve.records, "term_gradients": gradients.records,
              "read_memory_order_gap": memory_probe.result, "order_separation": memory_probe.separation}
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(record, indent=2))
    if not keep_model:
        shutil.rmtree(exported)
    print(f"[ablation] {variant} seed {seed}: {record['wall_time_s']:.0f}s", flush=True)
    return record


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def main(argv: list[str] | None = None) -> dict:
    from read_trainer.demo.benchmark import load_world_benchmarks
    from read_trainer.demo.pipeline import prepare
    from read_trainer.demo.report import accuracy_table, evaluate_clip, write_json

    ablation, demo, config = parse(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING)
    import torch

    torch.set_num_threads(demo.threads)  # as recipes/demo.py: results depend on the count (DemoArguments.threads)
    out = Path(demo.out)
    watch = Stopwatch("ablation")
    prepared = prepare(demo, watch)
    benchmarks = load_world_benchmarks(prepared.world)

    began = time.perf_counter()
    base_table = accuracy_table(evaluate_clip(prepared.base.clip, benchmarks, demo.progress, demo.eval_batch_size))
    runs = [{"variant": "base", "seed": None, "accuracy": base_table}]
    unknown = set(ablation.variants) - set(VARIANTS[1:])
    if unknown:
        raise ValueError(f"unknown variant(s) {sorted(unknown)}; choose from {VARIANTS[1:]}")
    for variant in [v for v in VARIANTS[1:] if v in ablation.variants]:
        for seed in ablation.seeds:
            runs.append(run_variant(prepared, benchmarks, config, variant, seed, out, demo, ablation.keep_models))
    watch.stage("fine-tuning and scoring", began)

    summary = summarize(runs)
    comparison = compare(summary, "READ", "NegCLIP") if {"READ", "NegCLIP"} <= set(summary) else {}
    comparisons = {f"{better} vs {worse}": compare(summary, better, worse, SWAP_CELLS)
                   for better, worse in COMPARISONS if {better, worse} <= set(summary)}
    evidence = reconstruction_evidence(runs)
    probe = None
    if evidence:
        from read_trainer.demo.reconstruction_probe import probe_decoder

        began = time.perf_counter()
        probe = probe_decoder(prepared.base.t5, prepared.world, ablation.probe_limit)
        watch.stage("decoder probe", began)
    command = "python recipes/ablation.py " + shlex.join(sys.argv[1:] if argv is None else argv)  # copy-pastable
    markdown = format_markdown(summary, comparison, config, ablation.seeds, command.strip(), prepared)
    markdown += format_comparisons(comparisons) + format_evidence(evidence, probe) + format_order_separation(runs)
    md_path = Path(ablation.ablation_md)
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(markdown + kept_notes(md_path), encoding="utf-8")
    payload = {"meta": {"world": prepared.world_params, "base_clip": str(prepared.base.clip),
                        "base_t5": str(prepared.base.t5), "seeds": ablation.seeds, "command": command.strip(),
                        "read_config": config.to_dict(), "wall_time_s": {**watch.stages, "total": watch.total},
                        "rule": "accuracy in %; ties count as wrong; macro = plain mean over categories; "
                                "std = sample standard deviation over seeds"},
               "summary": summary, "read_vs_negclip": comparison, "comparisons": comparisons,
               "reconstruction_evidence": evidence, "decoder_probe": probe, "runs": runs}
    write_json(out / "ablation.json", payload)
    print(markdown)
    print(f"[ablation] table: {md_path}; every number: {out / 'ablation.json'}; total {watch.total:.0f}s")
    return payload


NOTES_MARKER = "<!-- notes: kept when recipes/ablation.py rewrites the tables above -->"


def kept_notes(md_path: Path) -> str:
    """The hand-written part of an existing ``--ablation_md``: the marker line and all below it."""
    if not md_path.exists():
        return ""
    text = md_path.read_text(encoding="utf-8")
    return "\n" + text[text.index(NOTES_MARKER):] if NOTES_MARKER in text else ""


# ----------------------------------------------------------------------------- aggregation


def summarize(runs: list[dict]) -> dict:
    """``{variant: {split: {kind: {category: [mean, std, n]}}}}`` over the variant's seeds."""
    by_variant: dict[str, list[dict]] = {}
    for run in runs:
        by_variant.setdefault(run["variant"], []).append(run["accuracy"])
    summary: dict = {}
    for variant, tables in by_variant.items():
        first = tables[0]
        summary[variant] = {
            split: {kind: {cat: [*mean_std([t[split][kind][cat] for t in tables]), len(tables)]
                           for cat in row if cat != "ties"}
                    for kind, row in kinds.items()}
            for split, kinds in first.items()
        }
    return summary


def compare(summary: dict, better: str, worse: str, cells: tuple[str, ...] | None = None) -> dict:
    """Per split and benchmark: the difference of the means and how many standard deviations it spans.

    ``cells=None``: the macro score only, keyed ``split/kind``; otherwise those categories
    (and/or ``"macro"``), keyed ``split/kind/cell``. ``margin_in_std`` divides the
    difference of the means by the larger of the two variants' sample stds, the stricter
    reading of "more than 2 standard deviations".
    """
    out: dict = {}
    for split, kinds in summary[better].items():
        for kind in kinds:
            for cell in cells or ("macro",):
                (m1, s1, _), (m2, s2, _) = summary[better][split][kind][cell], summary[worse][split][kind][cell]
                spread = max(s1, s2)
                key = f"{split}/{kind}" if cells is None else f"{split}/{kind}/{cell}"
                out[key] = {"difference": m1 - m2, "std_" + better: s1, "std_" + worse: s2,
                            "margin_in_std": (m1 - m2) / spread if spread > 0
                            else math.copysign(float("inf"), m1 - m2) if m1 != m2 else 0.0,
                            "more_than_2_std": m1 - m2 > 2 * spread}
    return out


# What isolates each term: (variant, the variant it adds one thing to).
COMPARISONS = (
    ("CLIP + reconstruction", "CLIP fine-tuning"), ("CLIP + reconstruction λ=1", "CLIP fine-tuning"),
    ("CLIP + reconstruction of the anchor", "CLIP fine-tuning"),
    ("CLIP + reconstruction of the anchor λ=1", "CLIP fine-tuning"),
    ("NegCLIP", "CLIP fine-tuning"), ("+reconstruction", "NegCLIP"), ("+reconstruction λ=0.3", "NegCLIP"),
    ("+reconstruction λ=1", "NegCLIP"), ("+reconstruction of the anchor", "NegCLIP"),
    ("+reconstruction of the anchor λ=0.3", "NegCLIP"), ("+reconstruction of the anchor λ=1", "NegCLIP"),
    ("+reconstruction of the anchor", "+reconstruction"), ("+alignment", "NegCLIP"), ("READ", "+alignment"),
    ("READ, reconstruction of the anchor", "+alignment"), ("READ", "NegCLIP"),
)
SWAP_CELLS = ("swap_att", "swap_obj", "macro")


def reconstruction_evidence(runs: list[dict]) -> dict:
    """Per variant with reconstruction: its logged reconstruction loss and the gradient shares, by step,
    and the order test through its memory after training.

    ``{variant: {"reconstruction_loss": {step: [mean, std, n]}, "share/<term>": {step: [...]},
    "cosine/reconstruction_contrastive": {step: [...]}, "read_memory/<target>": {"true_memory_lower":
    [...], "gap_per_token": [...], "loss_given_true": [...]}}}`` over the variant's seeds.
    """
    by_variant: dict[str, list[dict]] = {}
    for run in runs:
        if run.get("term_gradients") and any("share/reconstruction" in r for r in run["term_gradients"]):
            by_variant.setdefault(run["variant"], []).append(run)
    evidence: dict = {}
    for variant, variant_runs in by_variant.items():
        series: dict[str, dict[int, list[float]]] = {}
        for run in variant_runs:
            for point in run["loss_curve"]:
                if "loss/reconstruction" in point:
                    series.setdefault("reconstruction_loss", {}).setdefault(point["step"], []).append(
                        point["loss/reconstruction"])
            for point in run["term_gradients"]:
                for key, value in point.items():
                    if key.startswith(("share/", "cosine/")):
                        series.setdefault(key, {}).setdefault(point["step"], []).append(value)
            for target, gap in ((run.get("read_memory_order_gap") or {}).items()):
                if isinstance(gap, dict):
                    for key in ("true_memory_lower", "gap_per_token", "loss_given_true"):
                        series.setdefault(f"read_memory/{target}", {}).setdefault(key, []).append(gap[key])
        evidence[variant] = {key: {step: [*mean_std(values), len(values)] for step, values in sorted(points.items())}
                             for key, points in series.items()}
    return evidence


# Why the demo's recipe is not the reference's, in one place (details: recipes/demo_world.yaml,
# read_trainer/demo/base_models.py, read_trainer/demo/pipeline.py).
DEVIATIONS = [
    "- **learning rate 5e-4, 500 steps** (reference: 1e-5, 5 epochs of COCO): the base was pretrained "
    "from scratch at 1e-3 for a minute; at 1e-4 / 150 steps fine-tuning moved swap accuracy by 2 points.",
    "- **alignment with the hard negatives as extra columns, both directions** (reference: paraphrase -> "
    "in-batch anchors): a world paraphrase shares its caption's content words and in-batch anchors describe "
    "other scenes, so the reference alignment loss is ~0.1 from the first logged step and asks for nothing a "
    "bag-of-words encoder does not already do; compare READ with the variant 'READ, reference alignment'.",
    "- **negatives**: the package's generator, swaps and relation replacements preferred, kept only when they "
    "parse as world captions that are false for the image (its COCO lexicon otherwise garbles ~60% of them).",
    "- **base models**: CLIP pretrained with the plain CLIP loss, temperature started at CLIP's converged 1/100, "
    "one patch per cell of the world's 3x3 grid; T5 pretrained as an autoencoder of the world's texts through a "
    "one-token encoder memory, the way READ feeds its decoder.",
]


def _cell(value: list) -> str:
    mean, std, n = value
    return f"{mean:.1f}" if n == 1 else f"{mean:.1f} ± {std:.1f}"


def format_markdown(summary: dict, comparison: dict, config: ReadConfig, seeds: list[int], command: str,
                    prepared) -> str:
    from read_trainer.demo.benchmark import KIND_TITLES, KINDS, WORLD_CATEGORIES

    variants = [v for v in VARIANTS if v in summary]
    lines = [
        "# READ ablation on the synthetic world", "",
        f"Reproduce: `{command}` (or `make ablation`).", "",
        f"Base models pretrained on the world's train split ({prepared.world_params['n_train']} images; "
        f"base CLIP: plain CLIP loss). Every fine-tuned variant: K={config.num_hard_negatives} hard negatives, "
        f"{config.max_steps} steps, batch {config.per_device_train_batch_size}, lr {config.learning_rate:g}, "
        f"seeds {', '.join(map(str, seeds))}; full READ uses λ_rec={config.reconstruction_weight:g}, "
        f"λ_align={config.alignment_weight:g}. Accuracy in %, mean ± sample std over seeds; ties count as wrong; "
        "each benchmark's score is the macro mean over its categories. `test` = iid test images, "
        "`novel` = colour-shape combinations never seen in training.", "",
        "## Macro accuracy", "",
        "| variant | " + " | ".join(f"{split} {KIND_TITLES[k]}" for split in ("test", "novel") for k in KINDS) + " |",
        "|---|" + "---:|" * (2 * len(KINDS)),
    ]
    for v in variants:
        lines.append(f"| {v} | " + " | ".join(_cell(summary[v][split][k]["macro"])
                                             for split in ("test", "novel") for k in KINDS) + " |")
    if comparison:
        lines += ["", "## READ vs NegCLIP (macro)", "",
                  "| split / benchmark | READ − NegCLIP | larger std | difference / larger std | > 2 std |",
                  "|---|---:|---:|---:|:---:|"]
    for name, c in comparison.items():
        split, kind = name.split("/")
        spread = max(c["std_READ"], c["std_NegCLIP"])
        lines.append(f"| {split} {KIND_TITLES[kind]} | {c['difference']:+.1f} | {spread:.1f} | "
                     f"{c['margin_in_std']:.1f} | {'yes' if c['more_than_2_std'] else 'no'} |")
    lines += ["", "## Settings that differ from the reference recipe", "", *DEVIATIONS]
    for split in ("test", "novel"):
        lines += ["", f"## Per category ({split})", "",
                  "| benchmark | category | " + " | ".join(variants) + " |",
                  "|---|---|" + "---:|" * len(variants)]
        for k in KINDS:
            for cat in WORLD_CATEGORIES:
                if cat in summary[variants[0]][split][k]:
                    lines.append(f"| {KIND_TITLES[k]} | {cat} | "
                                 + " | ".join(_cell(summary[v][split][k][cat]) for v in variants) + " |")
    return "\n".join(lines) + "\n"


def _signed(c: dict) -> str:
    margin = "∞" if math.isinf(c["margin_in_std"]) else f"{c['margin_in_std']:.1f}"
    return f"{c['difference']:+.1f} ({margin}){' ✓' if c['more_than_2_std'] else ''}"


def format_comparisons(comparisons: dict) -> str:
    """One table per comparison: the difference on the swap categories and the macro score."""
    from read_trainer.demo.benchmark import KIND_TITLES, KINDS

    if not comparisons:
        return ""
    lines = ["", "## What each term adds", "",
             "Difference of the means over seeds, in points, and in brackets that difference over the larger of the "
             "two variants' stds; ✓ = more than 2 std.", ""]
    for name, table in comparisons.items():
        lines += [f"**{name}**", "", "| split / benchmark | " + " | ".join(SWAP_CELLS) + " |",
                  "|---|" + "---:|" * len(SWAP_CELLS)]
        for split in ("test", "novel"):
            for kind in KINDS:
                lines.append(f"| {split} {KIND_TITLES[kind]} | "
                             + " | ".join(_signed(table[f"{split}/{kind}/{cell}"]) for cell in SWAP_CELLS) + " |")
        lines.append("")
    return "\n".join(lines)


def _series_cell(points: dict, step, scale: float = 1.0, digits: int = 2) -> str:
    if step not in points:
        return "-"
    mean, std, n = points[step]
    return f"{mean * scale:.{digits}f}" if n == 1 else f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f}"


def format_evidence(evidence: dict, probe: dict | None) -> str:
    """The reconstruction loss over training, the gradient shares, and the decoder probe."""
    if not evidence:
        return ""
    lines = ["", "## Reconstruction: what the term does to the text tower", ""]
    if probe is not None:
        own = probe["own_memory_loss"]["train"]
        gap = probe["order_gap_test"]
        lines += [
            "The frozen decoder, probed with its own pretraining memory (its T5 encoder, mean-pooled to one "
            "token), on the train split (`read_trainer.demo.reconstruction_probe`):", "",
            "| target | share of the target's meaning its anchor does not state | decoder loss, dropout off | "
            "dropout on | no information (the average memory) |", "|---|---:|---:|---:|---:|",
        ]
        for target in ("random_caption", "anchor", "paraphrase"):
            lines.append(f"| {target} | {100 * probe['unstated_share']['train'][target]:.1f}% | "
                         f"{own[target]['dropout_off']:.3f} | {own[target]['dropout_on']:.3f} | "
                         f"{own[target]['no_information']:.3f} |")
        info = probe["order_information_train"]
        lines += ["", f"What word order can say at most, over the train split's {info['captions']} captions: "
                  f"{info['nats_per_caption']:.3f} nats per caption, {info['nats_per_token']:.4f} per T5 token "
                  f"({100 * info['share_with_a_swap']:.1f}% of captions have a meaning-changing swap; "
                  "`order_information`: log of the number of distinct meanings among a caption and its single "
                  "swaps)."]
        lines += [
            "", f"Word order, on the test split's {gap['items']} swap_att/swap_obj items: the decoder's per-token "
            "loss given the caption's own memory vs given the memory of the caption with two attributes or "
            "objects swapped (the same words), and how often the true memory gives the lower loss:", "",
            "| target | loss, true memory | loss, swapped memory | gap per token | true memory lower |",
            "|---|---:|---:|---:|---:|",
        ]
        for target in ("caption", "paraphrase"):
            g = gap[target]
            lines.append(f"| {target} | {g['loss_given_true']:.4f} | {g['loss_given_swapped']:.4f} | "
                         f"{g['gap_per_token']:+.5f} | {100 * g['true_memory_lower']:.1f}% |")
        if "order_separation_test" in probe:
            lines += ["", "The decoder's own memories of a caption and of its swap differ by "
                      f"{100 * probe['order_separation_test']:.1f}% (mean ‖m(caption) − m(swap)‖ / ‖m(caption)‖; "
                      "compare the decoder-memory column of the order-separation table below, READ's memory)."]
        lines.append("")
    steps = sorted({step for e in evidence.values() for step in e.get("reconstruction_loss", {})})
    shown = [steps[0], steps[len(steps) // 2], steps[-1]] if len(steps) >= 3 else steps
    lines += ["Reconstruction loss logged during fine-tuning (token mean, decoder dropout as configured), "
              "mean ± std over seeds:", "",
              "| variant | " + " | ".join(f"step {s}" for s in shown) + " |", "|---|" + "---:|" * len(shown)]
    for variant, e in evidence.items():
        points = e.get("reconstruction_loss", {})
        lines.append(f"| {variant} | " + " | ".join(_series_cell(points, s, digits=3) for s in shown) + " |")
    grad_steps = sorted({step for e in evidence.values() for step in e.get("share/reconstruction", {})})
    lines += ["", "Share of the text tower's gradient norm from the weighted reconstruction term "
              "(‖λ_rec ∇L_rec‖ over the sum of every term's norm), in %, on one fixed batch, and the cosine "
              "between the reconstruction and contrastive gradients:", "",
              "| variant | " + " | ".join(f"share, step {s}" for s in grad_steps) + " | cosine, last step |",
              "|---|" + "---:|" * (len(grad_steps) + 1)]
    for variant, e in evidence.items():
        share = e.get("share/reconstruction", {})
        cosine = e.get("cosine/reconstruction_contrastive", {})
        lines.append(f"| {variant} | " + " | ".join(_series_cell(share, s, 100.0, 2) for s in grad_steps)
                     + f" | {_series_cell(cosine, grad_steps[-1], digits=3) if grad_steps else '-'} |")
    probed = {v: e for v, e in evidence.items() if "read_memory/caption" in e}
    if probed:
        lines += ["", "The order test through READ's own memory after fine-tuning (the fine-tuned text tower's "
                  "pooled state of the caption, or of its swap, through the learned projection; the frozen "
                  "decoder, dropout off), on the test split's swap items, mean ± std over seeds:", "",
                  "| variant | caption: loss, true memory | gap per token | true memory lower | "
                  "paraphrase: gap per token | true memory lower |", "|---|---:|---:|---:|---:|---:|"]
        for variant, e in probed.items():
            caption, paraphrase = e["read_memory/caption"], e["read_memory/paraphrase"]
            lines.append(f"| {variant} | {_series_cell(caption, 'loss_given_true', digits=3)} | "
                         f"{_series_cell(caption, 'gap_per_token', digits=4)} | "
                         f"{_series_cell(caption, 'true_memory_lower', 100.0, 1)}% | "
                         f"{_series_cell(paraphrase, 'gap_per_token', digits=4)} | "
                         f"{_series_cell(paraphrase, 'true_memory_lower', 100.0, 1)}% |")
    return "\n".join(lines) + "\n"


SEPARATION_COLUMNS = (("pooled", "before"), ("pooled", "after"), ("contrastive", "before"), ("contrastive", "after"),
                      ("contrastive_cosine_distance", "after"), ("decoder_memory", "before"),
                      ("decoder_memory", "after"))


def format_order_separation(runs: list[dict]) -> str:
    """Per variant, mean ± std over seeds: how far apart a caption and its swap are, before and after
    fine-tuning, in the pooled state, the contrastive embedding and the decoder's memory."""
    series: dict[str, dict[tuple, list[float]]] = {}
    for run in runs:
        for when, values in (run.get("order_separation") or {}).items():
            for head, value in values.items():
                series.setdefault(run["variant"], {}).setdefault((head, when), []).append(value)
    if not series:
        return ""
    lines = ["", "How far apart each variant puts a swap item's caption and its swap (test split, "
             "`reconstruction_probe.order_separation`): mean ‖f(caption) − f(swap)‖ / ‖f(caption)‖ in the text "
             "tower's pooled state, its contrastive projection and the decoder's memory projection, before the "
             "first step and after the last; and 1 − cos of the normalised contrastive embeddings after:", "",
             "| variant | " + " | ".join(f"{head.replace('_', ' ')}, {when}" for head, when in SEPARATION_COLUMNS)
             + " |", "|---|" + "---:|" * len(SEPARATION_COLUMNS)]
    for variant, points in series.items():
        cells = {key: [*mean_std(values), len(values)] for key, values in points.items()}
        lines.append(f"| {variant} | " + " | ".join(_series_cell(cells, key, digits=4) for key in SEPARATION_COLUMNS)
                     + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
