"""Paraphrases: generated with any local or hub `transformers` model, kept in a sidecar file.

The sidecar is a JSONL file with one line per caption, ``{"caption": str, "paraphrases":
[str, ...]}``: :func:`write_sidecar` writes it, ``--paraphrase_file`` reads it
(:func:`load_paraphrase_file`) and :func:`attach_paraphrases` adds one list per caption
to a dataset. A *per-image* file, one JSON object ``{image id: [paraphrases]}`` (READ's
``data/zero.json`` keyed by COCO ``cocoid``), is read by :func:`load_image_paraphrase_file`
and joined on an image-id column by :func:`attach_image_paraphrases`.
Seq2seq models (T5, BART, ...) get the prompt as encoder input; decoder-only models
continue the prompt (or, with ``chat=True``, the model's chat template around it) and the
prompt is cut from what they return.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import datasets
import torch
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

DEFAULT_TEMPLATE = "paraphrase: {caption}"


@dataclass
class ParaphraseFilter:
    """Keeps a candidate only if it is a usable, different sentence of reasonable length."""

    min_words: int = 3
    max_length_ratio: float = 2.0  # candidate words / caption words
    min_length_ratio: float = 0.5

    def __call__(self, caption: str, candidate: str) -> bool:
        text = candidate.strip()
        if not text or _normalize(text) == _normalize(caption):
            return False
        words, source_words = len(text.split()), max(1, len(caption.split()))
        return words >= self.min_words and self.min_length_ratio <= words / source_words <= self.max_length_ratio


def _normalize(text: str) -> str:
    return " ".join(text.lower().strip(" .").split())


def load_generator(name_or_path: str, device: str | None = None, dtype: torch.dtype | None = None,
                   revision: str | None = None):
    """(model, tokenizer, is_seq2seq) for a generation checkpoint (hub id or local folder, at ``revision``)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    config = AutoConfig.from_pretrained(name_or_path, revision=revision)
    is_seq2seq = bool(getattr(config, "is_encoder_decoder", False))
    model_class = AutoModelForSeq2SeqLM if is_seq2seq else AutoModelForCausalLM
    model = model_class.from_pretrained(name_or_path, dtype=dtype, revision=revision).eval()
    if device:
        model.to(device)
    tokenizer = AutoTokenizer.from_pretrained(name_or_path, revision=revision)
    if not is_seq2seq:
        # Decoder-only models need left padding to continue every prompt from its end.
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer, is_seq2seq


@torch.no_grad()
def generate_paraphrases(captions: Iterable[str], model, tokenizer, is_seq2seq: bool, *,
                         template: str = DEFAULT_TEMPLATE, num_paraphrases: int = 2, batch_size: int = 32,
                         max_new_tokens: int = 40, do_sample: bool = True, temperature: float = 0.9, top_p: float = 0.95,
                         keep: ParaphraseFilter | None = None, seed: int = 2025,
                         chat: bool = False) -> Iterator[tuple[str, list[str]]]:
    """Yield ``(caption, kept paraphrases)`` for every caption, in batches.

    ``num_paraphrases`` candidates are drawn per caption; ``keep`` filters them (empty,
    identical to the caption, too short/long are dropped) and duplicates are removed.
    ``chat=True`` wraps each prompt in the tokenizer's chat template as one user turn
    (instruction-tuned models answer that, not a bare continuation).
    """
    if "{caption}" not in template:
        raise ValueError(f"prompt template must contain '{{caption}}', got {template!r}")
    keep = keep or ParaphraseFilter()
    captions = list(captions)
    torch.manual_seed(seed)
    device = next(model.parameters()).device
    for start in tqdm(range(0, len(captions), batch_size), desc="paraphrasing", unit="batch"):
        batch = captions[start: start + batch_size]
        prompts = [template.format(caption=c) for c in batch]
        if chat:
            prompts = [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                                     add_generation_prompt=True) for p in prompts]
        inputs = tokenizer(prompts, return_tensors="pt", padding=True, truncation=True,
                           add_special_tokens=not chat).to(device)
        output = model.generate(
            **inputs, max_new_tokens=max_new_tokens, num_return_sequences=num_paraphrases, do_sample=do_sample,
            temperature=temperature if do_sample else None, top_p=top_p if do_sample else None,
            num_beams=1 if do_sample else num_paraphrases, pad_token_id=tokenizer.pad_token_id,
        )
        if not is_seq2seq:
            output = output[:, inputs["input_ids"].shape[1]:]  # drop the prompt
        texts = tokenizer.batch_decode(output, skip_special_tokens=True)
        for i, caption in enumerate(batch):
            candidates = [t.strip() for t in texts[i * num_paraphrases: (i + 1) * num_paraphrases]]
            yield caption, [c for c in dict.fromkeys(candidates) if keep(caption, c)]


