"""The suite on a real (tiny, random) CLIPModel: SugarCrepe++ TOT on the full real files, batched
decisions identical to a one-at-a-time loop, the recipe end to end, and the training callback."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from test_evaluation_loaders import BENCHDATA, png_bytes, write_images

from read_trainer.evaluation import rules
from read_trainer.evaluation.embedding import ClipEmbedder, unwrap_clip
from read_trainer.evaluation.items import Benchmark, Item
from read_trainer.evaluation.one_at_a_time import decide_one_at_a_time
from read_trainer.evaluation.sugarcrepe import load_sugarcrepe, load_sugarcrepe_pp_itt, load_sugarcrepe_pp_tot
from read_trainer.evaluation.suite import run_suite
from read_trainer.evaluation.valse import load_valse

ROOT = Path(__file__).resolve().parents[1]
# Small and fast: TOT embeds ~13k unique texts.
SPEC = dict(hidden_size=32, intermediate_size=64, num_layers=1, num_heads=2, projection_dim=16)


def _corpus() -> list[str]:
    rows = json.loads((BENCHDATA / "sugarcrepe_pp" / "swap_att.json").read_text())[:80]
    return [r["caption"] for r in rows] + [r["negative_caption"] for r in rows]


@pytest.fixture(scope="module")
def clip_dirs(tmp_path_factory):
    """Two tiny CLIP checkpoints (different seeds), loadable with from_pretrained(path)."""
    from read_trainer.demo.tiny_models import TinyClipSpec, write_tiny_clip

    root = tmp_path_factory.mktemp("eval_clips")
    corpus = _corpus()
    return [str(write_tiny_clip(root / f"clip{seed}", corpus=corpus, spec=TinyClipSpec(**SPEC), seed=seed))
            for seed in (0, 1)]


@pytest.fixture(scope="module")
def clip(clip_dirs):
    from transformers import CLIPModel, CLIPProcessor

    return CLIPModel.from_pretrained(clip_dirs[0]).eval(), CLIPProcessor.from_pretrained(clip_dirs[0])


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Stand-in images for the first 30 items of every SugarCrepe(++) / VALSE file (what the limited
    runs here load), each a different colour and size so image embeddings differ."""
    root = tmp_path_factory.mktemp("images")
    names = []
    for name in ("sugarcrepe", "sugarcrepe_pp", "valse"):
        for f in sorted((BENCHDATA / name).glob("*.json")):
            rows = json.loads(f.read_text())
            rows = list(rows.values()) if isinstance(rows, dict) else rows
            rows = [r for r in rows if name != "valse" or r["mturk"]["caption"] >= 2]
            names += [r.get("filename") or r["image_file"] for r in rows[:30]]
    for i, name in enumerate(dict.fromkeys(names)):
        write_images(root, [name], png_bytes(((37 * i) % 256, (91 * i) % 256, (53 * i) % 256), (40 + i % 7, 36)))
    return root


def test_sugarcrepe_pp_tot_full_real_files_no_images(clip):
    model, processor = clip
    bench = load_sugarcrepe_pp_tot(BENCHDATA / "sugarcrepe_pp")
    result = run_suite([bench], ClipEmbedder(model, processor, progress=False))["sugarcrepe_pp_tot"]
    assert result.metrics["n"] == 4757 and set(result.subsets) == set(bench.subsets)
    assert result.total == pytest.approx(sum(r["accuracy"] for r in result.subsets.values()) / 5)
    assert "macro" in result.averaging and 0.0 <= result.total <= 100.0


