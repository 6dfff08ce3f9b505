"""The paraphrase file the reference recipe aligns anchors with.

Three sources, chosen explicitly:

- ``official``: READ-CLIP's ``data/zero.json`` at the pinned commit, verified by its git blob
  SHA-1, copied to ``<out>/zero.json``: ``{cocoid: [paraphrases]}``. How it was generated (model,
  prompt) is stated nowhere in that repository.
- ``generate``: ``recipes/make_paraphrases.py`` with the pinned defaults below (one paraphrase per
  human caption, greedy), written per image to ``<out>/generated.json`` with a provenance file
  naming the generator, its revision and the sha256 of the prompt.
- ``none``: no file; the alignment positive is then another human caption of the same image
  (what the released READ code trained with, since its path to ``zero.json`` is one folder too high).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..cli import UsageError
from .store import DataStore

SOURCES = ("official", "generate", "none")
OFFICIAL = ("read-zero-paraphrases", "zero.json")

# The pinned generation defaults: an open, Apache-2.0, instruction-tuned model of another family
# than SugarCrepe++'s Mistral generator (so no benchmark's style leaks into training), at a fixed
# commit, greedy decoding, and a prompt that keeps what compositional benchmarks test.
DEFAULT_GENERATOR = "Qwen/Qwen2.5-7B-Instruct"
DEFAULT_GENERATOR_REVISION = "a09a35458c702b33eeacc393d103063234e8bc28"
DEFAULT_PROMPT = ('Paraphrase the given image caption "{caption}" concisely while preserving its meaning. Keep every '
                  "object, attribute, count and spatial or action relation unchanged; change wording and word order. "
                  "Answer with the paraphrase only.")


def validate_image_paraphrases(path: Path, train_table: Path | None = None) -> dict:
    """Counts of a ``{image id: [paraphrases]}`` file, and its coverage of the training images."""
    from ..data.paraphrases import load_image_paraphrase_file

    table = load_image_paraphrase_file(path)
    summary = {"images": len(table), "paraphrases": sum(len(v) for v in table.values())}
    if train_table is not None and train_table.is_file():
        with train_table.open(encoding="utf-8") as f:
            ids = [json.loads(line)["cocoid"] for line in f if line.strip()]
        covered = sum(1 for i in ids if table.get(str(i)))
        summary.update(train_images=len(ids), train_images_with_paraphrases=covered)
        if covered == 0:
            raise UsageError(f"{path} has paraphrases for none of the {len(ids)} training images (keys are cocoid)")
    return summary


def prepare_official(store: DataStore, out: str | Path, train_table: Path | None = None) -> dict:
    """``zero.json`` verified by its git blob SHA-1 and copied to ``<out>/zero.json`` (skipped when done)."""
    out = Path(out)
    target, provenance_file = out / "zero.json", out / "zero.provenance.json"
    source = store.source(OFFICIAL[0])
    file = source.file(OFFICIAL[1])
    if provenance_file.is_file() and target.is_file():
        from .fetch import digests_of

        if digests_of(target, ["git_sha1"])["git_sha1"] == file.git_sha1:
            return json.loads(provenance_file.read_text())
    downloaded = store.file(*OFFICIAL)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "zero.json.tmp"
    shutil.copyfile(downloaded, tmp)
    summary = validate_image_paraphrases(tmp, train_table)
    tmp.replace(target)
    provenance = {"source": "official", "url": file.url, "git_sha1": file.git_sha1,
                  "checksum_source": file.checksum_source, **summary,
                  "generator": "not stated by the READ-CLIP repository"}
    provenance_file.write_text(json.dumps(provenance, indent=1) + "\n")
    return provenance


def generate_command(train_table: Path, out: Path, model: str = DEFAULT_GENERATOR,
                     revision: str | None = DEFAULT_GENERATOR_REVISION, prompt: str = DEFAULT_PROMPT,
                     device: str | None = None, batch_size: int = 64) -> list[str]:
    """The ``make_paraphrases.py`` arguments that write ``<out>/generated.json`` with the pinned defaults."""
    args = ["--model", model, "--train_file", str(train_table), "--output", str(out / "generated.json"),
            "--template", prompt, "--chat", "true", "--greedy", "true", "--num_paraphrases", "1",
            "--output_format", "per_image", "--image_key_column", "cocoid", "--batch_size", str(batch_size),
            "--max_new_tokens", "40"]
    if revision:
        args += ["--revision", revision]
    if device:
        args += ["--device", device]
    return args
