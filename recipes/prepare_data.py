"""Download and lay out the data for reproducing READ-CLIP: training set, paraphrases, benchmarks.

    python recipes/prepare_data.py train                      # COCO Karpathy train+restval -> data/coco_read
    python recipes/prepare_data.py paraphrases --source official   # READ's zero.json -> data/paraphrases
    python recipes/prepare_data.py benchmarks --benchmarks paper retention --imagenet_dir /data/imagenet/val
    python recipes/prepare_data.py manifest                   # every source: size, checksum, licence, access

Every file comes from ``read_trainer/prepare/manifest.json`` (URL or Hub file, size, published
checksum, licence, official source). Downloads resume after an interruption, are verified before
they are put in place, and are skipped once verified; archives are extracted safely and checked.
Before anything is downloaded, each pending file's server is asked for its size: an unreachable or
gated source, or too little disk space, stops the command at once. Each subcommand can be rerun: it
continues where it stopped and keeps what is finished. ``--mirror URL|DIR`` fetches every file from
a mirror instead (``<mirror>/<host>/<path>``; Hub files from the mirror as a Hub endpoint).

Training data routes (``train --source``): ``karpathy`` (the Karpathy split as parquet from the
Hub + the COCO 2014 zips, 113,287 images), ``read`` (READ-CLIP's own Hub files: examples.jsonl +
images.zip), ``folder`` (``--coco_folder`` with dataset_coco.json, train2014/, val2014/).
Paraphrase sources (``paraphrases --source``): ``official`` (zero.json at the pinned commit,
verified by its git blob SHA-1), ``generate`` (make_paraphrases.py with a pinned model, revision
and prompt; a GPU is advisable), ``none``. A mistake ends with one ``error:`` line.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from read_trainer.cli import ArgumentParser, UsageError, run_recipe
from read_trainer.evaluation.suite import expand_names
from read_trainer.prepare.benchmarks import prepare_benchmarks
from read_trainer.prepare.manifest import load_manifest
from read_trainer.prepare.paraphrase_files import (
    DEFAULT_GENERATOR,
    DEFAULT_GENERATOR_REVISION,
    DEFAULT_PROMPT,
    SOURCES,
    generate_command,
    prepare_official,
    validate_image_paraphrases,
)
from read_trainer.prepare.store import DataStore
from read_trainer.prepare.training import TRAINING_FILES, prepare_training_data

RECIPES = Path(__file__).resolve().parent


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data_dir", default="data", help="where downloads, extracted sources and the prepared folders go")
    p.add_argument("--mirror", default=None, help="base URL or local folder replacing every host (proxies, tests)")
    p.add_argument("--manifest", default=None, help="another manifest file (default: the package's)")
    p.add_argument("--delete_archives", action="store_true",
                   help="delete each archive once it is extracted and checked (saves about half the disk)")
    p.add_argument("--no_progress", action="store_true", help="no progress bars")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="COCO Karpathy train+restval into <data_dir>/coco_read")
    train.add_argument("--source", default="karpathy", choices=sorted(TRAINING_FILES), help="training data route")
    train.add_argument("--coco_folder", default=None, help="--source folder: dataset_coco.json + train2014/ + val2014/")
    add_common(train)
    para = sub.add_parser("paraphrases", help="the paraphrase file into <data_dir>/paraphrases")
    para.add_argument("--source", required=True, choices=SOURCES, help="official zero.json, generate, or none")
    para.add_argument("--model", default=DEFAULT_GENERATOR, help="--source generate: generation model")
    para.add_argument("--revision", default=DEFAULT_GENERATOR_REVISION, help="--source generate: model revision")
    para.add_argument("--prompt", default=DEFAULT_PROMPT, help="--source generate: prompt ({caption} is replaced)")
    para.add_argument("--device", default=None, help="--source generate: torch device (e.g. cuda)")
    add_common(para)
    bench = sub.add_parser("benchmarks", help="benchmark folders into <data_dir>/benchmarks")
    bench.add_argument("--benchmarks", nargs="+", default=["paper", "retention"],
                       help="benchmark names or sets (paper, retention, compositional, all)")
    bench.add_argument("--imagenet_dir", default=None, help="your ImageNet val images, one subfolder per class")
    bench.add_argument("--flickr30k_images", default=None,
                       help="your flickr30k-images folder (default: the 1,000 test images from the Hub)")
    add_common(bench)
    man = sub.add_parser("manifest", help="print every source: files, sizes, checksums, licence, access")
    man.add_argument("--manifest", default=None, help="another manifest file")
    return p.parse_args(argv)


def make_store(args) -> DataStore:
    return DataStore(args.data_dir, load_manifest(args.manifest), mirror=args.mirror, progress=not args.no_progress,
                     keep_archives=not args.delete_archives)


def prepare_train(args) -> dict:
    store = make_store(args)
    out = Path(args.data_dir) / "coco_read"
    store.check_space(TRAINING_FILES[args.source])
    summary = prepare_training_data(store, out, args.source, args.coco_folder)
    print(f"training data: {summary['rows']} images ({summary['route']}) -> {out / 'train.jsonl'}")
    return summary


def prepare_paraphrases(args) -> dict:
    out = Path(args.data_dir) / "paraphrases"
    train_table = Path(args.data_dir) / "coco_read" / "train.jsonl"
    if args.source == "none":
        print("paraphrases: none; train with --paraphrase_file none (the alignment positive is then another human "
              "caption of the same image)")
        return {"source": "none"}
    if args.source == "official":
        store = make_store(args)
        summary = prepare_official(store, out, train_table)
        print(f"paraphrases: zero.json, {summary['images']} images, {summary['paraphrases']} paraphrases -> "
              f"{out / 'zero.json'}")
        return summary
    if not train_table.is_file():
        raise UsageError(f"--source generate paraphrases the training captions: run `prepare_data.py train` first "
                         f"({train_table} does not exist)")
    target, provenance_file = out / "generated.json", out / "generated.json.provenance.json"
    wanted = {"generator": args.model, "revision": args.revision, "prompt": args.prompt}
    if target.is_file() and provenance_file.is_file():
        recorded = json.loads(provenance_file.read_text())
        if all(recorded.get(k) == v for k, v in wanted.items()):
            print(f"paraphrases: {target} was generated with these settings already")
            return recorded
    command = [sys.executable, str(RECIPES / "make_paraphrases.py"),
               *generate_command(train_table, out, args.model, args.revision, args.prompt, args.device)]
    print("paraphrases: " + " ".join(command))
    if subprocess.run(command).returncode != 0:
        raise UsageError("make_paraphrases.py failed (its error is above); rerun when fixed")
    summary = {**json.loads(provenance_file.read_text()), **validate_image_paraphrases(target, train_table)}
    return summary


def prepare_benchmark_folders(args) -> dict:
    names = expand_names(args.benchmarks)
    if "zeroshot" in names and not args.imagenet_dir:
        if "zeroshot" in args.benchmarks:
            raise UsageError("zeroshot needs your ImageNet validation images: pass --imagenet_dir (one subfolder "
                             "per class; ImageNet needs an account at https://image-net.org)")
        names.remove("zeroshot")
        print("benchmarks: zeroshot left out: it needs --imagenet_dir (ImageNet is not downloaded for you)")
    store = make_store(args)
    root = Path(args.data_dir) / "benchmarks"
    summary = prepare_benchmarks(store, root, names, imagenet_dir=args.imagenet_dir,
                                 flickr30k_images=args.flickr30k_images)
    for folder, result in summary.items():
        print(f"benchmarks: {folder}: " + ", ".join(f"{k} {v}" for k, v in result.items() if k != "benchmarks"))
    print(f"benchmark data root: {root}")
    return summary


def print_manifest(args) -> dict:
    manifest = load_manifest(args.manifest)
    for source in manifest:
        access = f"gated: {source.gated}" if source.gated else "open"
        print(f"{source.id}: {source.title}\n  licence: {source.licence}\n  official: {source.official}\n  {access}")
        if source.user_supplied:
            print(f"  you supply: {source.user_supplied}")
        for f in source.files:
            checks = ", ".join(f"{k} {v[:12]}..." for k, v in f.digests.items()) or (
                "the Hub's sha256, at download" if f.hub else "none published (sha256 recorded at first download)")
            size = f"{f.bytes:,} B" if f.bytes else "size not published"
            print(f"  - {f.name}: {f.location}\n    {size}; checksum: {checks}")
        for item in source.unverified:
            print(f"  unverified: {item}")
    return {"sources": len(manifest.sources)}


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    return {"train": prepare_train, "paraphrases": prepare_paraphrases, "benchmarks": prepare_benchmark_folders,
            "manifest": print_manifest}[args.command](args)


if __name__ == "__main__":
    sys.exit(run_recipe(main))
