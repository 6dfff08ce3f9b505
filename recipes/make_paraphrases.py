"""Write LLM paraphrases of every caption to a sidecar JSONL for ``--paraphrase_file``.

    python recipes/make_paraphrases.py --model google/flan-t5-large \
        --train_file dataset_coco.json --image_root coco --output paraphrases.jsonl

Any seq2seq or causal-LM checkpoint works (a hub id or a local folder, pinned with
``--revision``); ``--chat true`` wraps the prompt in an instruction-tuned model's chat template.
The data flags are run_read.py's, so the captions come from the same source the training run
will read. ``--output_format per_image`` writes one JSON object ``{image id: [paraphrases]}``
(the image id from ``--image_key_column``), the format READ's ``zero.json`` has and
``--paraphrase_sampling image_pool`` draws from. Beside the output, ``<output>.provenance.json``
records the generator, its revision, the prompt and its sha256, and the decoding settings.
``recipes/prepare_data.py paraphrases --source generate`` runs this with pinned defaults.

Offline: fetch the model once on a connected machine into a folder and pass that folder,

    hf download google/flan-t5-large --local-dir models/flan-t5-large
    python recipes/make_paraphrases.py --model models/flan-t5-large ...

(or set HF_HUB_OFFLINE=1 with the model in the Hugging Face cache). An id that is neither
a folder, cached, nor reachable on the Hub stops the run at once with one ``error:`` line.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from read_trainer.cli import UsageError, parse_args_with_config, run_recipe
from read_trainer.data.collator import as_text_list
from read_trainer.data.loading import DataArguments, load_read_datasets
from read_trainer.data.paraphrases import (
    DEFAULT_TEMPLATE,
    ParaphraseFilter,
    generate_paraphrases,
    load_generator,
    paraphrase_provenance,
    write_sidecar,
)
from read_trainer.resolve import resolve_id


@dataclass
class ParaphraseArguments:
    model: str = field(metadata={"help": "Generation checkpoint: hub id or local folder (seq2seq or causal LM)."})
    output: str = field(metadata={"help": "Sidecar JSONL to write."})
    template: str = field(default=DEFAULT_TEMPLATE, metadata={"help": "Prompt; {caption} is replaced."})
    num_paraphrases: int = field(default=2, metadata={"help": "Candidates drawn per caption."})
    batch_size: int = field(default=32, metadata={"help": "Captions per generate() call."})
    max_new_tokens: int = field(default=40, metadata={"help": "Generation length limit."})
    greedy: bool = field(default=False, metadata={"help": "Beam search instead of sampling."})
    min_words: int = field(default=3, metadata={"help": "Drop paraphrases shorter than this."})
    max_length_ratio: float = field(default=2.0, metadata={"help": "Drop paraphrases longer than ratio × caption."})
    min_length_ratio: float = field(default=0.5, metadata={"help": "Drop paraphrases shorter than ratio × caption."})
    device: str | None = field(default=None, metadata={"help": "torch device (default: cpu)."})
    seed: int = field(default=2025, metadata={"help": "Sampling seed."})
    revision: str | None = field(default=None, metadata={"help": "Model revision (a commit) to load."})
    dtype: str = field(default="auto", metadata={"help": "Weights dtype: auto (bfloat16 on CUDA, else float32), "
                       "bfloat16 or float32.", "choices": ["auto", "bfloat16", "float32"]})
    chat: bool = field(default=False, metadata={"help": "Wrap the prompt in the model's chat template."})
    output_format: str = field(
        default="jsonl", metadata={"help": "jsonl: one {caption, paraphrases} line per caption; per_image: one JSON "
                                   "object {image id: [paraphrases of all its captions]}.",
                                   "choices": ["jsonl", "per_image"]})
    image_key_column: str = field(default="cocoid", metadata={"help": "Image-id column for --output_format per_image."})


def main(argv=None) -> dict:
    data_args, args = parse_args_with_config((DataArguments, ParaphraseArguments), argv)
    data_args.skip_scan = True
    resolve_id(args.model, "model")  # before reading any caption: an unreachable id fails in seconds
    train, _ = load_read_datasets(data_args)
    if args.output_format == "per_image" and args.image_key_column not in train.column_names:
        raise UsageError(f"--output_format per_image needs the image-id column {args.image_key_column!r}; the data has "
                         f"{train.column_names} (pass --image_key_column)")
    captions = list(dict.fromkeys(c for value in train["captions"] for c in as_text_list(value)))
    import torch

    dtype = {"bfloat16": torch.bfloat16, "float32": torch.float32}.get(args.dtype)
    if dtype is None:  # auto
        dtype = torch.bfloat16 if str(args.device or "").startswith("cuda") else torch.float32
    model, tokenizer, is_seq2seq = load_generator(args.model, device=args.device, revision=args.revision, dtype=dtype)
    pairs = generate_paraphrases(
        captions, model, tokenizer, is_seq2seq, template=args.template, num_paraphrases=args.num_paraphrases,
        batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, do_sample=not args.greedy, seed=args.seed,
        keep=ParaphraseFilter(args.min_words, args.max_length_ratio, args.min_length_ratio), chat=args.chat,
    )
    if args.output_format == "per_image":
        counts = write_per_image(pairs, train, args.image_key_column, args.output)
    else:
        counts = write_sidecar(pairs, args.output)
    provenance = paraphrase_provenance(
        args.model, args.revision, args.template, args.chat, num_paraphrases=args.num_paraphrases,
        greedy=args.greedy, max_new_tokens=args.max_new_tokens, seed=args.seed, min_words=args.min_words,
        length_ratio=[args.min_length_ratio, args.max_length_ratio], output_format=args.output_format, **counts)
    Path(f"{args.output}.provenance.json").write_text(json.dumps(provenance, indent=1) + "\n")
    print(f"{counts['captions']} captions, {counts['with_paraphrases']} with at least one paraphrase, "
          f"{counts['paraphrases']} paraphrases -> {args.output}")
    return counts


def write_per_image(pairs, train, key_column: str, output: str) -> dict[str, int]:
    """``{image id: [paraphrases of its captions, in caption order]}``, written atomically."""
    by_caption = dict(pairs)
    table: dict[str, list[str]] = {}
    for key, value in zip(train[key_column], train["captions"]):
        table.setdefault(str(key), []).extend(p for c in as_text_list(value) for p in by_caption.get(c, []))
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(table, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)
    return {"captions": len(by_caption), "with_paraphrases": sum(bool(v) for v in by_caption.values()),
            "paraphrases": sum(len(v) for v in by_caption.values()), "images": len(table)}


if __name__ == "__main__":
    sys.exit(run_recipe(main))
