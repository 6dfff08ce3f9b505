"""The demo: world benchmarks scored by hand, its world-specific pieces, and a tiny end-to-end run.

The end-to-end tests run ``recipes/demo.py`` and ``recipes/ablation.py`` with a few dozen
images and a few steps: they check the plumbing (caching, export, outputs that reload),
not the numbers, which only mean something at the demo's real size (docs/ablation.md).
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import datasets
import pytest
import torch
from conftest import load_recipe
from PIL import Image

from read_trainer.data.collator import ReadCollator
from read_trainer.demo.benchmark import KINDS, WORLD_CATEGORIES, benchmark_name, load_world_benchmarks, world_benchmark
from read_trainer.demo.dataset import HELD_OUT_PAIRS, build_world, caption_is_true, caption_to_meaning
from read_trainer.demo.pipeline import WorldNegatives, _held_out_pairs_in, training_rows
from read_trainer.demo.report import bag_of_words_check, wins_per_category
from read_trainer.evaluation.scoring import score_benchmark

# ----------------------------------------------------------------------------- scoring by hand

# Unit vectors with hand-picked cosines: s(I, good) = 1, s(I, para) = 0.8, s(I, bad) = 0.6,
# s(I, close) = 0.8 (ties para); s(good, para) = s(good, close) = 0.8, s(good, bad) = 0.6, s(para, bad) = 0.48.
VECTORS = {
    "good": (1.0, 0.0, 0.0), "para": (0.8, 0.6, 0.0), "bad": (0.6, 0.0, 0.8), "close": (0.8, -0.6, 0.0),
}
IMAGE = (1.0, 0.0, 0.0)


class HandEmbedder:
    """Texts map to ``VECTORS``, every image to ``IMAGE``: similarities are known exactly."""

    def embed_texts(self, texts):
        return torch.tensor([VECTORS[t] for t in texts])

    def embed_images(self, images):
        return torch.tensor([IMAGE for _ in images])


def _png() -> dict:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG")
    return {"bytes": buffer.getvalue(), "path": None}


def hand_items() -> datasets.Dataset:
    rows = [  # (category, caption, caption2, negative)
        ("swap_att", "good", "para", "bad"),     # every rule: correct
        ("swap_att", "good", "para", "close"),   # SugarCrepe correct; ITT and TOT tie -> wrong
        ("replace_obj", "bad", "para", "good"),  # every rule: wrong
    ]
    return datasets.Dataset.from_dict({
        "image_id": [f"test-{i}" for i in range(len(rows))],
        "image": [_png() for _ in rows],
        "category": [r[0] for r in rows], "caption": [r[1] for r in rows],
        "caption2": [r[2] for r in rows], "negative_caption": [r[3] for r in rows],
    }, features=datasets.Features({"image_id": datasets.Value("string"), "image": datasets.Image(),
                                   **{k: datasets.Value("string") for k in
                                      ("category", "caption", "caption2", "negative_caption")}}))


@pytest.mark.parametrize("kind, swap_att, ties", [("sugarcrepe", 100.0, 0), ("pp_itt", 50.0, 1), ("pp_tot", 50.0, 1)])
def test_world_benchmark_rules_on_hand_built_similarities(kind, swap_att, ties):
    benchmark = world_benchmark(hand_items(), "test", kind)
    assert benchmark.name == benchmark_name("test", kind) == f"world_test/{kind}"
    result = score_benchmark(benchmark, HandEmbedder())
    assert result.subsets["swap_att"]["accuracy"] == swap_att
    assert result.subsets["replace_obj"]["accuracy"] == 0.0
    assert result.subsets["swap_att"]["ties"] == ties  # a tie is reported, and not counted as correct
    assert result.total == pytest.approx((swap_att + 0.0) / 2)  # macro over the categories present
    assert "macro" in result.averaging


def test_tot_items_carry_no_image_and_itt_items_one():
    items = hand_items()
    assert all(not item.images for item in world_benchmark(items, "test", "pp_tot").subsets["swap_att"])
    itt = world_benchmark(items, "test", "pp_itt").subsets["swap_att"]
    assert [len(item.images) for item in itt] == [1, 1] and itt[0].texts == ("good", "para", "bad")


@pytest.fixture(scope="module")
def small_world(tmp_path_factory):
    return build_world(seed=0, n_train=40, n_test=20, n_novel=20, image_size=48,
                       cache_dir=tmp_path_factory.mktemp("world"))


def test_world_benchmarks_hold_every_ground_truth_false_caption(small_world):
    benchmarks = {b.name: b for b in load_world_benchmarks(small_world)}
    assert set(benchmarks) == {benchmark_name(s, k) for s in ("test", "novel") for k in KINDS}
    for split in ("test", "novel"):
        expected = sum(len(items) for items in small_world[split]["false_captions"])
        for kind in KINDS:
            benchmark = benchmarks[benchmark_name(split, kind)]
            assert len(benchmark) == expected and set(benchmark.subsets) <= set(WORLD_CATEGORIES)


# ----------------------------------------------------------------------------- world-specific pieces


def test_world_negatives_are_k_distinct_never_held_out_and_mostly_false_world_captions(small_world):
    train = small_world["train"]
    negatives = WorldNegatives.for_split(train, seed=0)
    valid = total = swaps = 0
    for captions, scene in zip(train["captions"], train["scene"]):
        for caption in captions:
            out = negatives(caption, 3)
            assert len(out) == len(set(out)) == 3 and caption not in out
            assert not any(_held_out_pairs_in(n) for n in out)
            assert negatives(caption, 3) == out  # deterministic per caption
            for n in out:
                total += 1
                try:
                    valid += caption_to_meaning(n) != caption_to_meaning(caption) and not caption_is_true(n, scene)
                except ValueError:  # a generator text the world grammar does not parse: a top-up only
                    pass
                swaps += sorted(n.split()) == sorted(caption.split())  # same bag of words: a swap
    assert valid / total > 0.8  # garbled or COCO-worded generator texts only top up captions it cannot fill
    assert swaps / total > 0.2  # swaps come first, as in the reference recipe


def test_held_out_pairs_are_read_from_free_text():
    colour, shape = sorted(HELD_OUT_PAIRS)[0]
    assert _held_out_pairs_in(f"a photo of a {colour} {shape} left of a blue cube") == {(colour, shape)}
    assert _held_out_pairs_in(f"a small {colour} {shape}") == {(colour, shape)}
    assert not _held_out_pairs_in(f"a {colour} cube and a {shape}") or (colour, "cube") in HELD_OUT_PAIRS


def test_training_rows_pair_each_anchor_with_its_own_paraphrase(small_world):
    """The stock collator, given the world's paraphrases as one list per caption, aligns an
    anchor with its own paraphrase (other captions of the image describe other objects)."""
    rows = training_rows(small_world["train"])
    assert {"image", "captions", "paraphrases", "row_id"} <= set(rows.column_names)
    collator = ReadCollator(processor=None, num_hard_negatives=0)
    row, original = rows[0], small_world["train"][0]
    for anchor_index, caption in enumerate(row["captions"]):
        paraphrase = collator._paraphrase(row, row["captions"], anchor_index, random.Random(anchor_index))
        assert paraphrase == original["paraphrases"][anchor_index] != caption
        assert caption_is_true(paraphrase, original["scene"])


def test_checks_read_the_accuracy_tables():
    row = {"replace_att": 90.0, "replace_obj": 80.0, "replace_rel": 70.0, "swap_att": 50.0, "swap_obj": 60.0,
           "macro": 70.0, "ties": 0}
    table = {"test": {"sugarcrepe": row}}
    check = bag_of_words_check(table)
    assert check["test"]["swap_mean"] == 55.0 and check["test"]["replace_mean"] == 80.0
    better = {"test": {"sugarcrepe": {**row, "swap_att": 70.0}}}
    wins = wins_per_category(better, table)
    assert wins["cells"] == 6 and wins["wins"] == 1 and len(wins["not_better"]) == 5


# ----------------------------------------------------------------------------- end to end, tiny

TINY = ["--n_train", "16", "--n_test", "6", "--n_novel", "6", "--image_size", "48", "--clip_pretrain_steps", "2",
        "--t5_pretrain_steps", "2", "--max_steps", "2", "--per_device_train_batch_size", "8",
        "--warmup_steps", "0", "--logging_steps", "1", "--no_progress"]


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory):
    """One cache for both end-to-end tests: the base models are pretrained once."""
    return tmp_path_factory.mktemp("demo_cache")


def test_demo_end_to_end_tiny(tmp_path, tiny_cache, capsys):
    from transformers import CLIPModel, CLIPProcessor

    demo = load_recipe("demo")
    argv = [*TINY, "--out", str(tmp_path / "out"), "--cache", str(tiny_cache)]
    payload = demo.main(argv)
    out = tmp_path / "out"
    for name in ("results.json", "results.md", "chart.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0
    saved = json.loads((out / "results.json").read_text())
    assert set(saved) == {"meta", "accuracy", "checks", "benchmarks"}
    assert set(saved["accuracy"]) == {"base", "READ"}
    for table in saved["accuracy"].values():
        assert set(table) == {"test", "novel"} and all(set(t) == set(KINDS) for t in table.values())
    assert set(saved["benchmarks"]["READ"]) == {benchmark_name(s, k) for s in ("test", "novel") for k in KINDS}
    assert {"world", "base models", "READ fine-tuning", "evaluation", "total"} <= set(saved["meta"]["wall_time_s"])
    assert set(saved["meta"]["cpu_time_s"]) == set(saved["meta"]["wall_time_s"])

    exported = Path(saved["meta"]["exported_model"])
    model = CLIPModel.from_pretrained(exported)  # a plain CLIPModel: no decoder, no projection
    CLIPProcessor.from_pretrained(exported)
    assert not any("decoder" in name or "text_to_decoder" in name for name in model.state_dict())
    stdout = capsys.readouterr().out
    assert "exported CLIPModel" in stdout and "SugarCrepe++-style TOT" in stdout
    breakdown = stdout[stdout.index("stage "):].splitlines()  # the time table printed last
    assert [line.split()[0] for line in breakdown[1:]] == ["world", "base", "READ", "evaluation", "total"]
    assert float(breakdown[-1].split()[1]) >= saved["meta"]["wall_time_s"]["total"]  # printed at the very end

    # Second run: world and base models come from the cache.
    again = demo.main([*argv, "--out", str(tmp_path / "out2")])
    assert "base models (cached)" in again["meta"]["wall_time_s"]
    assert again["meta"]["base_clip"] == payload["meta"]["base_clip"]


def test_ablation_end_to_end_tiny(tmp_path, tiny_cache):
    ablation = load_recipe("ablation")
    md = tmp_path / "ablation.md"
    argv = [*TINY, "--max_steps", "1", "--seeds", "1", "2", "--variants", "CLIP fine-tuning", "NegCLIP", "READ",
            "--out", str(tmp_path / "abl"), "--cache", str(tiny_cache), "--ablation_md", str(md)]
    payload = ablation.main(argv)
    assert set(payload["summary"]) == {"base", "CLIP fine-tuning", "NegCLIP", "READ"}
    assert set(payload["read_vs_negclip"]) == {f"{s}/{k}" for s in ("test", "novel") for k in KINDS}
    mean, std, n = payload["summary"]["READ"]["test"]["pp_tot"]["macro"]
    assert n == 2 and std >= 0
    # Only the comparisons whose two variants ran, on the swap categories and the macro score.
    assert set(payload["comparisons"]) == {"NegCLIP vs CLIP fine-tuning", "READ vs NegCLIP"}
    negclip_gain = payload["comparisons"]["NegCLIP vs CLIP fine-tuning"]
    assert set(negclip_gain) == {f"{s}/{k}/{c}" for s in ("test", "novel") for k in KINDS
                                 for c in ("swap_att", "swap_obj", "macro")}
    # Every run records its losses and per-term gradient shares; K=0 trains with no negatives.
    runs = {(r["variant"], r["seed"]): r for r in payload["runs"] if r["seed"] is not None}
    assert runs[("CLIP fine-tuning", 1)]["settings"]["num_hard_negatives"] == 0
    read_run = runs[("READ", 1)]
    assert [p["step"] for p in read_run["term_gradients"]] == [0, 1]
    assert {"loss/reconstruction", "loss/alignment"} <= set(read_run["loss_curve"][0])
    assert set(payload["reconstruction_evidence"]) == {"READ"}  # the only variant that reconstructs
    # The order test through READ's own memory, after training, only where a decoder was trained against.
    assert read_run["read_memory_order_gap"]["items"] > 0
    assert runs[("NegCLIP", 1)]["read_memory_order_gap"] is None
    # Every run measures how far apart a caption and its swap are, before and after; the decoder's memory
    # only where there is a decoder.
    assert set(read_run["order_separation"]) == {"before", "after"}
    assert "decoder_memory" in read_run["order_separation"]["after"]
    assert "decoder_memory" not in runs[("NegCLIP", 1)]["order_separation"]["after"]
    assert payload["decoder_probe"]["order_gap_test"]["items"] > 0 and payload["decoder_probe"]["order_separation_test"] > 0
    text = md.read_text()
    assert "± " in text and "READ vs NegCLIP" in text and "recipes/ablation.py" in text
    assert "--variants 'CLIP fine-tuning' NegCLIP READ" in text  # the reproduce line runs as printed
    assert "What each term adds" in text and "share of the text tower's gradient norm" in text.lower()
    assert "order test through READ's own memory" in text and "| contrastive, after |" in text
    # Notes below the marker survive a rewrite; a second run reuses every finished (variant, seed).
    md.write_text(text + "\n" + ablation.NOTES_MARKER + "\n\nA hand-written finding.\n")
    runs_before = sorted((tmp_path / "abl" / "runs").iterdir())
    ablation.main(argv)
    assert sorted((tmp_path / "abl" / "runs").iterdir()) == runs_before
    rewritten = md.read_text()
    assert rewritten.count("A hand-written finding.") == 1 and rewritten.count("## Macro accuracy") == 1


def test_ablation_runs_are_keyed_by_the_base_models_contents(tmp_path):
    """A rebuilt base at the same path (e.g. another decoder) must not reuse the old base's saved runs."""
    from read_trainer.config import ReadConfig

    ablation = load_recipe("ablation")
    config = ReadConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    params = {"seed": 0, "n_train": 8}
    old = ablation.run_key(config, params, 1, {"t5/model.safetensors": "aa", "clip/model.safetensors": "cc"})
    assert old == ablation.run_key(config, params, 1, {"t5/model.safetensors": "aa", "clip/model.safetensors": "cc"})
    assert old != ablation.run_key(config, params, 1, {"t5/model.safetensors": "bb", "clip/model.safetensors": "cc"})
