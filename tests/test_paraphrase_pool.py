"""The official collator's alignment draw (``paraphrase_sampling: image_pool``) and per-image paraphrase files."""

from __future__ import annotations

import collections
import json
import random

import pytest
from conftest import CAPTIONS, random_image

from read_trainer.data.collator import ReadCollator
from read_trainer.data.loading import DataArguments, load_read_datasets
from read_trainer.data.paraphrases import load_paraphrase_file

FIVE = ["c0 a dog", "c1 a dog on grass", "c2 a brown dog", "c3 a dog running", "c4 a dog outside"]


def _draws(collator: ReadCollator, row: dict, anchor_index: int, n: int = 7000) -> collections.Counter:
    rng = random.Random(0)
    captions = row["captions"]
    return collections.Counter(collator._paraphrase(row, captions, anchor_index, rng) for _ in range(n))


def _within(counts: collections.Counter, n: int, support: int) -> bool:
    expected = n / support
    sigma = (n * (1 / support) * (1 - 1 / support)) ** 0.5
    return all(abs(c - expected) < 5 * sigma for c in counts.values())


def test_image_pool_draws_uniformly_from_the_other_captions_and_the_images_paraphrases():
    collator = ReadCollator(processor=None, paraphrase_sampling="image_pool")
    row = {"row_id": 0, "captions": FIVE, "paraphrases": ["p0 a dog", "p1 a dog", "p2 a dog"]}
    counts = _draws(collator, row, anchor_index=2)
    assert set(counts) == {FIVE[0], FIVE[1], FIVE[3], FIVE[4], "p0 a dog", "p1 a dog", "p2 a dog"}
    assert FIVE[2] not in counts and _within(counts, 7000, 7)


def test_image_pool_takes_every_captions_paraphrases_from_per_caption_lists():
    collator = ReadCollator(processor=None, paraphrase_sampling="image_pool")
    row = {"row_id": 0, "captions": FIVE, "paraphrases": [["a0"], ["a1", "a1b"], [], ["a3"], ["a4"]]}
    counts = _draws(collator, row, anchor_index=2, n=9000)
    assert set(counts) == {FIVE[0], FIVE[1], FIVE[3], FIVE[4], "a0", "a1", "a1b", "a3", "a4"}
    assert _within(counts, 9000, 9)


def test_image_pool_without_paraphrases_is_two_distinct_human_captions():
    collator = ReadCollator(processor=None, paraphrase_sampling="image_pool")
    counts = _draws(collator, {"row_id": 0, "captions": FIVE}, anchor_index=0, n=4000)
    assert set(counts) == set(FIVE[1:]) and _within(counts, 4000, 4)


def test_caption_sampling_keeps_to_the_anchors_own_paraphrases():
    collator = ReadCollator(processor=None, paraphrase_sampling="caption")
    per_caption = {"row_id": 0, "captions": FIVE, "paraphrases": [["a0"], ["a1", "a1b"], [], ["a3"], ["a4"]]}
    assert set(_draws(collator, per_caption, anchor_index=1, n=200)) == {"a1", "a1b"}
    assert set(_draws(collator, per_caption, anchor_index=2, n=400)) == set(FIVE) - {FIVE[2]}  # none of its own
    per_image = {"row_id": 0, "captions": FIVE, "paraphrases": ["p0", "p1"]}
    assert set(_draws(collator, per_image, anchor_index=3, n=200)) == {"p0", "p1"}


