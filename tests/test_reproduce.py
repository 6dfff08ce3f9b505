"""``recipes/reproduce.py`` end to end on a local mirror of every source, with the package's tiny models:
prepare -> ``accelerate launch`` training -> both evaluation protocols -> the table beside the paper's.
A rerun finds every stage complete and verified and repeats none of them."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from conftest import load_recipe
from mirror_fixture import MirrorServer, build_mirror, imagenet_folder

from read_trainer.cli import UsageError
from read_trainer.evaluation.paper_comparison import PAPER_RESULTS
from read_trainer.prepare.manifest import MANIFEST_PATH


def _tiny_training(clip: str, t5: str) -> list[str]:
    return ["--model_name_or_path", clip, "--decoder_name_or_path", t5, "--max_steps", "2",
            "--per_device_train_batch_size", "4", "--bf16", "false", "--gradient_checkpointing", "false",
            "--use_cpu", "true", "--report_to", "none", "--dataloader_num_workers", "0", "--save_strategy", "no"]


def test_reproduce_on_the_mirror_prints_our_table_beside_the_papers(tiny_models, tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # the mirror is the Hub here
    reproduce = load_recipe("reproduce")
    clip, t5 = tiny_models
    mirror, manifest, _ = build_mirror(tmp_path, MANIFEST_PATH)
    out = tmp_path / "out"
    started = time.time()
    with MirrorServer(mirror) as server:
        args = ["--data_dir", str(tmp_path / "data"), "--output_dir", str(out), "--mirror", server.url,
                "--manifest", str(manifest), "--base_model", clip, "--imagenet_dir", str(imagenet_folder(tmp_path)),
                "--eval_num_workers", "0", "--no_progress", "--", *_tiny_training(clip, t5)]
        payload = reproduce.main(args)
        elapsed = time.time() - started
        requests = len(server.requests)

        # The table: ours under the paper's protocol, the paper's number, the difference.
        rows = {r["benchmark"]: r for r in payload["comparison"]}
        read = json.loads((out / "eval" / "read" / "results.json").read_text())
        strict = json.loads((out / "eval" / "strict" / "results.json").read_text())
        ours = read["models"]["READ-CLIP (ours)"]
        for name in ("whatsup", "valse", "crepe", "sugarcrepe", "sugarcrepe_pp_itt", "sugarcrepe_pp_tot"):
            assert rows[name]["paper"] == PAPER_RESULTS["READ-CLIP"][name]
            assert rows[name]["ours"] == ours["benchmarks"][name]["total"]
            assert rows[name]["difference"] == pytest.approx(rows[name]["ours"] - rows[name]["paper"])
            assert rows[name]["ours_strict"] == strict["models"]["READ-CLIP (ours)"]["benchmarks"][name]["total"]
            assert ours["benchmarks"][name]["protocol"] == "read"
        assert rows["average"]["ours"] == pytest.approx(ours["paper_average"])
        assert (read["meta"]["protocol"], strict["meta"]["protocol"]) == ("read", "strict")
        assert set(payload["ours"]) == {"read", "strict"} and payload["protocol_for_comparison"] == "read"
        assert set(ours["benchmarks"]) >= {"coco_retrieval", "flickr30k_retrieval", "zeroshot"}
        saved = json.loads((out / "results.json").read_text())
        assert saved["comparison"] == payload["comparison"]
        markdown = (out / "results.md").read_text()
        assert "| SugarCrepe | " in markdown and "| 87.0 |" in markdown and "paper READ-CLIP" in markdown
        card = (out / "model" / "README.md").read_text()
        assert "paper READ-CLIP" in card and "READ paper's evaluation protocol" in card
        assert "zero-shot-image-classification" in card
        # What was trained: the prepared table, the official paraphrases, drawn from the image pool.
        note = json.loads((out / "model" / ".reproduce_trained.json").read_text())
        command = note["command"]
        assert command[:3][1:] == ["-m", "accelerate.commands.launch"]
        assert command[command.index("--paraphrase_sampling") + 1] == "image_pool"
        assert command[command.index("--paraphrase_file") + 1].endswith("paraphrases/zero.json")
        assert json.loads((tmp_path / "data" / "coco_read" / "prepared.json").read_text())["rows"] == 6

        # A rerun: nothing downloaded, nothing trained or evaluated again, the same table.
        def no_training(*a, **k):
            raise AssertionError("training ran again")

        monkeypatch.setattr(subprocess, "run", no_training)
        again = reproduce.main(args)
        assert len(server.requests) == requests
        assert again["comparison"] == payload["comparison"]
    print(f"reproduce on the mirror: {elapsed:.1f} s wall (prepare, accelerate launch training, evaluation)")


def _fake_training(model_dir: Path, calls: list):
    def run(command, **_):
        calls.append(command)
        model_dir.mkdir(parents=True, exist_ok=True)
        (model_dir / "model.safetensors").write_bytes(b"weights")
        return subprocess.CompletedProcess(command, 0)

    return run


def _train_args(reproduce, tmp_path, *extra):
    args, rest = reproduce.parse_args(["--output_dir", str(tmp_path / "out"), "--data_dir", str(tmp_path / "data"),
                                       "--num_processes", "4", *extra])
    return args, rest


def test_training_resumes_a_crashed_run_and_never_trains_over_a_finished_one(tmp_path, monkeypatch):
    reproduce = load_recipe("reproduce")
    model_dir = tmp_path / "out" / "model"
    calls: list = []
    monkeypatch.setattr(subprocess, "run", _fake_training(model_dir, calls))
    prepared = {"paraphrase_file": None}
    (model_dir / "checkpoint-500").mkdir(parents=True)  # a run that crashed after its first checkpoint
    args, extra = _train_args(reproduce, tmp_path, "--paraphrases", "none")
    recorded = reproduce.train(args, extra, prepared)
    command = calls[-1]
    assert command[command.index("--resume_from_checkpoint") + 1] == "True"
    assert command[command.index("--paraphrase_file") + 1] == "none"
    # Any number of GPUs: the global batch of 256 is split over the processes.
    assert command[command.index("--num_processes") + 1] == "4" and "--multi_gpu" in command
    assert command[command.index("--per_device_train_batch_size") + 1] == "64"
    assert recorded["weights_sha256"] == reproduce.weights_sha256(model_dir)
    # Finished: a rerun trains nothing; other settings or altered weights are refused.
    reproduce.train(args, extra, prepared)
    assert len(calls) == 1
    other, other_extra = _train_args(reproduce, tmp_path, "--paraphrases", "official")
    with pytest.raises(UsageError, match="trained with other settings"):
        reproduce.train(other, other_extra, prepared)
    (model_dir / "model.safetensors").write_bytes(b"tampered")
    with pytest.raises(UsageError, match="exported weights changed since training finished"):
        reproduce.train(args, extra, prepared)
    with pytest.raises(UsageError, match="does not split over 3 processes"):
        reproduce.training_command(args, [], model_dir, Path("t.jsonl"), None, 3)
