"""Streaming training data (``--streaming``): shards written here, read shard by shard (shard_reading.py).

* the webdataset and parquet shards that ``read_trainer.data.shards`` writes stream back as
  the rows that went in (images decoded, paraphrases looked up per caption), each row once
  per pass, with DataLoader workers; so do JSONL shards (image paths relative to the shard),
  URL patterns (fsspec, ``file://``), a folder laid out like a hub dataset (through
  ``load_dataset_builder``) and what ``recipes/make_shards.py`` writes from a loaded dataset;
* a real 2-process gloo run (``torchrun --nproc_per_node 2``, each process with 2 workers)
  trains on every sample exactly once per epoch, over two epochs, and on parquet shards;
* a run SIGKILLed right after a checkpoint and resumed trains on exactly the samples the
  uninterrupted run trained on after that step, reads none of those before it again, and
  ends with the same weights (1e-6);
* a corrupt image and a missing caption are skipped and reported with shard and key while
  every other sample trains; a shard of mostly bad samples stops the run, naming it;
* a damaged shard (truncated tar, parquet or JSONL, a corrupt or zeroed tar header) is one
  reported entry naming it, counted against max_invalid_fraction; image paths stay in the
  shard's folder, and a remote shard opens no local file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest
import torch
from conftest import CAPTIONS, load_recipe, make_rows, random_image, write_caption_jsonl
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[1]
ROWS, PER_SHARD = 16, 4
BAD_IMAGE = {"bytes": b"\x89PNG\r\n\x1a\n but not an image", "path": "broken.png"}


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """{'webdataset': folder, 'parquet': folder}: 16 rows in 4 shards of 4 each."""
    from read_trainer.data.shards import write_parquet_shards, write_webdataset_shards

    root = tmp_path_factory.mktemp("shards")
    rows = make_rows(ROWS, paraphrases=True)
    write_webdataset_shards(rows, str(root / "wds"), PER_SHARD, image_format="png")
    write_parquet_shards(rows, str(root / "parquet"), PER_SHARD, image_format="png")
    return {"webdataset": str(root / "wds"), "parquet": str(root / "parquet")}


def _stream(spec: str, **options):
    from read_trainer.data.stream_checks import ValidatedStream
    from read_trainer.data.streaming import open_shards, shard_files

    return ValidatedStream(open_shards(shard_files(spec), seed=options.pop("seed", 0)), **options)


@pytest.mark.parametrize("kind", ["webdataset", "parquet"])
def test_shards_stream_back_the_rows_once_per_pass_with_workers(shards, kind, tmp_path):
    from read_trainer.data.stream_loader import StreamLoader

    table = {CAPTIONS[1][0]: ["a rider on a horse by the sea"]}
    stream = _stream(shards[kind], shuffle_buffer_size=3, paraphrases=table, paraphrase_file="sidecar.jsonl",
                     report_file=str(tmp_path / "invalid.jsonl"))
    loader = StreamLoader(stream, batch_size=3, collate_fn=list, num_workers=2)
    rows = [row for batch in loader for row in batch]
    names = [row["row_id"] for row in rows]
    shard_names = sorted(os.listdir(shards[kind]))
    expected = sorted(f"{shard_names[i // PER_SHARD]}/{i:09d}" for i in range(ROWS))
    assert sorted(names) == expected  # every row once: the two workers read disjoint shards
    assert names != expected  # shuffled
    source = make_rows(ROWS, paraphrases=True)
    for row in rows:
        i = int(row["row_id"].rsplit("/", 1)[1])
        assert row["captions"] == source[i]["captions"] and row["negatives"] == source[i]["negatives"]
        assert row["image"].mode == "RGB" and list(row["image"].getdata()) == list(source[i]["image"].getdata())
        # The sidecar replaces the row's paraphrases: looked up per caption, [] where it has none.
        assert row["paraphrases"] == [table.get(c, []) for c in row["captions"]]
    assert not (tmp_path / "invalid.jsonl").exists()
    assert loader.epoch == 1
    second = [row["row_id"] for batch in loader for row in batch]
    assert sorted(second) == expected and second != names  # the next pass reshuffles


def test_only_the_main_process_sets_the_shard_epoch_that_workers_share(shards, tmp_path, monkeypatch):
    """datasets keeps a stream's epoch (its shard order) in memory shared with the DataLoader
    workers and adds the difference in place: two workers each setting 1 over 0 can leave 2."""
    import datasets

    from read_trainer.data.stream_loader import StreamLoader

    calls = tmp_path / "set_epoch.txt"
    set_epoch = datasets.IterableDataset.set_epoch

    def recorded(self, epoch):  # forked workers inherit this, and append their own lines
        with calls.open("a") as f:
            f.write(f"{os.getpid()} {epoch}\n")
        set_epoch(self, epoch)

    monkeypatch.setattr(datasets.IterableDataset, "set_epoch", recorded)
    stream = _stream(shards["webdataset"], shuffle_buffer_size=3)
    loader = StreamLoader(stream, batch_size=3, collate_fn=list, num_workers=2)
    passes = [[row["row_id"] for batch in loader for row in batch] for _ in range(3)]
    assert [line.split() for line in calls.read_text().splitlines()] == [[str(os.getpid()), str(e)] for e in range(3)]
    assert stream.source.epoch == 2 and all(sorted(p) == sorted(passes[0]) for p in passes)

    # A worker whose pass is not the source's says so instead of reading another shard order.
    stream.epoch = 3
    with pytest.raises(RuntimeError, match=r"reads pass 3 but the stream's source is at pass 2: call set_epoch\(3\)"):
        next(iter(torch.utils.data.DataLoader(stream, batch_size=3, collate_fn=list, num_workers=1)))


def test_jsonl_shards_with_image_paths_relative_to_the_shard(tmp_path):
    folder = tmp_path / "jsonl"
    (folder / "images").mkdir(parents=True)
    source = make_rows(6)
    for shard in range(2):
        lines = []
        for i in range(3 * shard, 3 * shard + 3):
            source[i]["image"].save(folder / "images" / f"{i}.png")
            lines.append(json.dumps({"__key__": f"k{i}", "image": f"images/{i}.png", "captions": source[i]["captions"]}))
        (folder / f"part-{shard}.jsonl").write_text("\n".join(lines) + "\n")
    rows = list(_stream(str(folder), seed=None, shuffle_buffer_size=0, report_file=None))
    assert [row["row_id"] for row in rows] == [f"part-{i // 3}.jsonl/k{i}" for i in range(6)]
    for i, row in enumerate(rows):
        assert list(row["image"].getdata()) == list(source[i]["image"].getdata())
        assert row["captions"] == source[i]["captions"]


def test_url_patterns_of_shards_are_expanded_and_streamed_through_fsspec(shards):
    from read_trainer.data.streaming import shard_files

    pattern = "file://" + str(Path(shards["parquet"]) / "train-*.parquet")
    files = shard_files(pattern)
    assert files == [f"file://{shards['parquet']}/train-{i:05d}.parquet" for i in range(ROWS // PER_SHARD)]
    rows = list(_stream(pattern, seed=None, shuffle_buffer_size=0, report_file=None))  # in order
    assert [row["row_id"] for row in rows] == [f"train-{i // PER_SHARD:05d}.parquet/{i:09d}" for i in range(ROWS)]
    with pytest.raises(FileNotFoundError, match="no shard matches"):
        shard_files("file://" + str(Path(shards["parquet"]) / "valid-*.parquet"))


def test_a_dataset_laid_out_like_a_hub_repo_streams_file_by_file_with_negatives_on_the_fly(
        tiny_models, shards, tmp_path):
    """``--dataset_name`` goes through ``load_dataset_builder``'s data files, as for a hub id."""
    from transformers import CLIPProcessor

    from read_trainer.config import ReadConfig
    from read_trainer.data.collator import ReadCollator
    from read_trainer.data.loading import DataArguments, negative_generator_for
    from read_trainer.data.streaming import open_read_stream

    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    for i, name in enumerate(sorted(os.listdir(shards["parquet"]))[:2]):
        shutil.copy(Path(shards["parquet"]) / name, repo / "data" / f"train-{i:05d}-of-00002.parquet")
    config = ReadConfig(output_dir=str(tmp_path / "run"), max_steps=1, report_to="none", use_cpu=True)
    data_args = DataArguments(dataset_name=str(repo), streaming=True, hard_negatives="generate")
    stream, evaluation = open_read_stream(data_args, config)
    rows = list(stream)
    assert evaluation is None
    assert sorted(row["row_id"] for row in rows) == [f"train-{i // PER_SHARD:05d}-of-00002.parquet/{i:09d}"
                                                      for i in range(2 * PER_SHARD)]
    # hard_negatives=generate: the rows' own negatives are dropped, the generator makes them per anchor.
    assert not any("negatives" in row for row in rows)
    generator = negative_generator_for(data_args, stream, config.num_hard_negatives, config.seed)
    collator = ReadCollator(processor=CLIPProcessor.from_pretrained(tiny_models[0]), negative_generator=generator)
    batch = collator(rows[:4])
    assert batch["input_ids"].shape[0] == 4 * (1 + 3) + 4  # anchors, 3 negatives each, paraphrases


