"""The demo's shipped base checkpoints: checked by SHA-256, refused when altered, used by default.

Rebuilding them from scratch takes minutes (``recipes/build_base_checkpoints.py`` does it and
compares with SHA256SUMS); here a tiny build twice checks that a build's files depend only on
its settings, which is what lets the shipped sums be reproduced.
"""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest

import read_trainer.demo.shipped_base as shipped_module
from read_trainer.demo.base_models import BUILD_THREADS, ClipPretraining, T5Pretraining, base_models, build_params
from read_trainer.demo.dataset import build_world, world_params
from read_trainer.demo.pipeline import DemoArguments, Stopwatch, prepare, pretraining_settings
from read_trainer.demo.shipped_base import (
    SHIPPED_DIR,
    ChecksumError,
    compare_checksums,
    shipped_applies,
    shipped_base,
    verify_shipped,
)


def _default_params() -> tuple[dict, object, object]:
    demo = DemoArguments()
    params = world_params(demo.world_seed, demo.n_train, demo.n_test, demo.n_novel, demo.image_size)
    return (params, *pretraining_settings(demo))


def test_every_shipped_file_matches_its_sha256sums_line():
    lines = (SHIPPED_DIR / "SHA256SUMS").read_text().splitlines()
    listed = {}
    for line in lines:  # sha256sum format, read here independently of the package's parser
        digest, name = line.split("  ", 1)
        listed[name.removeprefix("./")] = digest
    on_disk = {p.relative_to(SHIPPED_DIR).as_posix() for p in SHIPPED_DIR.rglob("*")
               if p.is_file() and p.name != "SHA256SUMS"}
    assert set(listed) == on_disk
    assert {"clip/model.safetensors", "t5/model.safetensors", "t5/spiece.model"} <= on_disk
    for name, digest in listed.items():
        assert hashlib.sha256((SHIPPED_DIR / name).read_bytes()).hexdigest() == digest, name
    assert verify_shipped() == len(listed)
    assert sum((SHIPPED_DIR / n).stat().st_size for n in listed) < 10 * 2**20  # a few MB in the repository


def test_shipped_checkpoints_load_as_plain_hub_style_folders():
    from transformers import AutoTokenizer, CLIPModel, CLIPProcessor

    from read_trainer.modeling import load_t5

    base = shipped_base()
    clip = CLIPModel.from_pretrained(base.clip)
    CLIPProcessor.from_pretrained(base.clip)
    t5 = load_t5(base.t5)
    assert AutoTokenizer.from_pretrained(base.t5)("a red cube")["input_ids"][-1] == t5.config.eos_token_id
    assert clip.config.vision_config.image_size == DemoArguments().image_size


@pytest.fixture
def shipped_copy(tmp_path, monkeypatch):
    """A copy of the shipped folder that the demo reads instead of the package's."""
    copy = tmp_path / "base_checkpoints"
    shutil.copytree(SHIPPED_DIR, copy)
    monkeypatch.setattr(shipped_module, "SHIPPED_DIR", copy)
    return copy


def test_an_altered_byte_is_refused_naming_the_file(shipped_copy):
    weights = shipped_copy / "clip" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match=r"clip/model\.safetensors: sha256 [0-9a-f]{64} differs"):
        verify_shipped()


def test_missing_and_unlisted_files_are_refused_naming_them(shipped_copy):
    (shipped_copy / "t5" / "spiece.model").unlink()
    with pytest.raises(ChecksumError, match=r"t5/spiece\.model: listed in SHA256SUMS but missing"):
        verify_shipped()
    shutil.copy(SHIPPED_DIR / "t5" / "spiece.model", shipped_copy / "t5" / "spiece.model")
    (shipped_copy / "clip" / "tokenizer.json.bak").write_text("{}")
    with pytest.raises(ChecksumError, match=r"clip/tokenizer\.json\.bak: not listed in SHA256SUMS"):
        verify_shipped()


def test_the_demo_starts_from_the_shipped_checkpoints_by_default(tmp_path):
    params, clip_recipe, t5_recipe = _default_params()
    assert shipped_applies(params, clip_recipe, t5_recipe)
    for kind, recipe in (("clip", clip_recipe), ("t5", t5_recipe)):
        recorded = json.loads((SHIPPED_DIR / kind / "build_params.json").read_text())
        assert recorded["threads"] == BUILD_THREADS and recorded["world"] == params
    prepared = prepare(DemoArguments(cache=str(tmp_path), progress=False), Stopwatch("test"))
    assert (prepared.base.clip, prepared.base.t5) == (SHIPPED_DIR / "clip", SHIPPED_DIR / "t5")
    assert not (tmp_path / "world_models").exists()  # nothing was pretrained


