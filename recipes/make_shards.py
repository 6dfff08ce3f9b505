"""Write a training dataset as shards for ``run_read.py --streaming``.

    python recipes/make_shards.py --train_file dataset_coco.json --image_root coco \
        --output shards/coco --samples_per_shard 1000
    python recipes/make_shards.py --dataset_name my/hub-dataset --output shards/x --format parquet

The data flags are run_read.py's, so anything a training run loads (a hub id, an
imagefolder, a save_to_disk folder, JSON/JSONL/CSV/Parquet files, a Karpathy file, plus
``--paraphrase_file``) becomes webdataset ``.tar`` (default) or ``.parquet`` shards, each
sample keyed by its row number. Then: ``run_read.py --streaming --train_file shards/coco``.
Write a multiple of (processes × DataLoader workers) shards so that each reads its own.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import datasets

from read_trainer.cli import parse_args_with_config, run_recipe
from read_trainer.data.loading import DataArguments, load_read_datasets
from read_trainer.data.shards import PIL_FORMATS, write_parquet_shards, write_webdataset_shards


@dataclass
class ShardArguments:
    output: str = field(metadata={"help": "Folder the shards are written to."})
    format: str = field(default="webdataset", metadata={"help": "Shard format.", "choices": ["webdataset", "parquet"]})
    samples_per_shard: int = field(default=1000, metadata={"help": "Samples per shard (the last one may hold fewer)."})
    prefix: str = field(default="train", metadata={"help": "Shard file names: <prefix>-00000.tar, ..."})
    image_format: str = field(
        default="jpg", metadata={"help": "Image encoding in the shards; images already in it keep their bytes.",
                                 "choices": sorted(PIL_FORMATS)})


def main(argv=None) -> list[str]:
    data_args, args = parse_args_with_config((DataArguments, ShardArguments), argv, description=__doc__)
    train, _ = load_read_datasets(data_args)
    if isinstance(train.features.get("image"), datasets.Image):
        # Keep the encoded bytes: decoding and re-encoding every image would cost time and quality.
        train = train.cast_column("image", datasets.Image(decode=False))
    write = write_webdataset_shards if args.format == "webdataset" else write_parquet_shards
    paths = write(train, args.output, args.samples_per_shard, prefix=args.prefix, image_format=args.image_format)
    print(f"{len(train)} samples in {len(paths)} {args.format} shards -> {args.output}")
    return paths


if __name__ == "__main__":
    sys.exit(run_recipe(main))
