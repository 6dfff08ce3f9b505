"""The layout probe behind the README's claim that the image embedding carries no left/right."""

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
