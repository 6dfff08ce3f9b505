"""Publishing sends exactly the export's files and no local paths; fp16 without a GPU is refused."""

import json
from pathlib import Path

import pytest
from conftest import load_recipe, make_rows
from huggingface_hub import HfApi
from huggingface_hub.utils import filter_repo_objects
from transformers import CLIPModel, CLIPProcessor

from read_trainer.config import ReadConfig
from read_trainer.publish_files import redact_local_paths
from read_trainer.trainer import ReadTrainer


@pytest.fixture
def uploads(monkeypatch):
    """The files each upload would send, filtered by huggingface_hub's own allow-pattern matching."""
    sent = []

    def upload_folder(self, *, folder_path, allow_patterns=None, ignore_patterns=None, **kwargs):
        files = sorted(p.relative_to(folder_path).as_posix() for p in Path(folder_path).rglob("*") if p.is_file())
        sent.append(sorted(filter_repo_objects(files, allow_patterns=allow_patterns, ignore_patterns=ignore_patterns)))
        return "commit"

    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: type("R", (), {"repo_id": repo_id})())
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    return sent


def _export(tiny_models, folder: Path, **save):
    CLIPModel.from_pretrained(tiny_models[0]).save_pretrained(folder, **save)
    CLIPProcessor.from_pretrained(tiny_models[0]).save_pretrained(folder)
    return sorted(p.name for p in folder.iterdir())


def _add_strays(folder: Path):
    (folder / "model-backup").mkdir()
    (folder / "model-backup" / "optimizer.safetensors").write_bytes(b"optimizer state")
    (folder / "model-backup" / "config.json").write_text("{}")
    (folder / "model-old.safetensors").write_bytes(b"a stray file")
    (folder / "invalid_rows.jsonl").write_text('{"row_id": 3}\n')


def test_only_the_exports_own_top_level_files_are_uploaded(tiny_models, tmp_path, uploads):
    folder = tmp_path / "export"
    exported = _export(tiny_models, folder)
    _add_strays(folder)
    load_recipe("push").main(["--folder", str(folder), "--repo_id", "me/read", "--token", "hf_xyz"])
    assert uploads[-1] == sorted(exported + ["README.md"])


def test_a_sharded_export_uploads_exactly_the_shards_its_index_lists(tiny_models, tmp_path, uploads):
    folder = tmp_path / "sharded"
    exported = _export(tiny_models, folder, max_shard_size="100KB")
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 1 and set(shards) <= set(exported)
    _add_strays(folder)
    (folder / "model-00099-of-00099.safetensors").write_bytes(b"a shard of some other export")
    load_recipe("push").main(["--folder", str(folder), "--repo_id", "me/read", "--token", "hf_xyz"])
    assert uploads[-1] == sorted(exported + ["README.md"])


def test_card_and_saved_arguments_carry_no_local_paths(tiny_models, tmp_path):
    clip_dir, t5_dir = tiny_models
    out = tmp_path / "out"
    args = ReadConfig(output_dir=str(out), model_name_or_path=clip_dir, decoder_name_or_path=t5_dir,
                      resume_from_checkpoint=str(tmp_path / "old" / "checkpoint-9"), per_device_train_batch_size=4,
                      max_steps=1,
                      report_to="none", use_cpu=True, save_strategy="no")
    trainer = ReadTrainer(args=args, train_dataset=make_rows(4, paraphrases=True))
    trainer.card_datasets = [str(tmp_path / "my-data")]
    trainer.save_model()
    trainer.create_model_card()

    saved = json.loads((out / "read_training_args.json").read_text())
    strings = [v for v in saved.values() if isinstance(v, str)]
    assert not [v for v in strings if v.startswith(("/", "~"))], strings
    assert saved["model_name_or_path"] == Path(clip_dir).name and saved["decoder_name_or_path"] == Path(t5_dir).name
    assert saved["output_dir"] == "out" and saved["resume_from_checkpoint"] == "checkpoint-9"
    card = (out / "README.md").read_text()
    for local in (clip_dir, t5_dir, str(tmp_path)):
        assert local not in card
    assert f"`{Path(t5_dir).name}`" in card and "`my-data`" in card


def test_redaction_keeps_hub_ids_and_names(tmp_path):
    values = {"model": "openai/clip-vit-base-patch32", "folder": str(tmp_path / "a" / "b"), "home": "~/x/y",
              "rel": "./out/run", "list": [str(tmp_path / "c"), "plain"], "n": 3, "none": None}
    assert redact_local_paths(values) == {"model": "openai/clip-vit-base-patch32", "folder": "b", "home": "y",
                                          "rel": "./out/run", "list": ["c", "plain"], "n": 3, "none": None}


def test_fp16_without_a_gpu_is_an_error_at_config_time(tmp_path):
    with pytest.raises(ValueError, match="fp16 needs a GPU"):
        ReadConfig(output_dir=str(tmp_path), fp16=True, use_cpu=True, report_to="none")
