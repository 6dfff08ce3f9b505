"""Publishing: the model card and the upload of an exported folder.

Only a plain ``CLIPModel`` + processor + card (+ the redacted training arguments and
evaluation results) ever leaves the machine: uploads name the files they may send
(``publish_files.allowed_files``: exact top-level names), so a decoder, the decoder projection, optimizer state,
TensorBoard logs or a skipped-rows report in the same folder stay behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

from huggingface_hub import HfApi, ModelCard, ModelCardData

from .nonfinite import assert_finite_folder
from .publish_files import (
    EXPORT_FILES,
    LOCAL_FOLDERS_KEY,
    LOCAL_PATHS_NAME,
    allowed_files,
    local_model_folders,
    redact_local_paths,
)

# Exact top-level names (weight shards are added from the index by ``allowed_files``).
HUB_ALLOW_PATTERNS = list(EXPORT_FILES)

CITATION = """@inproceedings{kwon2025read,
  title     = {Enhancing Compositional Reasoning in CLIP via Reconstruction and Alignment of Text Descriptions},
  author    = {Kwon, Jihoon and Min, Kyle and Sohn, Jy-yong},
  booktitle = {Advances in Neural Information Processing Systems},
  year      = {2025}
}"""

# Training settings worth showing in a card, in this order (the JSON has them all).
CARD_SETTINGS = (
    "reconstruction_weight", "alignment_weight", "num_hard_negatives", "decoder_name_or_path", "decoder_dropout",
    "reconstruction_target", "alignment_symmetric", "alignment_include_negatives", "use_peft", "lora_r",
    "lora_alpha", "lora_towers", "wise_alpha", "learning_rate", "weight_decay", "lr_scheduler_type", "warmup_steps",
    "num_train_epochs", "max_steps", "per_device_train_batch_size", "gradient_accumulation_steps", "bf16", "seed",
)


def build_model_card(*, model_id: str, base_model: str | None, training_args: Mapping[str, Any],
                     datasets: Sequence[str] = (), eval_results: list | None = None,
                     results_markdown: str | None = None, license: str | None = None,
                     scoring_note: str = "Scores use the cosine similarity of L2-normalised projected embeddings; "
                                         "a tie counts as wrong.") -> ModelCard:
    """A card whose metadata the Hub indexes and whose body tells a user how to load and judge the model.

    A base model that is a folder here, or that ``training_args`` records as a local folder
    (``local_folders``, written at export), is named as a local folder by its last component,
    and is not put in the metadata: the Hub would link it to whatever model has that id.
    """
    # Recorded at export, or folders here (the trainer's own card, built from its live settings).
    local = set(training_args.get(LOCAL_FOLDERS_KEY) or ()) | set(local_model_folders(training_args))
    base_is_local = bool(base_model) and (not _is_hub_id(base_model) or (
        "model_name_or_path" in local and redact_local_paths(base_model) == training_args.get("model_name_or_path")))
    data = ModelCardData(
        model_name=model_id.split("/")[-1], base_model=None if base_is_local else base_model or None,
        datasets=[d for d in datasets if _is_hub_id(d)] or None, library_name="transformers",
        pipeline_tag="zero-shot-image-classification", license=license,
        tags=["clip", "read", "compositionality", "vision-language", "zero-shot-image-classification"],
        eval_results=eval_results or None,
    )
    # The card's text shows names, never this machine's folders.
    base_model, training_args = redact_local_paths(base_model), redact_local_paths(dict(training_args))
    datasets = redact_local_paths(list(datasets))
    settings = "\n".join(f"| `{k}` | `{training_args[k]}`{' (a local folder)' if k in local else ''} |"
                         for k in CARD_SETTINGS if k in training_args)
    base_line = f"a local model folder, `{base_model}`" if base_is_local else f"`{base_model}`"
    data_line = ", ".join(f"`{d}`" for d in datasets) if datasets else "not recorded"
    body = f"""
# {model_id.split("/")[-1]}

A CLIP model fine-tuned with **READ** (REconstruction and Alignment of text Descriptions) from
{base_line}. READ adds two training-only losses to NegCLIP-style contrastive training: a frozen
T5 decoder reconstructs a caption from the CLIP text embedding (token level), and paraphrases are
aligned with their caption (sentence level). Nothing of them remains at inference: this is a plain
`CLIPModel`.