def _train_file(tmp_path):
    lines = []
    for i, captions in enumerate(CAPTIONS):
        random_image(i).save(tmp_path / f"{i}.png")
        lines.append(json.dumps({"image": f"{i}.png", "captions": captions, "cocoid": 100 + i}))
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_per_image_file_is_joined_on_cocoid(tmp_path):
    train = _train_file(tmp_path)
    zero = tmp_path / "zero.json"
    zero.write_text(json.dumps({"100": ["in short a red cube", "a cube, red"], "102": ["a cat naps"]}))
    data, _ = load_read_datasets(DataArguments(train_file=str(train), paraphrase_file=str(zero)))
    assert data["paraphrases"] == [["in short a red cube", "a cube, red"], [], ["a cat naps"], []]
    # 'none' states "no paraphrase file" over a YAML that names one.
    data, _ = load_read_datasets(DataArguments(train_file=str(train), paraphrase_file="none"))
    assert "paraphrases" not in data.column_names
    unrelated = tmp_path / "other.json"
    unrelated.write_text(json.dumps({"999": ["x"]}))
    with pytest.raises(ValueError, match=r"other.json' matches no row of the dataset \(keys are 'cocoid' values\)"):
        load_read_datasets(DataArguments(train_file=str(train), paraphrase_file=str(unrelated)))
    with pytest.raises(ValueError, match=r"has no 'imageid' column"):
        load_read_datasets(DataArguments(train_file=str(train), paraphrase_file=str(zero),
                                         paraphrase_key_column="imageid"))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"100": "not a list"}))
    with pytest.raises(ValueError, match=r"bad.json: image '100': paraphrases must be a list of strings"):
        load_read_datasets(DataArguments(train_file=str(train), paraphrase_file=str(bad)))
    with pytest.raises(ValueError, match="is a per-image file .* --streaming"):
        load_paraphrase_file(str(zero))


def test_the_trainer_hands_paraphrase_sampling_to_its_collator(tiny_models, tmp_path):
    from read_trainer import ReadConfig, ReadTrainer

    clip, t5 = tiny_models
    train = _train_file(tmp_path)
    data, _ = load_read_datasets(DataArguments(train_file=str(train)))
    config = ReadConfig(output_dir=str(tmp_path / "out"), model_name_or_path=clip, decoder_name_or_path=t5,
                        paraphrase_sampling="image_pool", report_to="none", use_cpu=True)
    from read_trainer.data.negatives import HardNegativeGenerator

    trainer = ReadTrainer(args=config, train_dataset=data, negative_generator=HardNegativeGenerator(seed=0))
    assert trainer.data_collator.paraphrase_sampling == "image_pool"
    with pytest.raises(ValueError, match="paraphrase_sampling must be one of"):
        ReadConfig(output_dir="x", paraphrase_sampling="pool")


def test_generated_per_image_file_records_its_generator_and_prompt(tiny_models, tmp_path):
    import hashlib

    from conftest import load_recipe

    make_paraphrases = load_recipe("make_paraphrases")
    _, t5 = tiny_models
    train = _train_file(tmp_path)
    template = "paraphrase: {caption}"
    loose = ["--min_words", "1", "--min_length_ratio", "0", "--max_length_ratio", "100"]
    common = ["--model", t5, "--train_file", str(train), "--template", template, "--greedy", "true",
              "--num_paraphrases", "1", *loose]
    make_paraphrases.main([*common, "--output", str(tmp_path / "per_caption.jsonl")])
    make_paraphrases.main([*common, "--output", str(tmp_path / "per_image.json"), "--output_format", "per_image"])
    by_caption = load_paraphrase_file(str(tmp_path / "per_caption.jsonl"))
    per_image = json.loads((tmp_path / "per_image.json").read_text())
    # Greedy decoding: the same paraphrases, grouped by image in caption order, keyed by cocoid.
    assert per_image == {str(100 + i): [p for c in caps for p in by_caption.get(c, [])] for i, caps in enumerate(CAPTIONS)}
    provenance = json.loads((tmp_path / "per_image.json.provenance.json").read_text())
    assert provenance["generator"] == t5 and provenance["revision"] is None and provenance["prompt"] == template
    assert provenance["prompt_sha256"] == hashlib.sha256(template.encode()).hexdigest()
    assert provenance["greedy"] and provenance["num_paraphrases"] == 1 and provenance["output_format"] == "per_image"
    # The per-image file trains through the pool draw.
    data, _ = load_read_datasets(DataArguments(train_file=str(train), paraphrase_file=str(tmp_path / "per_image.json")))
    assert data["paraphrases"] == [per_image[str(100 + i)] for i in range(len(CAPTIONS))]