def write_sidecar(pairs: Iterable[tuple[str, list[str]]], path: str | Path) -> dict[str, int]:
    """Write the JSONL sidecar; return counts (captions, with paraphrases, paraphrases)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    counts = {"captions": 0, "with_paraphrases": 0, "paraphrases": 0}
    with path.open("w", encoding="utf-8") as f:
        for caption, paraphrases in pairs:
            counts["captions"] += 1
            counts["with_paraphrases"] += bool(paraphrases)
            counts["paraphrases"] += len(paraphrases)
            f.write(json.dumps({"caption": caption, "paraphrases": paraphrases}) + "\n")
    return counts


def load_paraphrase_file(path: str) -> dict[str, list[str]]:
    """Read a sidecar JSONL: one ``{"caption": str, "paraphrases": [str, ...]}`` per line.

    Anything else on a line (invalid JSON or UTF-8, a missing key, a caption that is not a
    string, paraphrases that are not a list of strings) is a ``ValueError`` naming the
    file and line: a single string would otherwise be read as a list of its letters.
    """
    file = Path(path)
    if not file.is_file():
        # A wrong path must not silently train without paraphrases.
        raise FileNotFoundError(f"paraphrase_file {path!r} does not exist")
    if is_image_paraphrase_file(file):
        raise ValueError(f"paraphrase_file {path!r} is a per-image file ({{image id: [paraphrases]}}); it is joined "
                         "on an image-id column (--paraphrase_key_column) when the data is loaded, which --streaming "
                         "does not do: put the paraphrases into the shards (recipes/make_shards.py --paraphrase_file) "
                         "and pass --paraphrase_file none")
    table: dict[str, list[str]] = {}
    with file.open("rb") as f:
        for number, raw in enumerate(f, 1):
            where = f"{path}:{number}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise ValueError(f"{where}: not valid UTF-8 ({err.reason} at byte {err.start})") from None
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{where}: not valid JSON ({err.msg} at column {err.colno})") from None
            if not isinstance(record, dict) or "caption" not in record or "paraphrases" not in record:
                got = sorted(record) if isinstance(record, dict) else type(record).__name__
                raise ValueError(f"{where}: expected an object with keys 'caption' and 'paraphrases', got {got}")
            caption, paraphrases = record["caption"], record["paraphrases"]
            if not isinstance(caption, str):
                raise ValueError(f"{where}: 'caption' must be a string, got {type(caption).__name__}")
            if not isinstance(paraphrases, list) or not all(isinstance(p, str) for p in paraphrases):
                raise ValueError(f"{where}: 'paraphrases' must be a list of strings, got {paraphrases!r:.80}")
            table.setdefault(caption.strip(), []).extend(p.strip() for p in paraphrases if p.strip())
    return table


def attach_paraphrases(dataset: datasets.Dataset, table: dict[str, list[str]], source: str,
                       require_match: bool = True) -> datasets.Dataset:
    """Add a ``paraphrases`` column with one list per caption, looked up in ``table``.

    The lists align with the captions field by position, blank and missing captions
    included (they get an empty list), so the collator can drop a blank caption together
    with its list. Captions without an entry get an empty list (the collator then falls
    back to another caption of the image); a file that matches no caption at all is an error.
    """
    def _lookup(batch):
        return {"paraphrases": [[table.get(c.strip(), []) if isinstance(c, str) else []
                                 for c in ([caps] if isinstance(caps, str) or caps is None else caps)]
                                for caps in batch["captions"]]}

    return _attach(dataset, _lookup, source, require_match, "caption of the dataset (keys are caption texts)", "rows")


def _attach(dataset: datasets.Dataset, lookup, source: str, require_match: bool, no_match: str,
            unit: str) -> datasets.Dataset:
    """Replace ``dataset``'s ``paraphrases`` column with ``lookup``'s; an error when it matches nothing."""
    if "paraphrases" in dataset.column_names:
        dataset = dataset.remove_columns("paraphrases")
    dataset = dataset.map(lookup, batched=True, desc="attaching paraphrases")
    covered = sum(any(p) for p in dataset["paraphrases"])  # a row with any paraphrase (per caption or flat)
    if require_match and covered == 0:
        raise ValueError(f"paraphrase_file {source!r} matches no {no_match}")
    logger.info("paraphrases from %s cover %d of %d %s", source, covered, len(dataset), unit)
    return dataset


def is_image_paraphrase_file(path: str | Path) -> bool:
    """Whether ``path`` is one JSON object ``{image id: [paraphrases]}`` rather than a caption-keyed JSONL sidecar.

    Only the start of the file is read: a sidecar's first line is a whole ``{"caption": ...}``
    object, a per-image file's first line is not.
    """
    with Path(path).open("rb") as f:
        first = f.readline(1 << 20).decode("utf-8", errors="replace").strip()
    if not first.startswith("{"):
        return False
    try:
        record = json.loads(first)
    except json.JSONDecodeError:
        return True  # an object spanning lines: a per-image JSON file
    return not ("caption" in record and "paraphrases" in record)


def load_image_paraphrase_file(path: str | Path) -> dict[str, list[str]]:
    """Read ``{image id: [paraphrases, ...]}`` (READ's ``data/zero.json``); ids become strings.

    Anything else (not JSON, not an object, a value that is not a list of strings) is a
    ``ValueError`` naming the file and the id.
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"paraphrase_file {str(path)!r} does not exist")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not a valid JSON file ({err})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected one object {{image id: [paraphrases]}}, got {type(data).__name__}")
    table = {}
    for key, value in data.items():
        if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
            raise ValueError(f"{path}: image {key!r}: paraphrases must be a list of strings, got {value!r:.80}")
        table[str(key).strip()] = [p.strip() for p in value if p.strip()]
    return table