def test_a_paraphrase_sidecar_that_matches_no_streamed_caption_is_an_error(shards):
    stream = _stream(shards["webdataset"], paraphrases={"a caption of another dataset": ["x"]},
                     paraphrase_file="other.jsonl", min_samples=4, report_file=None)
    with pytest.raises(ValueError, match="paraphrase_file 'other.jsonl' matches no caption of the first 4"):
        list(stream)


def test_make_shards_writes_any_loadable_dataset_as_streamable_shards(tmp_path):
    from read_trainer.data.streaming import open_shards

    write_caption_jsonl(tmp_path)  # a JSONL file with image paths, as run_read.py loads it
    make_shards = load_recipe("make_shards")
    paths = make_shards.main(["--train_file", str(tmp_path / "train.jsonl"), "--output", str(tmp_path / "shards"),
                              "--samples_per_shard", "3", "--image_format", "png"])
    assert [Path(p).name for p in paths] == ["train-00000.tar", "train-00001.tar"]
    rows = sorted(open_shards(paths), key=lambda row: row["__key__"])
    assert [row["__key__"] for row in rows] == [f"{i:09d}" for i in range(len(CAPTIONS))]
    for i, row in enumerate(rows):
        assert row["json"]["captions"] == CAPTIONS[i]
        # The PNG files' own bytes, not a re-encoding.
        assert row["png"]["bytes"] == (tmp_path / f"{i}.png").read_bytes()


