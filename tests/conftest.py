"""Shared offline fixtures: tiny models written once per session, and hand-made rows."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CAPTIONS = [
    ["a red cube to the left of a blue sphere", "a blue sphere right of a red cube", "two shapes on a table"],
    ["a man riding a brown horse on the beach", "a horse with a man on the sand"],
    ["a cat sleeping on a wooden table next to a laptop", "a laptop beside a sleeping cat"],
    ["a child flying a kite in a grassy field", "a kite above a child in a field"],
]
NEGATIVES = {
    0: [["a blue cube to the left of a red sphere", "a red sphere to the left of a blue cube", "a red cube above a blue sphere"],
        ["a red sphere right of a blue cube", "a blue cube right of a red sphere", "a blue sphere left of a red cube"],
        ["two shapes under a table", "three shapes on a table", "two tables on a shape"]],
    1: [["a horse riding a brown man on the beach", "a man riding a white horse on the beach", "a man walking a brown horse on the beach"],
        ["a man with a horse on the sand", "a horse with a man on the grass", "a dog with a man on the sand"]],
    2: [["a laptop sleeping on a wooden table next to a cat", "a cat sleeping on a metal table next to a laptop", "a dog sleeping on a wooden table next to a laptop"],
        ["a cat beside a sleeping laptop", "a laptop beside a sleeping dog", "a laptop under a sleeping cat"]],
    3: [["a kite flying a child in a grassy field", "a child flying a kite in a sandy field", "a child holding a kite in a grassy field"],
        ["a child above a kite in a field", "a kite below a child in a field", "a kite above a dog in a field"]],
}
CORPUS = [c for caps in CAPTIONS for c in caps] + [n for per in NEGATIVES.values() for ns in per for n in ns]


def random_image(seed: int, size: int = 40) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def make_rows(n: int, negatives: bool = True, paraphrases: bool = False) -> list[dict]:
    """``n`` rows cycling through the four scenes, each with its own random image."""
    rows = []
    for i in range(n):
        scene = i % len(CAPTIONS)
        row = {"row_id": i, "image": random_image(i), "captions": list(CAPTIONS[scene])}
        if negatives:
            row["negatives"] = [list(x) for x in NEGATIVES[scene]]
        if paraphrases:
            row["paraphrases"] = [f"in short {c}" for c in CAPTIONS[scene][:2]]
        rows.append(row)
    return rows


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """(clip_dir, t5_dir): tiny CLIPModel and T5 v1.1-style checkpoints loadable by path."""
    from read_trainer.demo.tiny_models import write_tiny_models

    corpus = CORPUS + [f"in short {c}" for c in CORPUS]
    return tuple(str(p) for p in write_tiny_models(tmp_path_factory.mktemp("models"), corpus=corpus))


def write_caption_jsonl(folder, image_key: str = "image"):
    """A JSONL training file (one row per scene, image path relative to the file) and its images."""
    import json
    from pathlib import Path

    folder = Path(folder)
    lines = []
    for i, captions in enumerate(CAPTIONS):
        random_image(i).save(folder / f"{i}.png")
        lines.append(json.dumps({image_key: f"{i}.png", "captions": captions}))
    path = folder / "train.jsonl"
    path.write_text("\n".join(lines))
    return path


def load_recipe(name: str):
    """Import ``recipes/<name>.py`` as a module without putting recipes/ on ``sys.path``.

    (On the path, a recipe could shadow an installed package of the same name.)
    """
    import importlib.util
    import sys
    from pathlib import Path

    module_name = f"recipe_{name}"
    if module_name not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "recipes" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]
