"""The layout probe behind docs/demo.md's claim that the image embedding carries no left/right."""

from __future__ import annotations

import torch
from conftest import load_recipe

probe = load_recipe("probe_layout")


def test_probe_finds_a_linearly_coded_layout_and_not_an_absent_one():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1200, 16, generator=g)
    y = (x[:, 3] - 0.5 * x[:, 7] > 0).float()  # the label is a linear function of the features
    assert probe.probe_accuracy(x[:800], y[:800], x[800:], y[800:]) > 0.95

    noise = torch.randn(1200, 16, generator=g)  # features that say nothing about the label
    accuracy = probe.probe_accuracy(noise[:800], y[:800], noise[800:], y[800:])
    assert 0.4 < accuracy < 0.6


def test_layout_features_label_every_two_object_scene_by_its_geometry(tmp_path):
    import json

    from read_trainer.demo.dataset import build_split
    from read_trainer.demo.tiny_models import TinyClipSpec, write_tiny_clip

    split = build_split("train", 40, seed=0, image_size=96)
    clip = write_tiny_clip(tmp_path / "clip", spec=TinyClipSpec(image_size=96, patch_size=32))
    pooled, patches, labels = probe.layout_features(str(clip), split, limit=40, batch_size=16)

    scenes = [json.loads(s)["objects"] for s in split["scene"]]
    two = [objects for objects in scenes if len(objects) == 2]
    assert len(labels) == len(two) == pooled.shape[0] == patches.shape[0]
    expected = []
    for objects in two:  # first by (colour, shape); colours are unique within a scene
        first, second = sorted(objects, key=lambda o: (o["colour"], o["shape"]))
        expected.append(float(first["x"] < second["x"]))
    assert labels.tolist() == expected
    assert 0 < labels.mean() < 1  # both answers occur
    assert patches.shape[1] == 9 * TinyClipSpec().hidden_size  # the 3x3 patch tokens, CLS dropped
    assert torch.allclose(pooled.norm(dim=-1), torch.ones(len(labels)), atol=1e-5)