def test_corrupt_samples_are_skipped_and_reported_and_every_other_sample_trains(tiny_models, tmp_path):
    from read_trainer.config import ReadConfig
    from read_trainer.data.collator import ReadCollator
    from read_trainer.data.shards import write_webdataset_shards
    from read_trainer.trainer import ReadTrainer

    rows = make_rows(12, paraphrases=True)
    rows[5]["image"] = BAD_IMAGE
    rows[9]["captions"] = ["   "]
    folder = tmp_path / "shards"
    write_webdataset_shards(rows, str(folder), PER_SHARD, image_format="png")
    report = tmp_path / "invalid.jsonl"
    stream = _stream(str(folder), shuffle_buffer_size=4, report_file=str(report), min_samples=100)

    trained = []

    class Recording(ReadCollator):
        def __call__(self, batch):
            trained.extend(row["row_id"] for row in batch)
            return super().__call__(batch)

    clip_dir, t5_dir = tiny_models
    config = ReadConfig(output_dir=str(tmp_path / "run"), model_name_or_path=clip_dir, decoder_name_or_path=t5_dir,
                        per_device_train_batch_size=5, max_steps=2, report_to="none", use_cpu=True,
                        save_strategy="no", learning_rate=1e-3, warmup_steps=0, disable_tqdm=True)
    from transformers import AutoTokenizer, CLIPProcessor

    processor = CLIPProcessor.from_pretrained(clip_dir)
    collator = Recording(processor=processor, decoder_tokenizer=AutoTokenizer.from_pretrained(t5_dir), seed=1)
    ReadTrainer(args=config, train_dataset=stream, processing_class=processor, data_collator=collator).train()

    assert sorted(trained) == sorted(f"train-{i // PER_SHARD:05d}.tar/{i:09d}" for i in range(12) if i not in (5, 9))
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert [(Path(r["shard"]).name, r["key"]) for r in sorted(lines, key=lambda r: r["key"])] == [
        ("train-00001.tar", "000000005"), ("train-00002.tar", "000000009")]
    problems = {r["key"]: " ".join(r["problems"]) for r in lines}
    assert "image does not decode" in problems["000000005"]
    assert "no non-empty caption" in problems["000000009"]


