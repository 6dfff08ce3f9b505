"""A checkpoint is data, never code, and never another run's.

* a pickle whose ``__reduce__`` would run code, planted in any file of a map-style or a
  streaming checkpoint (with the record's hashes rewritten to match, as whoever hands you the
  folder could), is refused in one line naming the file, and the code never runs;
* every checkpoint records each file's size and SHA-256 (written last); a resume passes over a
  checkpoint cut short or damaged since (naming the file) to the previous complete one;
* ``--overwrite_output_dir`` starts a new run: the earlier run's checkpoints are removed before
  the first save and a resume takes only the folder's run's checkpoints, also after a save that
  was cut short in a folder of the same name;
* a streaming resume compares the shard list (names and sizes) it was trained on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from conftest import make_rows

from read_trainer.config import ReadConfig
from read_trainer.output_dir import release_output_dir
from read_trainer.run_record import RUN_RECORD_NAME, ResumeError, checkpoint_problem, read_json
from read_trainer.trainer import ReadTrainer


def _config(tiny_models, out, **kw):
    clip_dir, t5_dir = tiny_models
    options = dict(output_dir=str(out), model_name_or_path=clip_dir, decoder_name_or_path=t5_dir,
                   per_device_train_batch_size=4, max_steps=2, learning_rate=1e-3, warmup_steps=0,
                   report_to="none", use_cpu=True, save_strategy="steps", save_steps=1, logging_steps=1,
                   dataloader_num_workers=0, disable_tqdm=True)
    options.update(kw)
    return ReadConfig(**options)


def _map_trainer(tiny_models, out, **kw):
    return ReadTrainer(args=_config(tiny_models, out, **kw), train_dataset=make_rows(8, paraphrases=True))


def _stream_trainer(tiny_models, out, shards, **kw):
    from read_trainer.data.loading import DataArguments
    from read_trainer.data.streaming import open_read_stream

    config = _config(tiny_models, out, **kw)
    stream, _ = open_read_stream(DataArguments(train_file=str(shards), streaming=True, shuffle_buffer_size=2), config)
    return ReadTrainer(args=config, train_dataset=stream)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _reseal(checkpoint: Path) -> None:
    """Rewrite the record's sizes and hashes to the files as they are now (what a forger would do)."""
    record = read_json(str(checkpoint / RUN_RECORD_NAME))
    record["files"] = {p.relative_to(checkpoint).as_posix(): {"size": p.stat().st_size, "sha256": _sha256(p)}
                       for p in sorted(checkpoint.rglob("*")) if p.is_file() and p.name != RUN_RECORD_NAME}
    (checkpoint / RUN_RECORD_NAME).write_text(json.dumps(record))


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    from read_trainer.data.shards import write_webdataset_shards

    folder = tmp_path_factory.mktemp("shards") / "wds"
    write_webdataset_shards(make_rows(8, paraphrases=True), str(folder), 4, image_format="png")
    return folder


@pytest.fixture(scope="module")
def runs(tiny_models, shards, tmp_path_factory):
    """{'map': output folder, 'stream': output folder}: 2-step runs with checkpoint-1 and checkpoint-2."""
    root = tmp_path_factory.mktemp("runs")
    _map_trainer(tiny_models, root / "map").train()
    _stream_trainer(tiny_models, root / "stream", shards).train()
    for kind in ("map", "stream"):
        release_output_dir(str(root / kind))
    return {"map": root / "map", "stream": root / "stream"}


# -- a checkpoint is data ---------------------------------------------------------------------

