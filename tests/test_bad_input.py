"""Bad data stops the run before the first optimizer step, naming the column or row."""

import datasets
import pytest
from conftest import make_rows, random_image

from read_trainer.config import ReadConfig
from read_trainer.data.collator import BadRowError
from read_trainer.data.loading import DataArguments, load_read_datasets
from read_trainer.trainer import ReadTrainer


def _args(tiny_models, tmp_path, **kw):
    clip_dir, t5_dir = tiny_models
    return ReadConfig(output_dir=str(tmp_path / "o"), model_name_or_path=clip_dir, decoder_name_or_path=t5_dir,
                      per_device_train_batch_size=2, max_steps=2, report_to="none", use_cpu=True, **kw)


def test_missing_caption_column_is_named_before_training(tiny_models, tmp_path):
    rows = [{k: v for k, v in r.items() if k != "captions"} | {"text": "a cat"} for r in make_rows(4)]
    dataset = datasets.Dataset.from_list(rows)
    with pytest.raises(ValueError, match=r"missing column\(s\) \['captions'\].*--caption_column"):
        ReadTrainer(args=_args(tiny_models, tmp_path), train_dataset=dataset)


def test_empty_caption_list_names_the_row_before_training(tiny_models, tmp_path):
    rows = make_rows(6)
    rows[4]["captions"] = []
    rows[2]["captions"] = ["   "]
    dataset = datasets.Dataset.from_list(rows)
    with pytest.raises(BadRowError, match=r"2 row\(s\).*row 2 .*row 4 "):
        ReadTrainer(args=_args(tiny_models, tmp_path), train_dataset=dataset)


def test_unreadable_image_names_row_and_file_at_first_step(tiny_models, tmp_path):
    bad = tmp_path / "corrupt.png"
    bad.write_bytes(b"\x89PNG garbage")
    rows = make_rows(4)
    rows[1]["image"] = str(bad)
    trainer = ReadTrainer(args=_args(tiny_models, tmp_path), train_dataset=rows)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    with pytest.raises(BadRowError, match=r"row 1.*corrupt\.png"):
        trainer.train()
    assert trainer.state.global_step == 0
    assert all((p.detach() == before[n]).all() for n, p in trainer.model.named_parameters())


def test_negatives_required_without_a_generator(tiny_models, tmp_path):
    rows = [{k: v for k, v in r.items() if k != "negatives"} for r in make_rows(4)]
    # negative_generator=None asks for the rows' own negatives (by default they are generated:
    # tests/test_trainer_negatives.py).
    with pytest.raises(ValueError, match="no 'negatives' column and no negative generator"):
        ReadTrainer(args=_args(tiny_models, tmp_path), train_dataset=datasets.Dataset.from_list(rows),
                    negative_generator=None)
    # num_hard_negatives=0 is plain CLIP-style training and needs none.
    ReadTrainer(args=_args(tiny_models, tmp_path, num_hard_negatives=0), train_dataset=datasets.Dataset.from_list(rows))