def test_a_shard_of_mostly_bad_samples_stops_the_run_naming_it(tiny_models, tmp_path):
    from read_trainer.data.shards import write_webdataset_shards
    from read_trainer.data.stream_checks import InvalidShardError

    rows = make_rows(12)
    for i in (4, 5, 6):  # three of the four samples of the second shard
        rows[i]["image"] = BAD_IMAGE
    folder = tmp_path / "shards"
    write_webdataset_shards(rows, str(folder), PER_SHARD, image_format="png")
    clip_dir, t5_dir = tiny_models
    args = ["--model_name_or_path", clip_dir, "--decoder_name_or_path", t5_dir, "--streaming", "true",
            "--train_file", str(folder), "--shuffle_buffer_size", "0", "--max_invalid_fraction", "0.5",
            "--min_samples_for_invalid_check", "4", "--output_dir", str(tmp_path / "run"),
            "--per_device_train_batch_size", "2", "--report_to", "none", "--use_cpu", "true"]
    run_read = load_recipe("run_read")
    with pytest.raises(InvalidShardError, match=r"shard \S*train-00001\.tar: 3 of the 4 samples read are invalid"):
        run_read.main(args + ["--max_steps", "6"])
    reported = [json.loads(line) for line in (tmp_path / "run" / "invalid_rows.jsonl").read_text().splitlines()]
    assert [r["key"] for r in reported] == ["000000004", "000000005", "000000006"]
    # No schedule without max_steps: a stream has no length.
    with pytest.raises(ValueError, match="--streaming needs --max_steps"):
        run_read.main(args)


# -- damaged shards and image paths --------------------------------------------------------


def _damaged_tar(folder: Path, damage: str) -> Path:
    """Two 4-sample tar shards; the second damaged at its fifth member (the third sample's image)."""
    import tarfile

    from read_trainer.data.shards import write_webdataset_shards

    write_webdataset_shards(make_rows(8), str(folder), PER_SHARD, image_format="png")
    shard = folder / "train-00001.tar"
    with tarfile.open(shard) as tar:
        member = tar.getmembers()[4]
    data = bytearray(shard.read_bytes())
    if damage == "truncated":
        data = data[: member.offset_data + 100]  # inside the member's bytes
    elif damage == "corrupt header":
        data[member.offset + 3] ^= 0xFF  # its checksum no longer matches: tarfile stops there, silently
    else:  # "zeroed header": reads as the end of the archive, with the rest of the shard after it
        data[member.offset: member.offset + 512] = bytes(512)
    shard.write_bytes(bytes(data))
    return shard


@pytest.mark.parametrize("damage", ["truncated", "corrupt header", "zeroed header"])
def test_a_damaged_tar_shard_is_reported_by_name_and_counted(tmp_path, damage):
    from read_trainer.data.stream_checks import InvalidShardError

    shard = _damaged_tar(tmp_path / "shards", damage)
    report = tmp_path / "invalid.jsonl"
    stream = _stream(str(tmp_path / "shards"), seed=None, shuffle_buffer_size=0, report_file=str(report))
    names = [row["row_id"] for row in stream]
    # The whole first shard, and the damaged one up to the damage; nothing else, and no crash.
    assert names == [f"train-00000.tar/{i:09d}" for i in range(4)] + [f"train-00001.tar/{i:09d}" for i in (4, 5)]
    (entry,) = [json.loads(line) for line in report.read_text().splitlines()]
    assert entry["shard"] == str(shard) and "the rest of it is skipped after 2 samples" in entry["problems"][0]
    assert stream._state["bad"] == {str(shard): 1}  # one invalid entry of that shard, for max_invalid_fraction
    # ... which stops the run when the fraction is exceeded, naming the shard.
    strict = _stream(str(tmp_path / "shards"), seed=None, shuffle_buffer_size=0, report_file=None,
                     max_invalid_fraction=0.2, min_samples=3)
    with pytest.raises(InvalidShardError, match=r"shard \S*train-00001\.tar: 1 of the 3 samples read are invalid"):
        list(strict)