class Payload:
    """Unpickled without restrictions, this creates ``marker``: proof that the pickle ran code."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('the payload ran')",)


def test_the_planted_payload_runs_when_unpickled_without_restrictions(tmp_path):
    # The control: the payload is live, so its marker's absence below means it did not run.
    marker = tmp_path / "ran"
    torch.save({"state": Payload(str(marker))}, tmp_path / "x.pt")
    torch.load(tmp_path / "x.pt", weights_only=False)
    assert marker.read_text() == "the payload ran"


@pytest.mark.parametrize("kind", ["map", "stream"])
def test_a_pickle_payload_in_any_checkpoint_file_is_refused_in_one_line_and_never_runs(
        tiny_models, shards, runs, kind, tmp_path):
    source = runs[kind] / "checkpoint-2"
    names = sorted(p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file())
    expected = {"model.safetensors", "read_head.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth",
                "trainer_state.json", RUN_RECORD_NAME} | ({"stream_state_0.pt"} if kind == "stream" else set())
    assert expected <= set(names), names
    # Files Trainer or a loader would read if a checkpoint had them (fp16 scaler, pickled arguments,
    # FSDP's sharded optimizer metadata, a plain pickle), each as torch.save writes it; then two as
    # a plain pickle stream, which no torch.load reads without unpickling.
    planted = [(name, "torch") for name in names + ["scaler.pt", "training_args.bin", "optimizer_0/.metadata"]]
    planted += [("optimizer.pt", "pickle"), ("optimizer_0/.metadata", "pickle")]
    out = tmp_path / "out"
    trainer = (_stream_trainer(tiny_models, out, shards, max_steps=3) if kind == "stream"
               else _map_trainer(tiny_models, out, max_steps=3))
    marker = tmp_path / "ran"
    wrong = []
    for name, how in planted:
        checkpoint = tmp_path / f"planted-{name.replace('/', '_')}"
        shutil.copytree(source, checkpoint)
        (checkpoint / name).parent.mkdir(exist_ok=True)
        with open(checkpoint / name, "wb") as f:
            (torch.save if how == "torch" else pickle.dump)({"state": Payload(str(marker))}, f)
        if name != RUN_RECORD_NAME:
            _reseal(checkpoint)
        try:
            trainer.train(resume_from_checkpoint=str(checkpoint))
            outcome = "resumed"
        except ResumeError as refused:
            message = str(refused)
            outcome = None if name in message and "\n" not in message else f"refused without naming it: {message}"
        except Exception as error:  # noqa: BLE001 - any other failure is a wrong outcome, recorded
            outcome = f"{type(error).__name__}: {str(error).strip().splitlines()[0]}"
        if marker.exists():
            outcome = "THE PAYLOAD RAN"
            marker.unlink()
        if outcome is not None:
            wrong.append(f"{name} ({how}): {outcome}")
        shutil.rmtree(checkpoint)
        release_output_dir(str(out))
    assert not wrong, "\n".join(wrong)
    assert trainer.state.global_step == 0


def test_the_stream_position_loads_as_data_only(tmp_path):
    from read_trainer.data.stream_loader import STREAM_STATE_NAME, StreamLoader

    marker = tmp_path / "ran"
    torch.save({"loader": Payload(str(marker)), "epoch": 0, "world_size": 1, "num_workers": 0},
               tmp_path / STREAM_STATE_NAME.format(rank=0))
    class Empty(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter(())

    loader = StreamLoader(Empty(), batch_size=1, collate_fn=list)
    with pytest.raises(Exception, match="Weights only load failed"):
        loader.restore(str(tmp_path), rank=0, world_size=1)
    assert not marker.exists()


# -- integrity ----------------------------------------------------------------------------------

def test_every_file_is_recorded_with_its_size_and_hash_and_the_run(runs):
    checkpoint = runs["map"] / "checkpoint-2"
    record = read_json(str(checkpoint / RUN_RECORD_NAME))
    files = {p.relative_to(checkpoint).as_posix(): p for p in checkpoint.rglob("*")
             if p.is_file() and p.name != RUN_RECORD_NAME}
    assert set(record["files"]) == set(files)
    for name, path in files.items():
        assert record["files"][name] == {"size": path.stat().st_size, "sha256": _sha256(path)}, name
    # The record is the last file written: nothing in the checkpoint is newer.
    assert all(path.stat().st_mtime_ns <= (checkpoint / RUN_RECORD_NAME).stat().st_mtime_ns for path in files.values())
    # What makes two runs different, and which run this is (the folder records the same run).
    assert record["learning_rate"] == 1e-3 and record["seed"] == 2025 and record["max_steps"] == 2
    assert record["lr_scheduler_type"] == "cosine" and record["per_device_train_batch_size"] == 4
    assert record["run_id"] == read_json(str(runs["map"] / RUN_RECORD_NAME))["run_id"]
    assert record["run_id"] == read_json(str(runs["map"] / "checkpoint-1" / RUN_RECORD_NAME))["run_id"]
    stream = read_json(str(runs["stream"] / "checkpoint-2" / RUN_RECORD_NAME))
    assert stream["data_fingerprint"].startswith("shards:") and "stream_state_0.pt" in stream["files"]


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _zero_bytes(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle: middle + 64] = bytes(64)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name, damage, reason", [
    ("model.safetensors", _truncate, r"model\.safetensors is \d+ bytes, \d+ when saved"),
    ("model.safetensors", _zero_bytes, r"model\.safetensors does not match the SHA-256 recorded"),
    ("optimizer.pt", _zero_bytes, r"optimizer\.pt does not match the SHA-256 recorded"),
])
def test_a_damaged_checkpoint_is_skipped_naming_the_file_for_the_previous_complete_one(
        tiny_models, runs, name, damage, reason, tmp_path, caplog):
    out = tmp_path / "run"
    shutil.copytree(runs["map"], out)
    damage(out / "checkpoint-2" / name)

    trainer = _map_trainer(tiny_models, out)
    with pytest.raises(ResumeError, match=rf"cannot resume \S+checkpoint-2: {reason}.*resume from an earlier"):
        trainer.train(resume_from_checkpoint=str(out / "checkpoint-2"))

    caplog.set_level(logging.WARNING)
    trainer.train(resume_from_checkpoint="last")
    assert any(r.getMessage().startswith(f"skipping damaged checkpoint {out / 'checkpoint-2'}: ")
               and len(r.getMessage().splitlines()) == 1 for r in caplog.records), caplog.text
    assert f"resuming from {out / 'checkpoint-1'}" in caplog.text
    # Step 2 trained again from checkpoint-1's state, and saved over the damaged checkpoint.
    assert trainer.state.global_step == 2
    assert [e["step"] for e in trainer.state.log_history if "loss" in e] == [1, 2]
    assert checkpoint_problem(str(out / "checkpoint-2"), needs_head=True) is None
    release_output_dir(str(out))


def test_save_total_limit_still_rotates_and_keeps_sealed_checkpoints(tiny_models, tmp_path):
    out = tmp_path / "run"
    _map_trainer(tiny_models, out, max_steps=3, save_total_limit=2).train()
    release_output_dir(str(out))
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-3"]
    assert all(checkpoint_problem(str(out / n), needs_head=True) is None for n in ("checkpoint-2", "checkpoint-3"))


# -- one run per folder -------------------------------------------------------------------------

def test_overwrite_starts_a_new_run_whose_resume_never_takes_the_earlier_runs_checkpoint(
        tiny_models, tmp_path, caplog):
    out = tmp_path / "out"
    first = _map_trainer(tiny_models, out, max_steps=4, save_steps=2)
    first.train()
    release_output_dir(str(out))
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]

    caplog.set_level(logging.WARNING)
    second = _map_trainer(tiny_models, out, max_steps=2, save_steps=2, overwrite_output_dir=True)
    second.train()
    release_output_dir(str(out))

    resumed = _map_trainer(tiny_models, out, max_steps=3, save_steps=2)
    resumed.train(resume_from_checkpoint="last")
    # The second run's checkpoint-2, not the first run's checkpoint-4: one more step, on its history.
    assert resumed.state.global_step == 3
    assert [e["step"] for e in resumed.state.log_history if "loss" in e] == [1, 2, 3]
    assert f"resuming from {out / 'checkpoint-2'}" in caplog.text and resumed.run_id == second.run_id != first.run_id
    assert (f"overwrite_output_dir: removed the earlier run's 2 checkpoint(s) from {out} before the first save "
            "(checkpoint-2, checkpoint-4)") in caplog.text
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-3"]
    release_output_dir(str(out))


def test_a_checkpoint_of_another_run_is_passed_over_by_last(runs, tmp_path, caplog):
    from read_trainer.run_record import resolve_resume

    out = tmp_path / "run"
    shutil.copytree(runs["map"], out)
    # A newer, complete checkpoint of another run (copied in, or left by a cut removal).
    shutil.copytree(out / "checkpoint-2", out / "checkpoint-9")
    record = read_json(str(out / "checkpoint-9" / RUN_RECORD_NAME))
    (out / "checkpoint-9" / RUN_RECORD_NAME).write_text(json.dumps(dict(record, run_id="another-run")))
    caplog.set_level(logging.WARNING)
    assert resolve_resume("last", str(out), needs_head=True, weights_only=False) == str(out / "checkpoint-2")
    assert f"skipping other run's checkpoint {out / 'checkpoint-9'}: it belongs to run another-run" in caplog.text


class Killed(BaseException):
    """Stands for a kill: not an Exception, so no handler of Trainer's catches it."""