def test_batched_decisions_match_one_at_a_time(clip, images):
    model, processor = clip
    # Identical texts share one embedding in the batched path and one token row in the loop: exact ties.
    ties = Benchmark("text_ties", {"all": [Item("same", ("a red cube",) * 3), Item("differ", ("a red cube",
                                            "a red cube on a table", "a blue sphere"))]},
                     rules.sugarcrepe_pp_tot, needs_text_text=True)
    benchmarks = [
        load_sugarcrepe(BENCHDATA / "sugarcrepe", images, limit=12),
        load_sugarcrepe_pp_itt(BENCHDATA / "sugarcrepe_pp", images, limit=6),
        load_sugarcrepe_pp_tot(BENCHDATA / "sugarcrepe_pp", limit=20),
        load_valse(BENCHDATA / "valse", images, limit=3),
    ]
    swap_obj = benchmarks[0].subsets["swap_obj"]
    tie_items = [Item(f"t{i}", it.texts[:1] * 2, it.images) for i, it in enumerate(swap_obj)]
    # Winoground-shaped items (two images, two captions) from neighbouring SugarCrepe items.
    pairs = [Item(f"w{i}", (a.texts[0], b.texts[0]), a.images + b.images) for i, (a, b) in
             enumerate(zip(swap_obj, swap_obj[1:]))]
    benchmarks += [Benchmark("image_ties", {"all": tie_items}, rules.positive_beats_all), ties,
                   Benchmark("pairs", {"all": pairs}, rules.winoground, averaging="micro", primary_metric="group")]
    batched = run_suite(benchmarks, ClipEmbedder(model, processor, batch_size=64, progress=False))
    for b in benchmarks:
        assert batched[b.name].decisions == decide_one_at_a_time(b, model, processor), b.name
    assert batched["text_ties"].decisions["all"][0] == {"accuracy": "tie"}
    assert batched["image_ties"].metrics["ties"] == 12 and batched["image_ties"].total == 0.0


