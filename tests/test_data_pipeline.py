"""Loading (Karpathy JSON, files, sidecar paraphrases) and the up-front scan of every row."""

import json

import datasets
import pytest
from conftest import load_recipe, random_image, write_caption_jsonl
from PIL import Image

from read_trainer.data.collator import BadRowError
from read_trainer.data.loading import DataArguments, load_read_datasets
from read_trainer.data.scan import scan_dataset


def _karpathy(tmp_path):
    root = tmp_path / "coco"
    (root / "train2014").mkdir(parents=True)
    (root / "val2014").mkdir()
    images = []
    for i, split in enumerate(["train", "restval", "val", "test", "train"]):
        folder = "train2014" if split in ("train", "restval") else "val2014"
        name = f"COCO_{folder}_{i:012d}.jpg"
        random_image(i).save(root / folder / name)
        images.append({"filepath": folder, "filename": name, "split": split, "cocoid": 100 + i,
                       "sentences": [{"raw": f"caption {j} of image {i} ", "sentid": 10 * i + j} for j in range(5)]})
    path = tmp_path / "dataset_coco.json"
    path.write_text(json.dumps({"images": images, "dataset": "coco"}))
    return path, root


def test_karpathy_json_selects_splits_and_resolves_images(tmp_path):
    path, root = _karpathy(tmp_path)
    args = DataArguments(train_file=str(path), validation_file=str(path), image_root=str(root))
    train, evaluation = load_read_datasets(args)
    assert len(train) == 3 and len(evaluation) == 1  # train + restval; val
    assert train["row_id"] == [0, 1, 2] and train[0]["image_id"] == "100"
    assert train[0]["captions"] == [f"caption {j} of image 0" for j in range(5)]
    assert train[1]["image"].endswith("train2014/COCO_train2014_000000000001.jpg")
    only_train, _ = load_read_datasets(DataArguments(train_file=str(path), image_root=str(root),
                                                     karpathy_splits="train"))
    assert len(only_train) == 2
    with pytest.raises(ValueError, match=r"no images in splits \['nope'\]"):
        load_read_datasets(DataArguments(train_file=str(path), karpathy_splits="nope"))
    scanned, report = scan_dataset(train)
    assert report.kept == 3


def test_karpathy_json_with_a_relative_image_root_finds_every_image(tmp_path, monkeypatch):
    # As the docs write it: --train_file data/dataset_coco.json --image_root data/coco, from the
    # folder holding data/. The root is joined with each filepath/filename once.
    path, root = _karpathy(tmp_path)
    monkeypatch.chdir(tmp_path)
    train, _ = load_read_datasets(DataArguments(train_file=path.name, image_root=root.name))
    assert train[0]["image"] == str(root / "train2014" / "COCO_train2014_000000000000.jpg")
    assert scan_dataset(train)[1].kept == 3


def test_jsonl_paths_relative_to_the_file(tmp_path):
    (tmp_path / "imgs").mkdir()
    random_image(0).save(tmp_path / "imgs" / "a.png")
    (tmp_path / "train.jsonl").write_text(json.dumps({"file": "imgs/a.png", "text": "a cat"}) + "\n")
    train, _ = load_read_datasets(DataArguments(train_file=str(tmp_path / "train.jsonl"), image_column="file",
                                                caption_column="text"))
    assert train[0]["image"] == str(tmp_path / "imgs" / "a.png") and train[0]["captions"] == "a cat"
    scan_dataset(train)


def test_paraphrase_sidecar_attaches_per_caption_lists_and_is_never_silently_missing(tmp_path):
    path, root = _karpathy(tmp_path)
    sidecar = tmp_path / "paraphrases.jsonl"
    sidecar.write_text(json.dumps({"caption": "caption 0 of image 0", "paraphrases": ["image 0, caption 0"]}) + "\n")
    train, _ = load_read_datasets(DataArguments(train_file=str(path), image_root=str(root),
                                                paraphrase_file=str(sidecar)))
    assert train[0]["paraphrases"][0] == ["image 0, caption 0"] and train[0]["paraphrases"][1] == []
    with pytest.raises(FileNotFoundError, match="paraphrase_file"):
        load_read_datasets(DataArguments(train_file=str(path), paraphrase_file=str(tmp_path / "missing.jsonl")))
    unrelated = tmp_path / "other.jsonl"
    unrelated.write_text(json.dumps({"caption": "nothing like it", "paraphrases": ["x"]}) + "\n")
    with pytest.raises(ValueError, match="matches no caption"):
        load_read_datasets(DataArguments(train_file=str(path), image_root=str(root), paraphrase_file=str(unrelated)))


