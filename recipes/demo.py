"""`make demo`: READ from a "pretrained" base to an exported CLIPModel, on the synthetic world.

    python recipes/demo.py                                   # recipes/demo_world.yaml, outputs/demo
    python recipes/demo.py --out outputs/demo2 --max_steps 100 --learning_rate 2e-4

Steps, each cached or timed:

1. build the synthetic world (``read_trainer.demo.dataset``; cached under ``--cache``);
2. the base models (``read_trainer.demo.base_models``): a tiny CLIP pretrained with the plain
   CLIP loss on the world's train split, and a tiny T5 autoencoder of its texts, loaded with
   ``from_pretrained(path)`` like hub checkpoints. By default the copies shipped in
   ``read_trainer/demo/base_checkpoints/`` (checked against their SHA256SUMS;
   ``recipes/build_base_checkpoints.py`` rebuilds them bit for bit); ``--rebuild_base``, or
   any non-default world or pretraining flag, pretrains them here and caches them;
3. READ fine-tuning with ``ReadTrainer`` (hard negatives from the package's generator,
   paraphrases from the world's ``paraphrases`` column), exported as a plain ``CLIPModel``;
4. base vs fine-tuned on the world's SugarCrepe-style and SugarCrepe++-style (ITT, TOT)
   tests, iid (``test``) and novel compositions (``novel``): a table on stdout, and
   ``results.json``, ``results.md`` and ``chart.png`` in ``--out``; then the wall and CPU
   time of each step.

Flags: every ReadConfig field (``--learning_rate``, ``--max_steps``, ...) and the demo
flags below. The YAML holds only ReadConfig keys, so ``run_read.py`` could read it too.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything here is local; never wait on the network
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from read_trainer.cli import parse_args_with_config  # noqa: E402
from read_trainer.config import ReadConfig  # noqa: E402
from read_trainer.demo.pipeline import DemoArguments, Stopwatch  # noqa: E402

DEFAULT_CONFIG = Path(__file__).with_name("demo_world.yaml")


def parse(argv: list[str]) -> tuple[DemoArguments, ReadConfig]:
    """``--config`` defaults to ``recipes/demo_world.yaml``; flags override it."""
    if not any(a == "--config" or a.startswith("--config=") for a in argv):
        argv = ["--config", str(DEFAULT_CONFIG), *argv]
    return parse_args_with_config((DemoArguments, ReadConfig), argv)


def main(argv: list[str] | None = None) -> dict:
    from read_trainer.demo.benchmark import load_world_benchmarks
    from read_trainer.demo.pipeline import finetune, prepare
    from read_trainer.demo.report import (
        accuracy_table,
        bag_of_words_check,
        evaluate_clip,
        format_comparison,
        plot_accuracy_tables,
        wins_per_category,
        write_json,
    )

    demo, config = parse(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING)
    import torch

    torch.set_num_threads(demo.threads)  # the results depend on it (DemoArguments.threads)
    out = Path(demo.out)
    watch = Stopwatch()

    prepared = prepare(demo, watch)
    world, params, base = prepared.world, prepared.world_params, prepared.base

    began = time.perf_counter()
    config.model_name_or_path, config.decoder_name_or_path = str(base.clip), str(base.t5)
    config.output_dir = str(out / "read-clip")
    config.overwrite_output_dir = True  # each demo run replaces the previous demo's model
    config.disable_tqdm = not demo.progress
    config.torch_threads = demo.threads  # the trainer sets them for the run
    exported = finetune(world["train"], config)
    watch.stage("READ fine-tuning", began)

    began = time.perf_counter()
    benchmarks = load_world_benchmarks(world)
    results = {"base": evaluate_clip(base.clip, benchmarks, demo.progress, demo.eval_batch_size),
               "READ": evaluate_clip(exported, benchmarks, demo.progress, demo.eval_batch_size)}
    watch.stage("evaluation", began)

    tables = {label: accuracy_table(r) for label, r in results.items()}
    checks = {"base_is_bag_of_words": bag_of_words_check(tables["base"]),
              "read_beats_base": wins_per_category(tables["READ"], tables["base"])}
    payload = {
        "meta": {"world": params, "base_clip": str(base.clip), "base_t5": str(base.t5),
                 "exported_model": str(exported), "read_config": config.to_dict(),
                 "rule": "accuracy in %; ties count as wrong; each benchmark's macro = plain mean over categories",
                 "threads": demo.threads,
                 "wall_time_s": {**watch.stages, "total": watch.total},
                 "cpu_time_s": {**watch.cpu_stages, "total": watch.cpu_total}},
        "accuracy": tables,
        "checks": checks,
        "benchmarks": {label: {name: r.to_dict() for name, r in per.items()} for label, per in results.items()},
    }
    table = format_comparison(tables)
    write_json(out / "results.json", payload)
    (out / "results.md").write_text(table + "\n", encoding="utf-8")
    plot_accuracy_tables(tables, out / "chart.png")

    print("\nREAD on the synthetic world (accuracy %, ties count as wrong; macro = mean over categories)\n")
    print(table)
    print(f"\nbase CLIP bag-of-words check: {checks['base_is_bag_of_words']['summary']}")
    print(f"READ beats base: {checks['read_beats_base']['summary']}")
    print(f"\nresults: {out / 'results.json'}, {out / 'results.md'}, chart: {out / 'chart.png'}")
    print(f"exported CLIPModel: {exported}  (CLIPModel.from_pretrained({str(exported)!r}))")
    print(f"base models: CLIP {base.clip}, T5 {base.t5}  (to fine-tune them on your own photos: "
          f"README, 'Train on your own photos')")
    print(f"\ntime ({demo.threads} torch thread(s); CPU = this process's, all threads):")
    print(watch.breakdown())
    return payload


if __name__ == "__main__":
    main()
