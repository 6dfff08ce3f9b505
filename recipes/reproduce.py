"""Reproduce READ-CLIP from nothing: data, training, evaluation, and our table beside the paper's.

    python recipes/reproduce.py                                   # or: make reproduce
    python recipes/reproduce.py --imagenet_dir /data/imagenet/val --num_processes 4
    python recipes/reproduce.py --paraphrases none                # the released code's effective setting
    python recipes/reproduce.py -- --max_steps 200                # flags after -- go to run_read.py

Stages, each skipped when its output is complete and verified, so a rerun after a crash continues:

1. prepare: the training table (``<data_dir>/coco_read``), the paraphrase file
   (``<data_dir>/paraphrases``) and every benchmark folder (``<data_dir>/benchmarks``), with
   ``recipes/prepare_data.py``'s code. Before any download, every pending file's size is asked
   for and the free disk space checked: an unreachable or gated source stops it at once.
2. train: ``accelerate launch recipes/run_read.py --config recipes/read_clip_vit_b32.yaml`` on
   ``--num_processes`` GPUs (default: all visible; the global batch stays 256), into
   ``<output_dir>/model``; an interrupted run resumes from its newest checkpoint. A finished model
   is recorded with the sha256 of its weights and never trained over.
3. evaluate: the paper's six benchmarks and the retention tasks, under both evaluation protocols
   (``read``: the paper's own evaluator's rules; ``strict``: ties count as wrong), for the trained
   model and the base CLIP, into ``<output_dir>/eval/<protocol>/``.
4. report: ``<output_dir>/results.md`` and ``results.json``: ours, the paper's number and the
   difference per benchmark (under the paper's protocol), and the model card with those results.

Zero-shot ImageNet needs ``--imagenet_dir`` (ImageNet cannot be downloaded for you); without it
that task is left out and the report says so. A mistake ends with one ``error:`` line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from read_trainer.cli import ArgumentParser, UsageError, run_recipe

RECIPES = Path(__file__).resolve().parent
DEFAULT_CONFIG = RECIPES / "read_clip_vit_b32.yaml"
OURS, BASE = "READ-CLIP (ours)", "base CLIP"
TRAINED_NOTE = ".reproduce_trained.json"


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    p = ArgumentParser(description=__doc__)
    p.add_argument("--data_dir", default="data", help="downloads, extracted sources, prepared folders")
    p.add_argument("--output_dir", default="outputs/reproduce", help="the model, evaluations and report")
    p.add_argument("--config", default=str(DEFAULT_CONFIG), help="training recipe YAML")
    p.add_argument("--train_source", default="karpathy", choices=["karpathy", "read", "folder"],
                   help="training data route (recipes/prepare_data.py train --source)")
    p.add_argument("--coco_folder", default=None, help="--train_source folder: dataset_coco.json + train2014/ + val2014/")
    p.add_argument("--paraphrases", default="official", choices=["official", "generate", "none"],
                   help="official: READ's zero.json (the paper's setting); generate: make_paraphrases.py with the "
                   "pinned model; none: another human caption of the image (what the released code ran)")
    p.add_argument("--paraphrase_sampling", default="image_pool", choices=["image_pool", "caption"],
                   help="image_pool: the official collator's draw (other captions + the image's paraphrases)")
    p.add_argument("--benchmarks", nargs="+", default=["paper", "retention"], help="benchmark names or sets")
    p.add_argument("--imagenet_dir", default=None, help="ImageNet val images, one subfolder per class (zero-shot)")
    p.add_argument("--flickr30k_images", default=None, help="your flickr30k-images folder (default: from the Hub)")
    p.add_argument("--mirror", default=None, help="base URL or folder replacing every download host")
    p.add_argument("--manifest", default=None, help="another manifest file (default: the package's)")
    p.add_argument("--delete_archives", action="store_true", help="delete archives once extracted and checked")
    p.add_argument("--num_processes", type=int, default=None, help="training processes (default: visible GPUs, or 1)")
    p.add_argument("--accelerate_config", default=None, help="an accelerate config file (recipes/accelerate/)")
    p.add_argument("--global_batch_size", type=int, default=256, help="split over the processes")
    p.add_argument("--base_model", default="openai/clip-vit-base-patch32", help="evaluated beside ours; 'none' skips")
    p.add_argument("--eval_batch_size", type=int, default=256, help="texts or images per forward pass")
    p.add_argument("--eval_device", default=None, help="evaluation device (default: cuda when available)")
    p.add_argument("--eval_dtype", default="fp32", choices=["fp32", "bf16", "fp16"], help="evaluation autocast")
    p.add_argument("--eval_num_workers", type=int, default=4, help="image decoding workers")
    p.add_argument("--no_progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    return args, extra


# -- 1. prepare ------------------------------------------------------------------------------


def benchmark_names(args) -> tuple[list[str], list[str]]:
    """(benchmarks to run, notes on those left out)."""
    from read_trainer.evaluation.suite import expand_names

    names = expand_names(args.benchmarks)
    notes = []
    if "zeroshot" in names and not args.imagenet_dir:
        names.remove("zeroshot")
        notes.append("zero-shot ImageNet left out: it needs --imagenet_dir (ImageNet is not downloaded for you)")
    return names, notes


def prepare(args, names: list[str]) -> dict:
    from read_trainer.prepare.benchmarks import files_for, folders_for, prepare_benchmarks
    from read_trainer.prepare.manifest import load_manifest
    from read_trainer.prepare.paraphrase_files import OFFICIAL, prepare_official
    from read_trainer.prepare.store import DataStore
    from read_trainer.prepare.training import TRAINING_FILES, prepare_training_data

    data = Path(args.data_dir)
    store = DataStore(data, load_manifest(args.manifest), mirror=args.mirror, progress=not args.no_progress,
                      keep_archives=not args.delete_archives)
    wanted = list(TRAINING_FILES[args.train_source]) + ([OFFICIAL] if args.paraphrases == "official" else [])
    wanted += [f for folder, members in folders_for(names).items()
               for f in files_for(folder, members, args.flickr30k_images)]
    store.check_space(dict.fromkeys(wanted))  # every source reachable and enough disk, before any download
    summary = {"training": prepare_training_data(store, data / "coco_read", args.train_source, args.coco_folder)}
    train_table = data / "coco_read" / "train.jsonl"
    if args.paraphrases == "official":
        summary["paraphrases"] = prepare_official(store, data / "paraphrases", train_table)
        paraphrase_file = data / "paraphrases" / "zero.json"
    elif args.paraphrases == "generate":
        command = [sys.executable, str(RECIPES / "prepare_data.py"), "paraphrases", "--source", "generate",
                   "--data_dir", str(data)]
        if subprocess.run(command).returncode != 0:
            raise UsageError("paraphrase generation failed (its error is above); rerun when fixed")
        paraphrase_file = data / "paraphrases" / "generated.json"
        summary["paraphrases"] = json.loads(Path(f"{paraphrase_file}.provenance.json").read_text())
    else:
        paraphrase_file = None
        summary["paraphrases"] = {"source": "none"}
    summary["benchmarks"] = prepare_benchmarks(store, data / "benchmarks", names, imagenet_dir=args.imagenet_dir,
                                               flickr30k_images=args.flickr30k_images, check_space=False)
    summary["paraphrase_file"] = str(paraphrase_file) if paraphrase_file else None
    return summary


# -- 2. train --------------------------------------------------------------------------------


def weights_sha256(model_dir: Path) -> str | None:
    """sha256 over the exported weight files (a single file or the shards of an index), or None if absent."""
    single = model_dir / "model.safetensors"
    index = model_dir / "model.safetensors.index.json"
    if single.is_file():
        files = [single]
    elif index.is_file():
        files = [model_dir / name for name in sorted(set(json.loads(index.read_text())["weight_map"].values()))]
    else:
        return None
    digest = hashlib.sha256()
    for path in files:
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def training_command(args, extra: list[str], model_dir: Path, train_table: Path, paraphrase_file: str | None,
                     processes: int) -> list[str]:
    command = [sys.executable, "-m", "accelerate.commands.launch"]
    if args.accelerate_config:
        command += ["--config_file", args.accelerate_config]
    command += (["--multi_gpu"] if processes > 1 else []) + ["--num_processes", str(processes)]
    command += [str(RECIPES / "run_read.py"), "--config", args.config, "--train_file", str(train_table),
                "--paraphrase_file", paraphrase_file or "none", "--paraphrase_sampling", args.paraphrase_sampling,
                "--output_dir", str(model_dir)]
    if not any(a.startswith("--per_device_train_batch_size") for a in extra):
        if args.global_batch_size % processes:
            raise UsageError(f"--global_batch_size {args.global_batch_size} does not split over {processes} processes")
        command += ["--per_device_train_batch_size", str(args.global_batch_size // processes)]
    return command


def train(args, extra: list[str], prepared: dict) -> dict:
    model_dir = Path(args.output_dir) / "model"
    note = model_dir / TRAINED_NOTE
    settings = {"config": str(args.config), "paraphrases": args.paraphrases,
                "paraphrase_sampling": args.paraphrase_sampling, "train_source": args.train_source, "extra": extra}
    if note.is_file():
        recorded = json.loads(note.read_text())
        if recorded["weights_sha256"] != weights_sha256(model_dir):
            raise UsageError(f"{model_dir}: the exported weights changed since training finished (sha256 differs); "
                             "move the folder away or pass another --output_dir")
        if recorded["settings"] != settings:
            raise UsageError(f"{model_dir} holds a model trained with other settings ({recorded['settings']}); pass "
                             "another --output_dir to train with these")
        print(f"train: {model_dir} is finished and verified (weights sha256 {recorded['weights_sha256'][:12]}...)")
        return recorded
    if weights_sha256(model_dir) is not None and not any(model_dir.glob("checkpoint-*")):
        raise UsageError(f"{model_dir} holds an exported model this command did not record; move it away or pass "
                         "another --output_dir (a finished export is never trained over)")
    import torch

    processes = args.num_processes or max(1, torch.cuda.device_count())
    command = training_command(args, extra, model_dir, Path(args.data_dir) / "coco_read" / "train.jsonl",
                               prepared.get("paraphrase_file"), processes)
    if any(model_dir.glob("checkpoint-*")):
        command += ["--resume_from_checkpoint", "True"]  # continue an interrupted run from its newest checkpoint
    elif model_dir.is_dir() and any(model_dir.iterdir()):
        command += ["--overwrite_output_dir", "true"]  # only logs of a run killed before its first checkpoint
    command += extra  # last, so they override the recipe and the above
    print("train: " + " ".join(command), flush=True)
    started = time.time()
    if subprocess.run(command).returncode != 0:
        raise UsageError("training failed (its error is above); rerun this command to resume from the last checkpoint")
    sha = weights_sha256(model_dir)
    if sha is None:
        raise UsageError(f"training ended without an exported model in {model_dir}")
    recorded = {"weights_sha256": sha, "settings": settings, "command": command, "processes": processes,
                "wall_time_s": round(time.time() - started, 1)}
    note.write_text(json.dumps(recorded, indent=1) + "\n")
    return recorded


# -- 3. evaluate -----------------------------------------------------------------------------


def evaluate(args, names: list[str], trained: dict) -> dict[str, Path]:
    import torch

    from read_trainer.evaluation.protocol import PROTOCOLS, embedder_for
    from read_trainer.evaluation.report import markdown_report, write_results_json
    from read_trainer.evaluation.suite import load_suite, run_suite

    model_dir = Path(args.output_dir) / "model"
    data_root = Path(args.data_dir) / "benchmarks"
    base = None if args.base_model.lower() == "none" else args.base_model
    device = args.eval_device or ("cuda" if torch.cuda.is_available() else "cpu")
    kwargs = dict(batch_size=args.eval_batch_size, device=device, dtype=args.eval_dtype,
                  num_workers=args.eval_num_workers, progress=not args.no_progress)
    paths = {}
    for protocol in ("read", "strict"):
        path = Path(args.output_dir) / "eval" / protocol / "results.json"
        paths[protocol] = path
        meta = {"protocol": protocol, "protocol_rules": PROTOCOLS[protocol], "benchmarks": names,
                "model_weights_sha256": trained["weights_sha256"], "base_model": base, "dtype": args.eval_dtype,
                "data_root": str(data_root)}
        if path.is_file():
            recorded = json.loads(path.read_text())["meta"]
            if all(recorded.get(k) == meta[k] for k in ("benchmarks", "model_weights_sha256", "base_model", "dtype")):
                print(f"evaluate ({protocol}): {path} is up to date")
                continue
        started = time.time()
        tasks = load_suite(names, data_root, protocol=protocol)
        results = {OURS: run_suite(tasks, embedder_for(str(model_dir), protocol, **kwargs))}
        if base:
            results[BASE] = run_suite(tasks, embedder_for(base, protocol, **kwargs))
        meta["wall_time_s"] = round(time.time() - started, 1)
        write_results_json(path, results, meta)
        path.with_name("results.md").write_text(markdown_report(results), encoding="utf-8")
        print(f"evaluate ({protocol}): {path}")
    return paths


# -- 4. report -------------------------------------------------------------------------------


def report(args, names: list[str], notes: list[str], prepared: dict, trained: dict, paths: dict[str, Path],
           timings: dict[str, float]) -> dict:
    from read_trainer.evaluation.paper_comparison import (
        PAPER,
        PAPER_RESULTS,
        comparison_markdown,
        comparison_rows,
        mean_difference,
    )
    from read_trainer.evaluation.protocol import PROTOCOLS
    from read_trainer.evaluation.report import load_results, model_card_eval_results
    from read_trainer.evaluation.results import PAPER_SIX
    from read_trainer.hub import build_model_card, read_training_args

    out = Path(args.output_dir)
    model_dir = out / "model"
    ours = {p: load_results(paths[p], OURS) for p in paths}
    payloads = {p: json.loads(paths[p].read_text()) for p in paths}
    has_base = BASE in payloads["read"]["models"]
    base = load_results(paths["read"], BASE) if has_base else None
    six = {k: v for k, v in ours["read"].items() if k in PAPER_SIX}
    retention = {k: v for k, v in ours["read"].items() if k not in PAPER_SIX}
    base_retention = {k: v for k, v in base.items() if k not in PAPER_SIX} if base else None
    rows = comparison_rows(six, {k: v for k, v in ours["strict"].items() if k in PAPER_SIX},
                           {k: v for k, v in base.items() if k in PAPER_SIX} if base else None)
    table = comparison_markdown(rows, retention, base_retention)
    paraphrases = prepared.get("paraphrases", {})
    setup = {
        "training_data": {k: prepared["training"].get(k) for k in ("route", "rows", "hub_commits")},
        "paraphrases": args.paraphrases, "paraphrase_sampling": args.paraphrase_sampling,
        "paraphrase_file": prepared.get("paraphrase_file"), "paraphrase_summary": paraphrases,
        "config": str(args.config), "extra_training_flags": trained["settings"]["extra"],
        "processes": trained.get("processes"), "model_weights_sha256": trained["weights_sha256"],
        "benchmarks": names, "left_out": notes, "wall_time_s": timings,
    }
    lines = ["# Reproducing READ-CLIP", "", table]
    lines += ["## Setup", "",
              f"- training data: {setup['training_data']['route']} route, {setup['training_data']['rows']} images",
              f"- paraphrases: {args.paraphrases} (sampling: {args.paraphrase_sampling})",
              f"- recipe: `{args.config}`" + (f" with `{' '.join(setup['extra_training_flags'])}`"
                                              if setup["extra_training_flags"] else ""),
              f"- model: `{model_dir}` (weights sha256 {trained['weights_sha256'][:16]}...)",
              "- stage times (s, this run): " + ", ".join(f"{k} {v}" for k, v in timings.items())]
    lines += [f"- {n}" for n in notes]
    diff = mean_difference(rows)
    if diff is not None:
        lines += ["", f"Mean difference over the six benchmarks: {diff:+.1f} points."]
    markdown = "\n".join(lines) + "\n"
    (out / "results.md").write_text(markdown, encoding="utf-8")
    payload = {"paper": PAPER, "paper_results": PAPER_RESULTS, "protocol_for_comparison": "read",
               "protocols": PROTOCOLS, "comparison": rows, "setup": setup,
               "ours": {p: payloads[p] for p in payloads}}
    (out / "results.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    training_args = read_training_args(model_dir)
    hub_data = {"karpathy": ["yerevann/coco-karpathy"], "read": ["Mayfull/coco-karpathy-with-image"]}
    card = build_model_card(
        model_id="read-clip-vit-b32", base_model=training_args.get("model_name_or_path"), training_args=training_args,
        datasets=hub_data.get(args.train_source, []),
        eval_results=model_card_eval_results(ours["read"]), results_markdown=table,
        scoring_note="Scores use the cosine similarity of L2-normalised projected embeddings under the READ paper's "
                     "evaluation protocol (a tie with the best negative counts for the positive, as its argmax did; "
                     "What'sUp groups pool their rows), which is how the paper's numbers were computed; the strict "
                     "column counts ties as wrong.")
    card.save(str(model_dir / "README.md"))
    print(markdown)
    return payload


def main(argv: list[str] | None = None) -> dict:
    args, extra = parse_args(argv)
    if not Path(args.config).is_file():
        raise UsageError(f"config file {args.config!r} does not exist")
    names, notes = benchmark_names(args)
    if args.base_model.lower() != "none":
        from read_trainer.resolve import resolve_id

        resolve_id(args.base_model, "model")  # now, not after hours of training
    started = time.time()
    prepared = prepare(args, names)
    prepare_s = round(time.time() - started, 1)
    trained = train(args, extra, prepared)
    paths = evaluate(args, names, trained)
    os.makedirs(args.output_dir, exist_ok=True)
    # Measured wall times: training and evaluation as recorded when they ran (a rerun skips them).
    timings = {"prepare (this run)": prepare_s, "train": trained.get("wall_time_s"),
               "evaluate": round(sum(json.loads(p.read_text())["meta"].get("wall_time_s", 0) for p in paths.values()), 1)}
    return report(args, names, notes, prepared, trained, paths, timings)


if __name__ == "__main__":
    sys.exit(run_recipe(main))
