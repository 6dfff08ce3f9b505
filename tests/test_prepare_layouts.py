"""``recipes/prepare_data.py`` on the local mirror: every training route and every benchmark folder in the
layout the training recipe and the evaluation suite read; reruns fetch nothing; data is never executed."""

from __future__ import annotations

import json

import pytest
from conftest import load_recipe
from mirror_fixture import TRAIN_CAPTIONS, MirrorServer, build_mirror, imagenet_folder

from read_trainer.cli import UsageError
from read_trainer.data.loading import DataArguments, load_read_datasets
from read_trainer.evaluation.suite import load_named
from read_trainer.prepare.manifest import MANIFEST_PATH
from read_trainer.prepare.training import from_folder, parse_example_line


@pytest.fixture()
def mirror(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # the mirror is the Hub here
    folder, manifest, _ = build_mirror(tmp_path, MANIFEST_PATH)
    with MirrorServer(folder) as server:
        yield server, manifest


def _run(prepare_data, command, data_dir, server, manifest, *extra):
    return prepare_data.main([command, *extra, "--data_dir", str(data_dir), "--mirror", server.url, "--manifest",
                              str(manifest), "--no_progress"])


def test_both_hub_training_routes_give_the_table_the_recipe_reads(tmp_path, mirror):
    server, manifest = mirror
    prepare_data = load_recipe("prepare_data")
    _run(prepare_data, "train", tmp_path / "a", server, manifest)
    _run(prepare_data, "train", tmp_path / "b", server, manifest, "--source", "read")
    _run(prepare_data, "paraphrases", tmp_path / "a", server, manifest, "--source", "official")
    karpathy, _ = load_read_datasets(DataArguments(train_file=str(tmp_path / "a/coco_read/train.jsonl"),
                                                   paraphrase_file=str(tmp_path / "a/paraphrases/zero.json")))
    # train (4 images, train2014) then restval (2, val2014), cocoid kept, 5-caption lists as given.
    assert karpathy["cocoid"] == ["11", "12", "13", "14", "21", "22"]
    assert karpathy["captions"] == [TRAIN_CAPTIONS[i] for i in (11, 12, 13, 14, 21, 22)]
    assert karpathy["image"][0].endswith("coco_read/images/train2014/COCO_train2014_000000000011.jpg")
    assert karpathy["image"][4].endswith("coco_read/images/val2014/COCO_val2014_000000000021.jpg")
    # zero.json is keyed by cocoid; image 14 has no entry.
    assert karpathy["paraphrases"][0] == [f"in short {c}" for c in TRAIN_CAPTIONS[11]] and karpathy["paraphrases"][3] == []
    read, _ = load_read_datasets(DataArguments(train_file=str(tmp_path / "b/coco_read/train.jsonl")))
    assert read["cocoid"] == ["11", "12", "13", "14"] and read["captions"][1] == TRAIN_CAPTIONS[12]
    assert all(open(p, "rb").read(2) == b"\xff\xd8" for p in read["image"])  # the JPEGs themselves
    # A rerun verifies and keeps everything: not one request.
    before = len(server.requests)
    _run(prepare_data, "train", tmp_path / "a", server, manifest)
    _run(prepare_data, "paraphrases", tmp_path / "a", server, manifest, "--source", "official")
    assert len(server.requests) == before


def test_every_benchmark_folder_loads_in_the_suite(tmp_path, mirror):
    server, manifest = mirror
    prepare_data = load_recipe("prepare_data")
    root = tmp_path / "data" / "benchmarks"
    summary = _run(prepare_data, "benchmarks", tmp_path / "data", server, manifest, "--benchmarks", "all",
                   "--imagenet_dir", str(imagenet_folder(tmp_path)))
    assert set(summary) == {"sugarcrepe", "sugarcrepe_pp", "valse", "whatsup", "crepe", "aro", "winoground", "coco",
                            "flickr30k", "zeroshot"}
    sizes = {name: len(load_named(name, root)) for name in ("sugarcrepe", "sugarcrepe_pp_itt", "sugarcrepe_pp_tot",
                                                            "valse", "whatsup", "crepe", "aro_vg_relation",
                                                            "winoground")}
    # 7 x 2, 5 x 2, 5 x 2, the 11 validated samples (not the 11 unvalidated ones), 6 files x 1, 27 CSVs x 1, ...
    assert sizes == {"sugarcrepe": 14, "sugarcrepe_pp_itt": 10, "sugarcrepe_pp_tot": 10, "valse": 11, "whatsup": 6,
                     "crepe": 27, "aro_vg_relation": 1, "winoground": 1}
    coco, flickr, zeroshot = (load_named(n, root) for n in ("coco_retrieval", "flickr30k_retrieval", "zeroshot"))
    assert (len(coco.image_refs), len(coco.captions)) == (2, 4)
    assert len(flickr.image_refs) == 2  # the test split only
    assert zeroshot.classnames == ["tench", "goldfish"] and len(zeroshot.image_refs) == 4
    assert zeroshot.templates == ("a photo of a {}.", "a bad photo of the {}.")
    assert json.loads((root / "coco" / "dataset_coco.json").read_text())["images"][0]["split"] == "test"
    for name in ("aro_coco_order", "aro_flickr_order"):  # built at evaluation time (spaCy); their files are here
        assert (root / "aro" / ("coco_karpathy_test.json" if "coco" in name else "flickr30k_test.json")).is_file()
    assert (root / "aro/images/val2014/COCO_val2014_000000000031.jpg").is_file()
    assert (root / "aro/images/flickr30k-images/1001.jpg").is_file()
    before = len(server.requests)
    _run(prepare_data, "benchmarks", tmp_path / "data", server, manifest, "--benchmarks", "all",
         "--imagenet_dir", str(imagenet_folder(tmp_path)))
    assert len(server.requests) == before
    with pytest.raises(UsageError, match="zeroshot needs your ImageNet validation images"):
        _run(prepare_data, "benchmarks", tmp_path / "data", server, manifest, "--benchmarks", "zeroshot")


def test_example_lines_are_data_never_code(tmp_path):
    assert parse_example_line('{"filename": "a.jpg", "sentences": ["x"], "cocoid": 1}', "f:1")["cocoid"] == 1
    assert parse_example_line("{'filename': 'a.jpg', 'sentences': ['x'], 'cocoid': '1'}", "f:2")["cocoid"] == "1"
    marker = tmp_path / "executed"
    line = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    with pytest.raises(UsageError, match=r"f:3: neither JSON nor a Python literal"):
        parse_example_line(line, "f:3")
    assert not marker.exists()
    with pytest.raises(UsageError, match=r"f:4: 'sentences' must be a non-empty list of strings"):
        parse_example_line("{'filename': 'a.jpg', 'sentences': 'x', 'cocoid': 1}", "f:4")


def test_a_users_folder_must_hold_the_whole_karpathy_split(tmp_path):
    folder = tmp_path / "coco"
    for name in ("train2014", "val2014"):
        (folder / name).mkdir(parents=True)
    (folder / "dataset_coco.json").write_text(json.dumps({"images": [
        {"filepath": "train2014", "filename": "a.jpg", "split": "train", "cocoid": 1, "sentences": [{"raw": "x"}]}]}))
    with pytest.raises(UsageError, match=r"dataset_coco.json: 1 train\+restval images, the Karpathy split has 113287"):
        from_folder(folder, tmp_path / "out")
