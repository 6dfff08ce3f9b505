"""The two evaluation protocols, on items built so they differ: ties, What'sUp pooling, PIL resizing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from read_trainer.evaluation import rules
from read_trainer.evaluation.items import Benchmark, ImageRef, Item
from read_trainer.evaluation.protocol import apply_protocol, embedder_for, pil_image_processor
from read_trainer.evaluation.report import load_results, markdown_report, write_results_json
from read_trainer.evaluation.scoring import score_benchmark
from read_trainer.evaluation.suite import load_named


class VectorEmbedder:
    """Fixed 2-d vectors: texts by their first word ("yes" -> [1, 0], "no" -> [0, 1]), every image [1, 0]."""

    def embed_texts(self, texts):
        return torch.tensor([[1.0, 0.0] if t.split()[0] in ("yes", "same") else [0.0, 1.0] for t in texts])

    def embed_images(self, refs):
        return torch.tensor([[1.0, 0.0]] * len(refs))


IMAGE = (ImageRef("img.png"),)


def _tie_benchmark(name: str) -> Benchmark:
    items = [
        Item("tie", ("yes cat", "same cat"), IMAGE),               # s(I,pos) == s(I,neg) exactly
        Item("win", ("yes dog", "no dog"), IMAGE),
        Item("loss", ("no cow", "yes cow"), IMAGE),
        Item("tie3", ("yes owl", "no owl", "same owl"), IMAGE),   # positive tied with the best of two negatives
    ]
    return Benchmark(name, {"all": items}, rules.positive_beats_all)


@pytest.mark.parametrize("name", ["sugarcrepe", "valse", "crepe"])
def test_a_tie_with_the_best_negative_is_wrong_under_strict_and_credited_under_read(name):
    strict = score_benchmark(apply_protocol(_tie_benchmark(name), "strict"), VectorEmbedder())
    read = score_benchmark(apply_protocol(_tie_benchmark(name), "read"), VectorEmbedder())
    # strict: only "win" counts; read (argmax == 0, first maximum): "win", "tie" and "tie3".
    assert strict.total == pytest.approx(25.0) and read.total == pytest.approx(75.0)
    assert strict.metrics["ties"] == read.metrics["ties"] == 2  # both report the ties
    assert [d["accuracy"] for d in read.decisions["all"]] == ["tie_credited", "correct", "wrong", "tie_credited"]
    assert (strict.protocol, read.protocol) == ("strict", "read")
    assert "credited to the positive" in markdown_report({"m": {name: read}})
    assert "counted as wrong" in markdown_report({"m": {name: strict}})


def test_the_same_tie_is_wrong_under_both_protocols_where_the_read_harness_compares_strictly():
    # SugarCrepe++ ITT/TOT use strict '>' in the READ harness too; ARO is not part of it.
    itt = Benchmark("sugarcrepe_pp_itt", {"all": [Item("t", ("yes a", "same a", "same b"), IMAGE)]},
                    rules.sugarcrepe_pp_itt)
    aro = _tie_benchmark("aro_vg_relation")
    for bench in (itt, aro):
        assert score_benchmark(apply_protocol(bench, "read"), VectorEmbedder()).total == \
            score_benchmark(bench, VectorEmbedder()).total
    assert apply_protocol(aro, "read") is aro


def _write_whatsup(root: Path) -> Path:
    """What'sUp files of unequal sizes: controlled_a 2/3 right, controlled_b 0/1, coco one 1/1, coco two 0/3,
    vg one 1/2, vg two 2/2."""
    folder = root / "whatsup"
    images = folder / "images"
    good4 = ["yes", "no", "no", "no"]
    bad4 = ["no", "yes", "no", "no"]

    def controlled(kind, outcomes):
        rows = []
        for i, ok in enumerate(outcomes):
            path = f"data/{kind}/{kind}_{i}.jpeg"
            rows.append({"image_path": path, "caption_options": [f"{w} {i}" for w in (good4 if ok else bad4)]})
            _png(images / kind / f"{kind}_{i}.jpeg")
        return rows

    def qa(folder_name, name_format, first_id, outcomes):
        rows = []
        for i, ok in enumerate(outcomes):
            image_id = first_id + i
            rows.append([image_id, f"{'yes' if ok else 'no'} {image_id}", f"{'no' if ok else 'yes'} {image_id}"])
            _png(images / folder_name / name_format.format(image_id))
        return rows

    files = {
        "controlled_images_dataset.json": controlled("controlled_images", [True, True, False]),
        "controlled_clevr_dataset.json": controlled("controlled_clevr", [False]),
        "coco_qa_one_obj.json": qa("val2017", "{:012d}.jpg", 1, [True]),
        "coco_qa_two_obj.json": qa("val2017", "{:012d}.jpg", 10, [False, False, False]),
        "vg_qa_one_obj.json": qa("vg_images", "{}.jpg", 20, [True, False]),
        "vg_qa_two_obj.json": qa("vg_images", "{}.jpg", 30, [True, True]),
    }
    for name, rows in files.items():
        (folder / name).write_text(json.dumps(rows))
    return root


def _png(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8)).save(path, "PNG")


def test_whatsup_groups_average_their_files_under_strict_and_pool_their_rows_under_read(tmp_path):
    root = _write_whatsup(tmp_path)
    strict = score_benchmark(load_named("whatsup", root, protocol="strict"), VectorEmbedder())
    read = score_benchmark(load_named("whatsup", root, protocol="read"), VectorEmbedder())
    # strict: controlled mean(2/3, 0/1), coco mean(1/1, 0/3), vg mean(1/2, 2/2)
    expected_strict = {"controlled": (200 / 3 + 0) / 2, "coco": (100 + 0) / 2, "vg": (50 + 100) / 2}
    # read: controlled 2/4, coco 1/4, vg 3/4 (the harness pools coco*, vg* and the rest)
    expected_read = {"controlled": 50.0, "coco": 25.0, "vg": 75.0}
    assert strict.groups == pytest.approx(expected_strict) and read.groups == pytest.approx(expected_read)
    assert strict.total == pytest.approx(sum(expected_strict.values()) / 3)
    assert read.total == pytest.approx(50.0)
    assert "pooling the items" in read.averaging and "macro mean of its subsets" in strict.averaging


def test_protocol_survives_results_json(tmp_path):
    read = score_benchmark(apply_protocol(_tie_benchmark("valse"), "read"), VectorEmbedder())
    path = write_results_json(tmp_path / "r.json", {"m": {"valse": read}})
    assert load_results(path)["valse"].protocol == "read"
    with pytest.raises(ValueError, match="unknown evaluation protocol 'paper'"):
        load_named("valse", tmp_path, protocol="paper")


def test_read_protocol_resizes_with_pil_as_the_official_run(tiny_models):
    clip_dir, _ = tiny_models
    processor = embedder_for(clip_dir, "read", progress=False).processor.image_processor
    assert type(processor).__name__ == "CLIPImageProcessorPil"
    assert type(pil_image_processor(clip_dir)) is type(processor)
    # The same numbers, computed by hand with PIL: bicubic resize of the short side, centre crop,
    # rescale to [0, 1], normalise with CLIP's mean and std.
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (50, 41, 3), dtype=np.uint8))
    short, crop = processor.size["shortest_edge"], processor.crop_size["height"]
    width, height = short, int(short * 50 / 41)
    resized = np.asarray(image.resize((width, height), Image.BICUBIC), dtype=np.float32) / 255.0
    top, left = (height - crop) // 2, (width - crop) // 2
    cropped = resized[top:top + crop, left:left + crop]
    expected = (cropped - np.array(processor.image_mean)) / np.array(processor.image_std)
    got = processor(images=[image], return_tensors="pt")["pixel_values"][0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
