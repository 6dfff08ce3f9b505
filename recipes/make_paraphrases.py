"""Write LLM paraphrases of every caption to a sidecar JSONL for ``--paraphrase_file``.

    python recipes/make_paraphrases.py --model google/flan-t5-large \
        --train_file dataset_coco.json --image_root coco --output paraphrases.jsonl

Any seq2seq or causal-LM checkpoint works (a hub id or a local folder). The data flags are
run_read.py's, so the captions come from the same source the training run will read.

Offline: fetch the model once on a connected machine into a folder and pass that folder,

    hf download google/flan-t5-large --local-dir models/flan-t5-large
    python recipes/make_paraphrases.py --model models/flan-t5-large ...

(or set HF_HUB_OFFLINE=1 with the model in the Hugging Face cache). An id that is neither
a folder, cached, nor reachable on the Hub stops the run at once with one ``error:`` line.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from read_trainer.cli import parse_args_with_config, run_recipe
from read_trainer.data.collator import as_text_list
from read_trainer.data.loading import DataArguments, load_read_datasets
from read_trainer.data.paraphrases import (
    DEFAULT_TEMPLATE,
    ParaphraseFilter,
    generate_paraphrases,
    load_generator,
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


def main(argv=None) -> dict:
    data_args, args = parse_args_with_config((DataArguments, ParaphraseArguments), argv)
    data_args.skip_scan = True
    resolve_id(args.model, "model")  # before reading any caption: an unreachable id fails in seconds
    train, _ = load_read_datasets(data_args)
    captions = list(dict.fromkeys(c for value in train["captions"] for c in as_text_list(value)))
    model, tokenizer, is_seq2seq = load_generator(args.model, device=args.device)
    pairs = generate_paraphrases(
        captions, model, tokenizer, is_seq2seq, template=args.template, num_paraphrases=args.num_paraphrases,
        batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, do_sample=not args.greedy, seed=args.seed,
        keep=ParaphraseFilter(args.min_words, args.max_length_ratio, args.min_length_ratio),
    )
    counts = write_sidecar(pairs, args.output)
    print(f"{counts['captions']} captions, {counts['with_paraphrases']} with at least one paraphrase, "
          f"{counts['paraphrases']} paraphrases -> {args.output}")
    return counts


if __name__ == "__main__":
    sys.exit(run_recipe(main))