def test_truncated_parquet_and_jsonl_shards_are_reported_by_name(shards, tmp_path):
    parquet = tmp_path / "parquet"
    parquet.mkdir()
    for name in sorted(os.listdir(shards["parquet"]))[:2]:
        shutil.copy(Path(shards["parquet"]) / name, parquet / name)
    cut = parquet / "train-00001.parquet"
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])  # no footer: unreadable from the start
    report = tmp_path / "parquet.jsonl"
    rows = list(_stream(str(parquet), seed=None, shuffle_buffer_size=0, report_file=str(report)))
    assert [row["row_id"] for row in rows] == [f"train-00000.parquet/{i:09d}" for i in range(PER_SHARD)]
    (entry,) = [json.loads(line) for line in report.read_text().splitlines()]
    assert entry["shard"] == str(cut) and "skipped after 0 samples" in entry["problems"][0]

    jsonl = tmp_path / "jsonl"
    jsonl.mkdir()
    random_image(0).save(jsonl / "0.png")
    lines = [json.dumps({"image": "0.png", "captions": [f"caption {i}"]}) for i in range(3)]
    (jsonl / "part-0.jsonl").write_text("\n".join(lines) + "\n")
    (jsonl / "part-1.jsonl").write_text("\n".join(lines)[:-20])  # the last line cut short
    report = tmp_path / "jsonl-report.jsonl"
    rows = list(_stream(str(jsonl), seed=None, shuffle_buffer_size=0, report_file=str(report)))
    assert [row["row_id"] for row in rows] == [f"part-{s}.jsonl/{i}" for s, n in ((0, 3), (1, 2)) for i in range(n)]
    (entry,) = [json.loads(line) for line in report.read_text().splitlines()]
    assert entry["shard"] == str(jsonl / "part-1.jsonl") and entry["key"] == "2"
    assert entry["problems"][0].startswith("line 3 is not a JSON object")


def test_stream_image_paths_stay_in_the_shard_folder_and_a_remote_shard_names_no_local_file(tmp_path, monkeypatch):
    from PIL import Image

    folder = tmp_path / "data"
    (folder / "images").mkdir(parents=True)
    random_image(0).save(folder / "images" / "0.png")
    secret = tmp_path / "secret.png"
    random_image(1).save(secret)
    paths = {"k0": "images/0.png", "k1": "../secret.png", "k2": str(secret), "k3": str(folder / "images" / "0.png")}
    (folder / "part.jsonl").write_text("".join(json.dumps({"__key__": k, "image": p, "captions": ["a cat"]}) + "\n"
                                               for k, p in paths.items()))
    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda fp, *a, **kw: opened.append(str(fp)) or real_open(fp, *a, **kw))

    def read(spec, **options):
        report = tmp_path / f"report-{len(opened)}-{options}.jsonl"
        rows = list(_stream(spec, seed=None, shuffle_buffer_size=0, report_file=str(report), **options))
        problems = {r["key"]: r["problems"][0] for r in map(json.loads, report.read_text().splitlines())} \
            if report.exists() else {}
        return sorted(row["row_id"].split("/")[-1] for row in rows), problems

    kept, problems = read(str(folder / "part.jsonl"))
    assert kept == ["k0", "k3"] and sorted(problems) == ["k1", "k2"]
    assert problems["k1"].startswith(f"image does not decode: row 'k1': image path outside the data folder: "
                                     f"'../secret.png' is outside {folder}")
    assert str(secret) not in opened
    kept, problems = read(str(folder / "part.jsonl"), allow_outside_image_root=True)
    assert kept == ["k0", "k1", "k2", "k3"] and str(secret) in opened
    # A remote shard (any URL; file:// here) never opens a local path, whatever the flag.
    opened.clear()
    kept, problems = read("file://" + str(folder / "part.jsonl"), allow_outside_image_root=True)
    assert kept == [] and all("image path in a remote shard" in p for p in problems.values()) and opened == []


# -- SIGKILL and resume --------------------------------------------------------------------