def attach_image_paraphrases(dataset: datasets.Dataset, table: dict[str, list[str]], key_column: str,
                             source: str, require_match: bool = True) -> datasets.Dataset:
    """Add a ``paraphrases`` column: each row's image paraphrases, looked up by ``str(row[key_column])``.

    The list is one flat list per row (it describes the image, so every caption shares it).
    A missing key column, or a file that matches no row, is an error naming both.
    """
    if key_column not in dataset.column_names:
        raise ValueError(f"paraphrase_file {source!r} is keyed by image id, but the dataset has no "
                         f"{key_column!r} column (it has {dataset.column_names}); pass --paraphrase_key_column, or "
                         "--paraphrase_file none if the file belongs to other data (the reference YAML's is COCO's)")

    def _lookup(batch):
        return {"paraphrases": [table.get(str(k).strip(), []) for k in batch[key_column]]}

    return _attach(dataset, _lookup, source, require_match,
                   f"row of the dataset (keys are {key_column!r} values)", "images")


def paraphrase_provenance(generator: str, revision: str | None, template: str, chat: bool, **settings) -> dict:
    """What a generated paraphrase file was made with: written beside it, so the file can be remade."""
    import hashlib

    return {"generator": generator, "revision": revision, "chat_template": chat, "prompt": template,
            "prompt_sha256": hashlib.sha256(template.encode("utf-8")).hexdigest(), **settings}
