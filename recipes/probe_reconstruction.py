"""What can READ's reconstruction term ask of a text encoder on the synthetic world?

    python recipes/probe_reconstruction.py                      # shipped base T5, world defaults
    python recipes/probe_reconstruction.py --decoder <t5 folder> --json outputs/probe_reconstruction.json

Prints (and with ``--json`` writes) the three measurements of
``read_trainer.demo.reconstruction_probe``: the share of each reconstruction target's
meaning its anchor does not state, the frozen decoder's loss when it reads its own
pretraining memory, and what swapping two attributes or objects of the source costs it.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from read_trainer.demo.dataset import build_world  # noqa: E402
from read_trainer.demo.reconstruction_probe import probe_decoder  # noqa: E402
from read_trainer.demo.shipped_base import SHIPPED_DIR  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--decoder", default=str(SHIPPED_DIR / "t5"), help="T5 folder (default: the shipped base).")
    parser.add_argument("--cache", default=".cache", help="Cache folder for the world (the demo's default world).")
    parser.add_argument("--limit", type=int, default=1000, help="Images per split for the decoder losses.")
    parser.add_argument("--json", default=None, help="Also write the results here.")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads.")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    world = build_world(0, 4000, 500, 500, 96, cache_dir=Path(args.cache) / "world")
    result = probe_decoder(args.decoder, world, args.limit)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    return result


if __name__ == "__main__":
    main()