def test_the_demo_refuses_an_altered_shipped_checkpoint(tmp_path, shipped_copy):
    config = shipped_copy / "t5" / "config.json"
    config.write_text(config.read_text().replace('"num_heads": 4', '"num_heads": 2'))
    with pytest.raises(ChecksumError, match=r"t5/config\.json: sha256"):
        prepare(DemoArguments(cache=str(tmp_path), progress=False), Stopwatch("test"))


def test_other_settings_do_not_use_the_shipped_checkpoints():
    params, clip_recipe, t5_recipe = _default_params()
    assert not shipped_applies({**params, "n_train": 16}, clip_recipe, t5_recipe)
    assert not shipped_applies(params, ClipPretraining(spec=clip_recipe.spec, steps=2), t5_recipe)
    assert not shipped_applies(params, clip_recipe, T5Pretraining(steps=2))


def test_checksum_comparison_names_each_kind_of_difference():
    built = {"a": "1", "b": "2", "c": "3"}
    recorded = {"a": "1", "b": "9", "d": "4"}
    assert compare_checksums(built, recorded) == {"a": "match", "b": "differs", "c": "extra", "d": "missing"}


def test_a_base_model_build_is_byte_identical_when_repeated(tmp_path):
    """What reproducing the shipped SHA256SUMS needs: no file records a temporary path or a clock."""
    world = build_world(seed=0, n_train=16, n_test=4, n_novel=4, image_size=48, cache_dir=tmp_path / "world")
    params = world_params(0, 16, 4, 4, 48)
    demo = DemoArguments(image_size=48, clip_pretrain_steps=2, t5_pretrain_steps=2)
    clip_recipe, t5_recipe = pretraining_settings(demo)
    clip_recipe = ClipPretraining(**{**clip_recipe.__dict__, "batch_size": 8})
    t5_recipe = T5Pretraining(**{**t5_recipe.__dict__, "batch_size": 8})
    first = base_models(world, params, tmp_path / "one", clip_recipe, t5_recipe, progress=False)
    second = base_models(world, params, tmp_path / "two", clip_recipe, t5_recipe, progress=False)
    sums = [shipped_module.folder_checksums({"clip": b.clip, "t5": b.t5}) for b in (first, second)]
    assert sums[0] == sums[1]
    assert {"clip/model.safetensors", "t5/spiece.model", "clip/build_params.json"} <= set(sums[0])
    assert json.loads((first.clip / "build_params.json").read_text()) == json.loads(
        json.dumps(build_params("clip", params, clip_recipe), default=str))


def test_the_shipped_decoder_reads_which_attribute_goes_with_which_object(tmp_path):
    """READ's reconstruction can reward binding only if the frozen decoder's loss depends on it:
    on swap items of a world it never saw, the caption's own memory must beat its swap's."""
    from transformers import AutoTokenizer

    from read_trainer.demo.reconstruction_probe import order_gap
    from read_trainer.modeling import load_t5

    world = build_world(seed=1, n_train=2, n_test=60, n_novel=2, image_size=48, cache_dir=tmp_path)
    t5 = SHIPPED_DIR / "t5"
    gap = order_gap(load_t5(t5), AutoTokenizer.from_pretrained(t5), world["test"])
    assert gap["items"] >= 50
    assert gap["caption"]["true_memory_lower"] >= 0.9
    assert gap["caption"]["gap_per_token"] > 0.05  # nats per token (the order-blind decoder it replaced: ~1e-4)


def test_the_rebuild_recipe_names_the_library_versions_that_differ_from_the_shipped_build():
    from conftest import load_recipe

    recipe = load_recipe("build_base_checkpoints")
    assert set(recipe.SHIPPED_WITH) == set(recipe.library_versions()) == {"torch", "transformers"}
    # The shipped config.json files name the transformers version that wrote them.
    assert json.loads((SHIPPED_DIR / "t5" / "config.json").read_text())["transformers_version"] == \
        recipe.SHIPPED_WITH["transformers"]
    assert recipe.describe_versions({"torch": "2.13.0", "transformers": "5.25.0"},
                                    {"torch": "2.13.0", "transformers": "5.24.0"}) == \
        "torch 2.13.0, transformers 5.25.0 (the shipped files: 5.24.0)"
