"""Bad data stops the run before the first optimizer step, naming the column or row."""

import datasets
import pytest
from conftest import make_rows

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
