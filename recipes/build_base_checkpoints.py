"""Rebuild the demo's shipped base CLIP and T5 from scratch and check them against SHA256SUMS.

    python recipes/build_base_checkpoints.py           # rebuild, compare with the shipped sums
    python recipes/build_base_checkpoints.py --write   # rebuild and replace the shipped checkpoints

The demo (``recipes/demo.py``) starts from the checkpoints in
``read_trainer/demo/base_checkpoints/``. This recipe makes them the way the demo's
``--rebuild_base`` path does (``base_models.base_models``: the default world, the default
pretraining recipes, torch fixed at ``base_models.BUILD_THREADS`` threads), in a fresh
folder so nothing cached is reused, then prints, per file, whether its SHA-256 equals the
shipped ``SHA256SUMS`` line. Exit status 0 when every file matches (or with ``--write``),
1 otherwise. The rebuild is bit for bit on the machine type that built the shipped files
(vectorised float kernels differ between CPU instruction sets, so another CPU type can train
other bytes). The torch and transformers versions matter too (transformers writes its
version into every ``config.json``; a changed kernel or default changes the weights): a
rebuild prints the versions in use next to :data:`SHIPPED_WITH`, so a mismatch can be told
from a version change at a glance.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
import uuid
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# The library versions that built the shipped checkpoints. After ``--write`` with other versions
# (it prints them), update this line with the new files.
SHIPPED_WITH = {"torch": "2.13.0", "transformers": "5.25.0"}


def library_versions() -> dict[str, str]:
    """The versions of the libraries whose kernels and defaults decide the trained bytes."""
    import torch
    import transformers

    return {"torch": torch.__version__.split("+")[0], "transformers": transformers.__version__}


def describe_versions(versions: dict[str, str], shipped: dict[str, str]) -> str:
    """"torch 2.13.0, transformers 5.25.0 (the shipped files: 5.24.0)": the versions, and where they differ."""
    return ", ".join(f"{name} {version}" + ("" if shipped.get(name, version) == version
                                             else f" (the shipped files: {shipped[name]})")
                     for name, version in versions.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", default=".cache", help="Cache folder of the world; the models go to a fresh "
                                                          "subfolder of it.")
    parser.add_argument("--write", action="store_true", help="Replace the shipped checkpoints and SHA256SUMS.")
    parser.add_argument("--no_progress", action="store_true", help="Hide progress bars.")
    args = parser.parse_args(argv)

    from read_trainer.demo.base_models import BUILD_THREADS, base_models
    from read_trainer.demo.dataset import build_world, world_params
    from read_trainer.demo.pipeline import DemoArguments, pretraining_settings
    from read_trainer.demo.shipped_base import (
        KINDS,
        SHIPPED_DIR,
        compare_to_shipped,
        describe_comparison,
        verify_shipped,
        write_checksums,
    )

    demo = DemoArguments()  # the demo's defaults: the settings the shipped checkpoints are for
    wall, cpu = time.perf_counter(), time.process_time()
    params = world_params(demo.world_seed, demo.n_train, demo.n_test, demo.n_novel, demo.image_size)
    world = build_world(demo.world_seed, demo.n_train, demo.n_test, demo.n_novel, demo.image_size,
                        cache_dir=Path(args.cache) / "world")
    clip_recipe, t5_recipe = pretraining_settings(demo)
    fresh = Path(args.cache) / f"base_rebuild-{uuid.uuid4().hex[:8]}"
    versions = library_versions()
    print(f"pretraining the base CLIP and T5 with {BUILD_THREADS} torch threads into {fresh}", flush=True)
    print(f"library versions: {describe_versions(versions, SHIPPED_WITH)}", flush=True)
    base = base_models(world, params, fresh, clip_recipe, t5_recipe, progress=not args.no_progress)
    print(f"built in {time.perf_counter() - wall:.0f}s wall, {time.process_time() - cpu:.0f}s CPU")

    status = compare_to_shipped(base)
    print(describe_comparison(status))
    matches = all(s == "match" for s in status.values())
    if args.write:
        for kind, folder in zip(KINDS, (base.clip, base.t5)):
            shutil.rmtree(SHIPPED_DIR / kind, ignore_errors=True)
            shutil.copytree(folder, SHIPPED_DIR / kind)
        write_checksums(SHIPPED_DIR)
        print(f"wrote {verify_shipped()} files and SHA256SUMS to {SHIPPED_DIR}")
        if versions != SHIPPED_WITH:
            print(f"built with {versions}: set SHIPPED_WITH in {__file__} to that")
        return 0
    return 0 if matches else 1


if __name__ == "__main__":
    sys.exit(main())