def test_embedder_accepts_wrapped_models_and_autocast(clip):
    model, processor = clip

    class Wrapper(torch.nn.Module):  # READ's ReadModel keeps the CLIPModel at .clip; DDP adds .module
        def __init__(self, inner):
            super().__init__()
            self.clip = inner

    class DDPLike(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.module = inner

    assert unwrap_clip(DDPLike(Wrapper(model))) is model
    texts = ["a red cube", "a blue sphere to the left of a cube"]
    ref = ClipEmbedder(model, processor, progress=False).embed_texts(texts)
    assert torch.allclose(ClipEmbedder(DDPLike(Wrapper(model)), processor, progress=False).embed_texts(texts), ref)
    model.train()
    try:
        bf16 = ClipEmbedder(model, processor, dtype="bf16", progress=False).embed_texts(texts)
        assert model.training  # embedding ran in eval mode and restored the mode it found
    finally:
        model.eval()
    assert bf16.dtype == torch.float32 and torch.allclose(bf16.norm(dim=-1), torch.ones(2))
    assert torch.nn.functional.cosine_similarity(bf16, ref).min() > 0.98


def test_retrieval_and_zeroshot_on_a_model(clip, images, tmp_path):
    from read_trainer.evaluation.retrieval import RetrievalTask
    from read_trainer.evaluation.zeroshot import load_imagefolder

    model, processor = clip
    items = load_sugarcrepe(BENCHDATA / "sugarcrepe", images, subsets=("swap_att",), limit=6).subsets["swap_att"]
    task = RetrievalTask("ret", [i.images[0] for i in items], [t for i in items for t in i.texts],
                         [k for k in range(len(items)) for _ in range(2)])
    for i, item in enumerate(items[:3]):
        write_images(tmp_path / "zs", [f"class_{i % 2}/{i}.png"], Path(item.images[0].path).read_bytes())
    zs = load_imagefolder(tmp_path / "zs", templates=["a photo of a {}.", "a {}."])
    results = run_suite([task, zs], ClipEmbedder(model, processor, progress=False))
    r = results["ret"]
    assert r.subsets["image_to_text"]["R@10"] == 100.0 and r.subsets["text_to_image"]["R@10"] == 100.0  # < 10 candidates
    assert r.metrics["n_images"] == 6 and r.metrics["n_texts"] == 12 and 0 <= r.total <= 100
    assert results["zeroshot"].metrics["top5"] == 100.0 and results["zeroshot"].metrics["n"] == 3


def _recipe():
    spec = importlib.util.spec_from_file_location("recipe_run_evaluation", ROOT / "recipes" / "run_evaluation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_recipe_end_to_end_two_models(clip_dirs, images, tmp_path):
    data_root = tmp_path / "data"
    (data_root / "sugarcrepe").mkdir(parents=True)
    for f in (BENCHDATA / "sugarcrepe").glob("*.json"):
        (data_root / "sugarcrepe" / f.name).symlink_to(f)
    (data_root / "sugarcrepe_pp").symlink_to(BENCHDATA / "sugarcrepe_pp")
    out = tmp_path / "out"
    _recipe().main(["--compare", *clip_dirs, "--label", "seed0", "--label", "seed1",
                    "--benchmarks", "sugarcrepe", "sugarcrepe_pp_tot", "--data_root", str(data_root),
                    "--image_root", f"sugarcrepe={images}", "--limit", "5", "--output", str(out),
                    "--batch_size", "64", "--no_progress"])
    doc = json.loads((out / "results.json").read_text())
    assert set(doc["models"]) == {"seed0", "seed1"}
    sc = doc["models"]["seed0"]["benchmarks"]["sugarcrepe"]
    assert sc["metrics"]["n"] == 35 and "macro" in sc["averaging"] and len(sc["subsets"]) == 7
    assert doc["models"]["seed0"]["paper_average"] is None  # only 2 of the 6 ran
    md = (out / "results.md").read_text()
    assert "| SugarCrepe |" in md and "| SugarCrepe++ TOT |" in md and "macro: plain mean" in md
    assert (out / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_callback_logs_in_a_real_trainer_run(clip_dirs, images, tmp_path):
    from transformers import CLIPModel, CLIPProcessor, Trainer, TrainingArguments

    from read_trainer.evaluation.callback import CompositionalEvalCallback

    processor = CLIPProcessor.from_pretrained(clip_dirs[0])
    model = CLIPModel.from_pretrained(clip_dirs[0])
    bench = load_sugarcrepe(BENCHDATA / "sugarcrepe", images, subsets=("swap_att", "swap_obj"), limit=4)
    rows = [{"text": item.texts[0], "image": item.images[0]} for item in bench.subsets["swap_att"]]

    def collate(batch):
        from read_trainer.evaluation.embedding import load_image

        enc = processor(text=[r["text"] for r in batch], images=[load_image(r["image"]) for r in batch],
                        padding=True, return_tensors="pt")
        return {**enc, "return_loss": True}

    args = TrainingArguments(output_dir=str(tmp_path / "run"), max_steps=2, per_device_train_batch_size=2,
                             per_device_eval_batch_size=2, logging_steps=1, save_strategy="no", report_to=[],
                             use_cpu=True, remove_unused_columns=False, eval_strategy="steps", eval_steps=2)
    trainer = Trainer(model=model, args=args, train_dataset=rows, eval_dataset=rows, data_collator=collate,
                      processing_class=processor)
    callback = CompositionalEvalCallback([bench]).attach(trainer)
    trainer.train()
    logged = [h for h in trainer.state.log_history if "eval/sugarcrepe/swap_att" in h]
    assert len(logged) == 1 and logged[0]["step"] == 2
    assert {"eval/sugarcrepe/swap_obj", "eval/sugarcrepe/total", "eval/sugarcrepe/macro"} <= set(logged[0])
    assert callback.latest["sugarcrepe"].metrics["n"] == 8 and callback.latest_step == 2
    cards = callback.model_card_eval_results()
    assert cards[0].dataset_type == "sugarcrepe" and cards[0].metric_value == round(callback.latest["sugarcrepe"].total, 2)
    metrics = trainer.evaluate()  # direct evaluate() returns the suite's numbers too
    assert "eval/sugarcrepe/total" in metrics


def test_callback_with_a_trainer_like_object(clip):
    from types import SimpleNamespace

    from read_trainer.evaluation.callback import CompositionalEvalCallback

    model, processor = clip
    state = SimpleNamespace(is_world_process_zero=True, global_step=3)
    callback = CompositionalEvalCallback([], processor)
    with pytest.raises(RuntimeError, match="attach"):
        callback.on_evaluate(None, state, None, model=model, metrics={})
    logs = []
    callback.trainer = SimpleNamespace(log=logs.append)  # a trainer-like object is enough
    callback.tasks = [Benchmark("toy", {"s": [Item("1", ("a red cube", "a red cube", "a cube"))]},
                                rules.sugarcrepe_pp_tot, needs_text_text=True)]
    callback.on_evaluate(None, state, None, model=model, metrics={})
    assert logs and "eval/toy/s" in logs[0] and callback.history[0]["step"] == 3
    # Other ranks do not evaluate but still call trainer.log (a log() that all-reduces must not hang).
    callback.on_evaluate(None, SimpleNamespace(is_world_process_zero=False, global_step=4), None, model=model)
    assert logs[-1] == {} and len(callback.history) == 1
