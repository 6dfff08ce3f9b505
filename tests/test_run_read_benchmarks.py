"""Benchmarks attached to a training run: logged, saved as results.json, carried into the model card;
the per-loss curves in tensorboard."""

import json
from pathlib import Path

from conftest import load_recipe, write_caption_jsonl
from huggingface_hub import ModelCard

from read_trainer.evaluation.bundled import bundled_data_root

REPO = Path(__file__).resolve().parents[1]
BENCHDATA = bundled_data_root()
run_read = load_recipe("run_read")


def test_benchmarks_during_and_after_training_reach_logs_results_and_card(tiny_models, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert (BENCHDATA / "sugarcrepe_pp").is_dir(), "benchmark annotations missing"
    write_caption_jsonl(tmp_path)
    clip_dir, t5_dir = tiny_models
    out = Path(run_read.main([
        "--model_name_or_path", clip_dir, "--decoder_name_or_path", t5_dir, "--train_file", str(tmp_path / "train.jsonl"),
        "--output_dir", str(tmp_path / "run"), "--max_steps", "2", "--per_device_train_batch_size", "4",
        "--report_to", "tensorboard", "--use_cpu", "true",
        "--save_strategy", "no", "--logging_steps", "1", "--max_grad_norm", "1.0",
        # No --benchmark_data_root: the annotation files shipped with the package.
        "--benchmarks", "sugarcrepe_pp_tot", "--benchmark_limit", "5", "--benchmark_steps", "1",
    ]))
    # The final benchmark log comes after training closed the writer, so it opens a second
    # event file; read each file on its own (nothing purged) and collect every curve.
    steps: dict[str, list[int]] = {}
    for file in sorted((out / "runs").rglob("events.out.tfevents.*")):
        scalars = EventAccumulator(str(file), purge_orphaned_data=False).Reload()
        for tag in scalars.Tags()["scalars"]:
            steps.setdefault(tag, []).extend(e.step for e in scalars.Scalars(tag))
    for curve in ("loss/contrastive", "loss/reconstruction", "loss/alignment"):
        # transformers' tensorboard callback prefixes training logs with "train/".
        assert steps.get(f"train/{curve}") == [1, 2], (curve, sorted(steps))
    assert 2 in steps["train/eval/sugarcrepe_pp_tot/total"]
    results = json.loads((out / "results.json").read_text())
    tot = results["models"]["this model"]["benchmarks"]["sugarcrepe_pp_tot"]
    assert set(tot["subsets"]) == {"replace_att", "replace_obj", "replace_rel", "swap_att", "swap_obj"}
    assert "macro" in tot["averaging"]
    card = ModelCard.load(out / "README.md")
    assert any(r.dataset_type == "sugarcrepe_pp_tot" for r in card.data.eval_results)
    assert "SugarCrepe++ TOT" in card.text
    state = json.loads((out / "read_training_args.json").read_text())
    assert state["model_name_or_path"] == Path(clip_dir).name  # the folder's name, not this machine's path