def _rows_with_problems(tmp_path):
    good = tmp_path / "good.png"
    random_image(1).save(good)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:200])  # opens, fails to decode
    rows = [
        {"image": str(good), "captions": ["a red cube"]},
        {"image": str(tmp_path / "missing.png"), "captions": ["a blue cube"]},
        {"image": str(truncated), "captions": ["a green cube"]},
        {"image": str(good), "captions": ["", "  "]},
        {"image": str(good), "captions": ["word " * 100]},
    ]
    return datasets.Dataset.from_list(rows)


def test_scan_error_policy_names_rows_and_problems(tmp_path, tiny_models):
    from transformers import CLIPTokenizer

    dataset = _rows_with_problems(tmp_path)
    tokenizer = CLIPTokenizer.from_pretrained(tiny_models[0])
    with pytest.raises(BadRowError) as err:
        scan_dataset(dataset, tokenizer=tokenizer)
    # The over-long caption is counted without tokenizing past the model's limit, so transformers
    # does not warn of "indexing errors" for a caption the report calls truncated and kept.
    assert not tokenizer.deprecation_warnings.get("sequence-length-is-longer-than-the-specified-maximum")
    message = str(err.value)
    assert "scanned 5 rows: 2 usable, 3 with problems" in message
    assert "row 1: image file not found" in message and "missing.png" in message
    assert "row 2: image does not decode" in message and "truncated.png" in message
    assert "row 3: no non-empty caption" in message
    assert "truncated, kept): 1" in message


def test_scan_skip_policy_writes_every_dropped_row(tmp_path):
    dataset = _rows_with_problems(tmp_path)
    report_file = tmp_path / "out" / "invalid.jsonl"
    kept, report = scan_dataset(dataset, policy="skip", report_file=str(report_file))
    assert kept["row_id"] == [0, 4] and report.kept == 2
    lines = [json.loads(l) for l in report_file.read_text().splitlines()]
    assert [l["row_id"] for l in lines] == [1, 2, 3]
    assert lines[0]["image"].endswith("missing.png") and lines[2]["captions"] == ["", "  "]
    assert report.problems == {"image file not found": 1, "image does not decode": 1, "no non-empty caption": 1}


def test_scan_reads_datasets_image_features_without_crashing_on_a_bad_file(tmp_path):
    good, bad = tmp_path / "good.png", tmp_path / "bad.png"
    random_image(2).save(good)
    bad.write_bytes(b"definitely not a png")
    dataset = datasets.Dataset.from_dict({"image": [str(good), str(bad)], "captions": [["a"], ["b"]]})
    dataset = dataset.cast_column("image", datasets.Image())
    kept, report = scan_dataset(dataset, policy="skip", report_file=str(tmp_path / "r.jsonl"))
    assert kept["row_id"] == [0] and report.problems == {"image does not decode": 1}
    assert kept[0]["image"].size == (40, 40)  # still a decoded Image column


def test_run_read_generates_negatives_when_the_data_has_none(tiny_models, tmp_path):
    from pathlib import Path

    run_read = load_recipe("run_read")
    from read_trainer.data.loading import negative_generator_for

    write_caption_jsonl(tmp_path)
    clip_dir, t5_dir = tiny_models
    out = run_read.main(["--model_name_or_path", clip_dir, "--decoder_name_or_path", t5_dir,
                         "--train_file", str(tmp_path / "train.jsonl"), "--output_dir", str(tmp_path / "run"),
                         "--max_steps", "1", "--per_device_train_batch_size", "4", "--report_to", "none",
                         "--use_cpu", "true", "--save_strategy", "no"])
    assert (Path(out) / "model.safetensors").is_file()
    with_column = datasets.Dataset.from_dict({"captions": [["a"]], "negatives": [[["b"]]]})
    assert negative_generator_for(DataArguments(), with_column, 3, 0) is None
    assert negative_generator_for(DataArguments(hard_negatives="generate"), with_column, 3, 0) is not None
    assert negative_generator_for(DataArguments(), with_column.remove_columns("negatives"), 0, 0) is None