def _run_read(tmp_path, args, log, kill_at_step=None):
    """recipes/run_read.py in a fresh process, logging the row ids each step trains on
    (``log``) and those the stream reads and checks (``log`` + ".read", with the epoch)."""
    script = tmp_path / "launch.py"
    script.write_text(textwrap.dedent(f"""
        import json, os, signal, sys
        sys.path.insert(0, {str(REPO / 'recipes')!r})
        from transformers import TrainerCallback
        import read_trainer.trainer as trainer_module
        from read_trainer.data.collator import ReadCollator
        from read_trainer.data.stream_checks import ValidatedStream

        check = ValidatedStream._check
        def checked(self, raw, state):  # in the DataLoader workers: one appended line per sample
            with open({str(log) + ".read"!r}, "a") as f:
                f.write(f"{{state['epoch']}} {{os.path.basename(raw['__url__'])}}/{{raw['__key__']}}\\n")
            return check(self, raw, state)
        ValidatedStream._check = checked

        # The collator hands the batch's row ids over (for error messages); log them per step.
        training_step = trainer_module.ReadTrainer.training_step
        def logged(self, model, inputs, *a, **kw):
            with open({str(log)!r}, "a") as f:
                f.write(json.dumps([self.state.global_step + 1, list(inputs["row_ids"])]) + "\\n")
            return training_step(self, model, inputs, *a, **kw)
        trainer_module.ReadTrainer.training_step = logged

        class KillAfterSave(TrainerCallback):
            def on_save(self, args, state, control, **kwargs):
                if state.global_step == {kill_at_step!r}:
                    os.kill(os.getpid(), signal.SIGKILL)
        init = trainer_module.ReadTrainer.__init__
        def with_kill(self, *a, **kw):
            kw["callbacks"] = list(kw.get("callbacks") or []) + [KillAfterSave()]
            init(self, *a, **kw)
        trainer_module.ReadTrainer.__init__ = with_kill
        import run_read
        run_read.main(sys.argv[1:])
    """))
    env = dict(os.environ, HF_HUB_OFFLINE="1", CUDA_VISIBLE_DEVICES="")
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, env=env, timeout=300)


def _steps(log: Path) -> list:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_sigkill_then_resume_trains_on_the_same_samples_to_the_same_weights(tiny_models, shards, tmp_path):
    clip_dir, t5_dir = tiny_models

    def args(out):
        return ["--model_name_or_path", clip_dir, "--decoder_name_or_path", t5_dir, "--streaming", "true",
                "--train_file", shards["webdataset"], "--shuffle_buffer_size", "3", "--output_dir", str(out),
                "--per_device_train_batch_size", "3", "--max_steps", "8", "--save_steps", "3",
                "--dataloader_num_workers", "2", "--logging_steps", "1", "--report_to", "none",
                "--use_cpu", "true", "--learning_rate", "1e-3", "--warmup_steps", "2"]

    straight = _run_read(tmp_path, args(tmp_path / "straight"), tmp_path / "straight.log")
    assert straight.returncode == 0, straight.stderr[-3000:]
    killed = _run_read(tmp_path, args(tmp_path / "resumed"), tmp_path / "killed.log", kill_at_step=3)
    assert killed.returncode == -9, f"expected SIGKILL, got {killed.returncode}: {killed.stderr[-2000:]}"
    checkpoint = tmp_path / "resumed" / "checkpoint-3"
    assert (checkpoint / "stream_state_0.pt").is_file()
    resumed = _run_read(tmp_path, args(tmp_path / "resumed") + ["--resume_from_checkpoint", str(checkpoint)],
                        tmp_path / "resumed.log")
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    expected = _steps(tmp_path / "straight.log")
    assert [step for step, _ in expected] == list(range(1, 9))
    # 16 samples, 2 workers with 2 shards (8 samples) each, batches of 3: a pass is 6 steps
    # (3, 3, 3, 3, 2, 2); 8 steps cross into the second pass, and every sample of the first came once.
    first_pass = [row for _, ids in expected[:6] for row in ids]
    assert sorted(first_pass) == sorted(set(first_pass)) and len(first_pass) == ROWS
    assert _steps(tmp_path / "killed.log") == expected[:3]
    assert _steps(tmp_path / "resumed.log") == expected[3:]
    # The resumed stream started at the checkpoint's sample: none of the samples trained on
    # before it was read again in that pass (a data skip would read and collate them all).
    before = {row for _, ids in expected[:3] for row in ids}
    reread = [line.split()[1] for line in Path(str(tmp_path / "resumed.log") + ".read").read_text().splitlines()
              if line.split()[0] == "0"]
    assert reread and not before & set(reread), sorted(before & set(reread))

    a = load_file(str(tmp_path / "straight" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "model.safetensors"))
    base = load_file(str(Path(clip_dir) / "model.safetensors"))
    assert any(not torch.equal(a[k], base[k]) for k in a), "training changed nothing"
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=0, msg=lambda m: f"{key}: {m}")


