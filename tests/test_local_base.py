"""A base model trained from a local folder is recorded as one: never taken for a hub id, never leaked."""

import json
import shutil
from pathlib import Path

import pytest
from conftest import load_recipe, make_rows
from huggingface_hub import HfApi

from read_trainer.config import ReadConfig
from read_trainer.hub import base_model_of, build_model_card, read_training_args
from read_trainer.publish_files import LOCAL_PATHS_NAME, allowed_files
from read_trainer.trainer import ReadTrainer


@pytest.fixture(scope="module")
def export(tiny_models, tmp_path_factory):
    """An export fine-tuned from local folders given by absolute path (as the shipped demo base is)."""
    clip_dir, t5_dir = tiny_models
    out = tmp_path_factory.mktemp("local_base") / "read-clip"
    args = ReadConfig(output_dir=str(out), model_name_or_path=clip_dir, decoder_name_or_path=t5_dir,
                      per_device_train_batch_size=4, max_steps=1, report_to="none", use_cpu=True, save_strategy="no")
    trainer = ReadTrainer(args=args, train_dataset=make_rows(4))
    trainer.train()
    trainer.save_model()
    trainer.create_model_card()
    return out


def test_the_export_records_local_folders_by_name_and_keeps_their_paths_here(export, tiny_models):
    clip_dir, t5_dir = tiny_models
    saved = read_training_args(export)
    assert saved["model_name_or_path"] == "clip" and saved["local_folders"] == ["decoder_name_or_path",
                                                                              "model_name_or_path"]
    assert json.loads((export / LOCAL_PATHS_NAME).read_text()) == {"model_name_or_path": clip_dir,
                                                                   "decoder_name_or_path": t5_dir}
    # What the notebook loads as the base: the folder itself, not the hub id "clip".
    assert base_model_of(export) == clip_dir
    # ... and the file with the paths is never uploaded.
    assert LOCAL_PATHS_NAME not in allowed_files(str(export))


def test_cards_name_a_local_base_as_a_local_folder_without_its_path(export, tiny_models, tmp_path, monkeypatch):
    saved = read_training_args(export)
    cards = {"trainer": (export / "README.md").read_text(),
             "notebook": build_model_card(model_id="me/read", base_model=base_model_of(export),
                                          training_args=saved).content}
    # recipes/push.py, run in another folder: it has only the redacted name "clip" to go on.
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: type("R", (), {"repo_id": repo_id})())
    monkeypatch.setattr(HfApi, "upload_folder", lambda self, **kw: "commit")
    monkeypatch.chdir(tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(export, copy)
    load_recipe("push").main(["--folder", str(copy), "--repo_id", "me/read", "--token", "hf_x"])
    cards["push"] = (copy / "README.md").read_text()
    for where, card in cards.items():
        metadata = card.split("---")[1]
        assert "base_model" not in metadata, where  # the Hub would link the model named "clip"
        assert "from\na local model folder, `clip`" in card, where
        assert tiny_models[0] not in card and str(Path(tiny_models[0]).parent) not in card, where
        assert "`t5` (a local folder)" in card, where


def test_a_hub_base_stays_a_hub_id():
    card = build_model_card(model_id="me/read", base_model="openai/clip-vit-base-patch32",
                            training_args={"model_name_or_path": "openai/clip-vit-base-patch32", "local_folders": []})
    assert "base_model: openai/clip-vit-base-patch32" in card.content
    assert "from\n`openai/clip-vit-base-patch32`" in card.content


def test_a_local_base_missing_here_is_an_error_naming_it(export, tmp_path):
    moved = tmp_path / "moved"
    shutil.copytree(export, moved)
    record = json.loads((moved / LOCAL_PATHS_NAME).read_text())
    record["model_name_or_path"] = str(tmp_path / "elsewhere" / "clip")
    (moved / LOCAL_PATHS_NAME).write_text(json.dumps(record))
    with pytest.raises(FileNotFoundError, match="fine-tuned from a local folder named 'clip'.*not on this machine"):
        base_model_of(moved)
    (moved / LOCAL_PATHS_NAME).unlink()  # e.g. downloaded from the Hub, where that file never goes
    with pytest.raises(FileNotFoundError, match="its path is not recorded here"):
        base_model_of(moved)