def test_a_save_cut_short_in_a_folder_of_the_same_name_is_never_taken_for_complete(
        tiny_models, runs, tmp_path, monkeypatch):
    from transformers import Trainer

    out = tmp_path / "out"
    shutil.copytree(runs["map"], out)  # the earlier run: checkpoint-1 and checkpoint-2

    # The new run is killed while it writes checkpoint-1, after its weights, before its optimizer.
    def killed(self, output_dir):
        raise Killed()

    monkeypatch.setattr(Trainer, "_save_optimizer_and_scheduler", killed)
    with pytest.raises(Killed):
        _map_trainer(tiny_models, out, max_steps=1, overwrite_output_dir=True).train()
    monkeypatch.undo()
    release_output_dir(str(out))
    # The new run's weights are there; neither the earlier run's optimizer and state nor its checkpoint-2.
    assert (out / "checkpoint-1" / "model.safetensors").is_file()
    assert not (out / "checkpoint-1" / "optimizer.pt").exists() and not (out / "checkpoint-2").exists()
    with pytest.raises(ResumeError, match=r"no complete checkpoint of this run in"):
        _map_trainer(tiny_models, out).train(resume_from_checkpoint="last")
    release_output_dir(str(out))


# -- streaming data -----------------------------------------------------------------------------

@pytest.mark.parametrize("change", ["none (the shards copied elsewhere)", "drop a shard", "rewrite a shard"])
def test_a_streaming_resume_compares_the_shard_names_and_sizes(tiny_models, shards, runs, change, tmp_path):
    other = tmp_path / "shards"
    shutil.copytree(shards, other)
    first = sorted(other.iterdir())[0]
    if change == "drop a shard":
        first.unlink()
    elif change == "rewrite a shard":  # same name, other samples (three times as many: another size)
        from read_trainer.data.shards import write_webdataset_shards

        write_webdataset_shards(make_rows(12, paraphrases=True), str(tmp_path / "new"), 12, image_format="png")
        shutil.move(tmp_path / "new" / "train-00000.tar", first)
    out = tmp_path / "run"
    shutil.copytree(runs["stream"], out)
    trainer = _stream_trainer(tiny_models, out, other, max_steps=3)
    if change.startswith("none"):
        trainer.train(resume_from_checkpoint="last")
        assert trainer.state.global_step == 3
    else:
        with pytest.raises(ResumeError, match=r"the streamed shards \(names and sizes\) differ from its data"):
            trainer.train(resume_from_checkpoint="last")
        assert trainer.state.global_step == 0
    release_output_dir(str(out))