## Usage

```python
from PIL import Image
from transformers import CLIPModel, CLIPProcessor

model = CLIPModel.from_pretrained("{model_id}")
processor = CLIPProcessor.from_pretrained("{model_id}")
inputs = processor(text=["a red cube left of a blue sphere", "a blue cube left of a red sphere"],
                   images=Image.open("scene.png"), return_tensors="pt", padding=True)
probs = model(**inputs).logits_per_image.softmax(dim=-1)
```

## Training

Loss: `L = L_con + {training_args.get("reconstruction_weight")} · L_rec + {training_args.get("alignment_weight")} · L_align`
with {training_args.get("num_hard_negatives")} hard-negative captions per anchor.

Data: {data_line}

| setting | value |
|---|---|
{settings}

## Evaluation

{results_markdown.strip() if results_markdown else "No evaluation results were recorded for this checkpoint."}

{scoring_note}

## Citation

```bibtex
{CITATION}
```
"""
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")


def _is_hub_id(name: str | None) -> bool:
    """Hub metadata may only reference hub ids, not the local folders used offline."""
    return bool(name) and not Path(name).exists() and not name.startswith((".", "/", "~")) and name.count("/") <= 1


def read_training_args(folder: str | Path) -> dict:
    path = Path(folder) / "read_training_args.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def base_model_of(folder: str | Path) -> str:
    """The model the export in ``folder`` was fine-tuned from, as ``from_pretrained`` takes it here.

    A hub id as recorded; a local folder (``local_folders`` in ``read_training_args.json``) from the
    full path kept beside the export in ``read_local_paths.json``, which is never uploaded. A local
    base that is not on this machine is an error naming it, not a request to the Hub for its last name.
    """
    folder = Path(folder)
    recorded = read_training_args(folder)
    name = recorded.get("model_name_or_path")
    if not name:
        raise ValueError(f"{folder} records no base model (no read_training_args.json with model_name_or_path): "
                         "pass the base model yourself")
    if "model_name_or_path" not in (recorded.get(LOCAL_FOLDERS_KEY) or ()):
        return name
    local_file = folder / LOCAL_PATHS_NAME
    path = json.loads(local_file.read_text()).get("model_name_or_path") if local_file.is_file() else None
    if path and Path(path).is_dir():
        return path
    raise FileNotFoundError(f"{folder} was fine-tuned from a local folder named {name!r} "
                            f"({'at ' + path if path else 'its path is not recorded here'}), which is not on this "
                            "machine: pass that folder (or the hub id it was saved from) as the base model")


def upload_folder(folder: str | Path, repo_id: str, *, token: str | None = None, private: bool | None = None,
                  revision: str | None = None, commit_message: str = "Upload READ CLIPModel",
                  run_as_future: bool = False, card: ModelCard | None = None):
    """Create the repo if needed and upload the allowed files of ``folder``.

    ``token=None`` lets huggingface_hub find one the usual way (``HF_TOKEN``, the login cache).
    With ``card``, it is uploaded as the README.md instead of one in ``folder``, and ``folder``
    is left as it was: the upload reads from a temporary folder of links to its files.
    """
    assert_finite_folder(str(folder))  # a diverged model is never published
    files = allowed_files(str(folder), include_card=card is None)
    api = HfApi(token=token)
    if card is None:
        repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
        return api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message=commit_message,
                                 revision=revision, allow_patterns=files, run_as_future=run_as_future)
    if run_as_future:
        raise ValueError("upload_folder with a card uploads synchronously (its staging folder is removed after)")
    with tempfile.TemporaryDirectory(prefix="read-upload-") as staging:
        for name in files:
            _link_or_copy(Path(folder, name).resolve(), Path(staging, name))
        card.save(Path(staging, "README.md"))
        repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
        return api.upload_folder(repo_id=repo_id, folder_path=staging, commit_message=commit_message,
                                 revision=revision, allow_patterns=files + ["README.md"])


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.symlink(source, target)  # uploads read through links: no copy of the weights
    except OSError:
        shutil.copy2(source, target)