def test_scan_checks_per_caption_lists_against_the_kept_captions(tmp_path):
    good = tmp_path / "good.png"
    random_image(3).save(good)
    aligned = datasets.Dataset.from_list([
        # The blank and the None caption are dropped with their lists: the row is usable.
        {"image": str(good), "captions": ["a red cube", None, " ", "a blue ball"],
         "negatives": [["a blue cube"], ["x"], ["y"], ["a red ball"]]},
        # Lists align with the captions as given (blank ones included): 2 lists for 3 captions is wrong.
        {"image": str(good), "captions": ["a red cube", "", "a blue ball"], "negatives": [["a blue cube"], ["z"]]},
    ])
    kept, report = scan_dataset(aligned, policy="skip", report_file=str(tmp_path / "a.jsonl"))
    assert kept["row_id"] == [0]
    assert report.examples == [{"row_id": 1, "problems": [
        "negatives lists do not match the captions: 2 lists for 3 captions "
        "(blank ones included; lists align with captions by position)"]}]
    # A flat negatives list cannot say which caption it contradicts: found now, not when its batch comes up.
    flat = datasets.Dataset.from_list([
        {"image": str(good), "captions": ["a red cube"], "negatives": ["a blue cube"]},
        {"image": str(good), "captions": ["a red cube", "a cube"], "negatives": ["a blue cube", "a ball"]},
    ])
    with pytest.raises(BadRowError, match=r"row 1: ambiguous negatives: one flat list for 2 captions"):
        scan_dataset(flat)


def test_scan_names_undecodable_images_and_texts_under_both_policies(tmp_path, monkeypatch):
    small, big = tmp_path / "small.png", tmp_path / "bomb.png"
    random_image(4, size=8).save(small)
    Image.new("L", (64, 64)).save(big)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # the bomb has 4,096 pixels, over twice the limit
    dataset = datasets.Dataset.from_list([
        {"image": str(small), "captions": [b"a red cube"]},
        {"image": str(big), "captions": [b"a blue cube"]},
        {"image": str(small), "captions": [b"a green \xff\xfe cube"]},
    ])
    kept, report = scan_dataset(dataset, policy="skip", report_file=str(tmp_path / "r.jsonl"))
    assert kept["row_id"] == [0]
    assert report.problems == {"image too large": 1, "invalid text": 1}
    assert "bomb.png" in report.examples[0]["problems"][0] and "not valid UTF-8" in report.examples[1]["problems"][0]
    with pytest.raises(BadRowError, match=r"row 1: image too large(.|\n)*row 2: invalid text"):
        scan_dataset(dataset)


def test_invalid_utf8_in_a_data_file_is_a_named_bad_row(tmp_path):
    random_image(5).save(tmp_path / "a.png")
    lines = [json.dumps({"image": "a.png", "captions": [c]}).encode() for c in ("a red cube", "a BAD cube", "a ball")]
    lines[1] = lines[1].replace(b"BAD", b"\xff\xfe")
    (tmp_path / "train.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    train, _ = load_read_datasets(DataArguments(train_file=str(tmp_path / "train.jsonl")))
    assert train["row_id"] == [0, 1, 2] and train[0]["image"] == str(tmp_path / "a.png")
    kept, report = scan_dataset(train, policy="skip", report_file=str(tmp_path / "r.jsonl"))
    assert kept["row_id"] == [0, 2] and report.problems == {"invalid text": 1}
    with pytest.raises(BadRowError, match=r"row 1: invalid text: 'captions' entry 0 holds U\+FFFD"):
        scan_dataset(train)


def test_paraphrase_sidecar_keeps_blank_and_missing_captions_in_place(tmp_path):
    from read_trainer.data.paraphrases import attach_paraphrases

    dataset = datasets.Dataset.from_dict({"captions": [["a red cube", None, "", "a blue ball"]]})
    attached = attach_paraphrases(dataset, {"a red cube": ["red p"], "a blue ball": ["blue p"]}, "sidecar")
    assert attached[0]["paraphrases"] == [["red p"], [], [], ["blue p"]]