# -- two processes ---------------------------------------------------------------------------

def test_two_processes_see_every_sample_exactly_once_per_epoch(tiny_models, shards, tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               __file__, *tiny_models, shards["webdataset"], shards["parquet"], str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]

    for kind, epochs in (("webdataset", 2), ("parquet", 1)):
        seen = [line.split() for rank in (0, 1) for line in (tmp_path / f"{kind}-{rank}.txt").read_text().splitlines()]
        by_rank = {rank: {row for r, _, row in seen if r == str(rank)} for rank in (0, 1)}
        assert not by_rank[0] & by_rank[1], "a sample was read by both processes"
        assert all(len(rows) == ROWS // 2 for rows in by_rank.values())  # each process its own half
        counts = Counter((epoch, row) for _, epoch, row in seen)
        assert len(counts) == epochs * ROWS and set(counts.values()) == {1}, (kind, counts)
        assert {int(epoch) for epoch, _ in counts} == set(range(epochs))
    # The checkpoint's record, written once both processes' files were, lists and hashes them all.
    from read_trainer.run_record import RUN_RECORD_NAME, checkpoint_problem, read_json

    checkpoint = tmp_path / "parquet" / "checkpoint-2"
    files = read_json(str(checkpoint / RUN_RECORD_NAME))["files"]
    assert {"stream_state_0.pt", "stream_state_1.pt", "rng_state_0.pth", "rng_state_1.pth"} <= set(files)
    assert checkpoint_problem(str(checkpoint), needs_head=True) is None
    assert read_json(str(checkpoint / RUN_RECORD_NAME))["run_id"] == read_json(
        str(tmp_path / "parquet" / RUN_RECORD_NAME))["run_id"]


def _two_process_worker(clip_dir: str, t5_dir: str, webdataset: str, parquet: str, out: str) -> None:
    from transformers import AutoTokenizer, CLIPProcessor

    from read_trainer.config import ReadConfig
    from read_trainer.data.collator import ReadCollator
    from read_trainer.data.loading import DataArguments
    from read_trainer.data.streaming import open_read_stream
    from read_trainer.trainer import ReadTrainer

    for kind, folder, workers, batch, steps in (("webdataset", webdataset, 2, 2, 8), ("parquet", parquet, 0, 4, 2)):
        # The parquet run saves its last step: every process writes its own files into the checkpoint.
        config = ReadConfig(output_dir=os.path.join(out, kind), model_name_or_path=clip_dir,
                            decoder_name_or_path=t5_dir, per_device_train_batch_size=batch, max_steps=steps,
                            dataloader_num_workers=workers, report_to="none", use_cpu=True,
                            save_strategy="steps" if kind == "parquet" else "no", save_steps=steps,
                            disable_tqdm=True, learning_rate=1e-3, warmup_steps=0)
        stream, _ = open_read_stream(DataArguments(train_file=folder, streaming=True, shuffle_buffer_size=3), config)
        log = os.path.join(out, f"{kind}-{config.process_index}.txt")
        rank = config.process_index

        class Recording(ReadCollator):
            def __call__(self, rows):  # in the DataLoader workers too: append, one line per row
                with open(log, "a") as f:
                    f.writelines(f"{rank} {self.epoch} {row['row_id']}\n" for row in rows)
                return super().__call__(rows)

        processor = CLIPProcessor.from_pretrained(clip_dir)
        collator = Recording(processor=processor, decoder_tokenizer=AutoTokenizer.from_pretrained(t5_dir),
                             seed=config.seed)
        trainer = ReadTrainer(args=config, train_dataset=stream, processing_class=processor, data_collator=collator)
        trainer.train()
        assert trainer.state.global_step == steps and trainer.accelerator.num_processes == 2


if __name__ == "__main__":
    _two_process_worker(*sys.argv[1:6])
    import torch.distributed as dist

    # Both processes are done (the barrier), then leave without the interpreter's teardown: with
    # DataLoader worker and gloo threads still around, that teardown can abort a process
    # ("terminate called without an active exception") after every check has passed.
    dist.barrier()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