def test_loading_maps_columns_and_names_missing_ones(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    rows = make_rows(3)
    lines = []
    for r in rows:
        r["image"].save(folder / f"{r['row_id']}.png")
        lines.append({"file_name": f"{r['row_id']}.png", "text": r["captions"]})
    import json
    (folder / "metadata.jsonl").write_text("\n".join(json.dumps(l) for l in lines))
    train, _ = load_read_datasets(DataArguments(dataset_name=str(folder), caption_column="text"))
    assert {"image", "captions", "row_id"} <= set(train.column_names) and train["row_id"] == [0, 1, 2]
    assert train[0]["captions"] == rows[0]["captions"]
    with pytest.raises(ValueError, match=r"column 'caption' \(for captions\) not found.*--caption_column"):
        load_read_datasets(DataArguments(dataset_name=str(folder), caption_column="caption"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_read_datasets(DataArguments(dataset_name=str(tmp_path / "nope")))


def test_per_caption_negative_problems_are_named_before_training(tiny_models, tmp_path):
    rows = make_rows(4)
    rows[3]["negatives"] = ["a blue cube to the left of a red sphere"]  # one flat list for several captions
    rows[1]["captions"] = rows[1]["captions"] + [""]  # blank caption: its per-caption list goes missing
    with pytest.raises(BadRowError, match=r"2 row\(s\).*row 1 \(negatives lists do not match the captions: "
                                          r"2 lists for 3 captions.*row 3 \(ambiguous negatives"):
        ReadTrainer(args=_args(tiny_models, tmp_path), train_dataset=rows)


def _jsonl(path, rows):
    import json

    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_image_paths_outside_the_data_folder_are_bad_rows_and_never_opened(tmp_path, monkeypatch):
    from PIL import Image

    from read_trainer.data.rows import load_image
    from read_trainer.data.scan import scan_dataset

    data = tmp_path / "data"
    (data / "imgs").mkdir(parents=True)
    random_image(0).save(data / "imgs" / "ok.png")
    secret = tmp_path / "secret.png"
    random_image(1).save(secret)
    train_file = _jsonl(data / "train.jsonl", [
        {"image": "imgs/ok.png", "captions": ["a cat"]},
        {"image": "../secret.png", "captions": ["a dog"]},
        {"image": str(secret), "captions": ["a bird"]},
        {"image": str(data / "imgs" / "ok.png"), "captions": ["a cat again"]},  # absolute, inside: fine
        {"image": "imgs/../imgs/ok.png", "captions": ["a cat once more"]},  # '..' that stays inside: fine
    ])
    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda fp, *a, **kw: opened.append(str(fp)) or real_open(fp, *a, **kw))

    train, _ = load_read_datasets(DataArguments(train_file=str(train_file)))
    with pytest.raises(BadRowError, match=r"5 rows: 3 usable, 2 with problems") as error:
        scan_dataset(train)
    assert f"row 1: image path outside the data folder: '../secret.png' is outside {data}" in str(error.value)
    assert f"row 2: image path outside the data folder: '{secret}' is outside {data}" in str(error.value)
    assert "--allow_outside_image_root true" in str(error.value)
    kept, report = scan_dataset(train, policy="skip", report_file=str(tmp_path / "skipped.jsonl"))
    assert kept["row_id"] == [0, 3, 4] and report.problems == {"image path outside the data folder": 2}
    # The collator decodes with the same rule (so --skip_scan reads nothing outside either).
    with pytest.raises(BadRowError, match=r"row 1: image path outside the data folder"):
        load_image(train[1]["image"], 1)
    assert str(secret) not in opened and not any("secret" in path for path in opened)

    # --image_root moves the fence; --allow_outside_image_root opens it.
    rooted, _ = load_read_datasets(DataArguments(train_file=str(train_file), image_root=str(tmp_path)))
    assert [load_image(rooted[i]["image"], i).size for i in (2, 3)] == [(40, 40), (40, 40)]
    allowed, _ = load_read_datasets(DataArguments(train_file=str(train_file), allow_outside_image_root=True))
    assert scan_dataset(allowed)[1].kept == 5 and str(secret) in opened


def test_a_number_in_negatives_is_a_bad_row_named_by_the_scan(tmp_path):
    from read_trainer.data.scan import scan_dataset

    random_image(0).save(tmp_path / "0.png")
    train_file = _jsonl(tmp_path / "train.jsonl", [
        {"image": "0.png", "captions": ["a red cube"], "negatives": ["a blue cube"]},
        {"image": "0.png", "captions": ["a red cube"], "negatives": 5},
        {"image": "0.png", "captions": ["\u0000\u0000"], "negatives": ["a blue cube"]},
    ])
    train, _ = load_read_datasets(DataArguments(train_file=str(train_file)))
    with pytest.raises(BadRowError) as error:
        scan_dataset(train)
    assert "row 1: invalid text: 'negatives' must be a string, a list of strings or one list per caption, got int" \
        in str(error.value)
    assert "row 2: no non-empty caption" in str(error.value)


def test_an_empty_data_file_is_one_line(tmp_path):
    for name, content in (("empty.jsonl", ""), ("blank.jsonl", "\n \n"), ("empty.csv", "")):
        (tmp_path / name).write_text(content)
        with pytest.raises(ValueError, match=rf"data file '.*{name}' holds no rows"):
            load_read_datasets(DataArguments(train_file=str(tmp_path / name)))
    (tmp_path / "header_only.csv").write_text("image,captions\n")
    with pytest.raises(ValueError, match=r"data file '.*header_only.csv' holds no rows"):
        load_read_datasets(DataArguments(train_file=str(tmp_path / "header_only.csv")))


def test_scan_counts_truncated_paraphrases_and_negatives(tiny_models, tmp_path):
    from transformers import CLIPTokenizer

    from read_trainer.data.scan import scan_dataset

    long = " ".join(["a red cube"] * 10)  # 30 words: over a 16-token limit
    rows = make_rows(3, paraphrases=True)
    rows[0]["paraphrases"] = [long, "in short a cube"]
    rows[1]["negatives"][0] = [long, long + " twice", "a blue cube"]
    rows[2]["captions"] = [long, "a kite"]
    rows[2]["negatives"] = [["a kite", "a dog", "a cat"]] * 2
    tokenizer = CLIPTokenizer.from_pretrained(tiny_models[0])
    _, report = scan_dataset(datasets.Dataset.from_list(rows), tokenizer=tokenizer, max_text_length=16)
    assert (report.truncated_captions, report.truncated_paraphrases, report.truncated_negatives) == (1, 1, 2)
    summary = report.summary()
    assert "paraphrases longer than the text limit (truncated, kept): 1" in summary
    assert "negatives longer than the text limit (truncated, kept): 2" in summary
