"""Configs: every YAML under recipes/ parses; unknown keys and bad values are errors."""

from pathlib import Path

import pytest

from read_trainer.cli import parse_args_with_config, run_read_argument_types
from read_trainer.config import ReadConfig
from read_trainer.data.loading import DataArguments

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
TRAINING_YAMLS = sorted(p for p in RECIPES.glob("*.yaml"))


def test_there_are_recipes():
    assert any(p.name == "read_clip_vit_b32.yaml" for p in TRAINING_YAMLS)


@pytest.mark.parametrize("path", TRAINING_YAMLS, ids=lambda p: p.name)
def test_every_recipe_yaml_parses(path):
    # --use_cpu: the reference YAML asks for bf16, which TrainingArguments only accepts on CPU when told so.
    data, config, benchmarks = parse_args_with_config(run_read_argument_types(),
                                                      ["--config", str(path), "--use_cpu", "true"])
    assert isinstance(config, ReadConfig)


def test_reference_hyperparameters():
    _, config = parse_args_with_config((DataArguments, ReadConfig),
                                       ["--config", str(RECIPES / "read_clip_vit_b32.yaml"), "--use_cpu", "true"])
    assert (config.model_name_or_path, config.decoder_name_or_path) == ("openai/clip-vit-base-patch32",
                                                                        "google/t5-v1_1-large")
    assert (config.reconstruction_weight, config.alignment_weight, config.num_hard_negatives) == (0.1, 0.5, 3)
    assert (config.learning_rate, config.weight_decay, config.warmup_steps, config.seed) == (1e-5, 0.1, 50, 2025)
    assert config.lr_scheduler_type.value == "cosine" and config.per_device_train_batch_size == 256
    assert config.num_train_epochs == 5 and config.bf16 and config.activation_checkpointing
    assert config.max_text_length == 77 and config.decoder_dropout


def test_cli_overrides_yaml_and_defaults_are_the_reference(tmp_path):
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("alignment_weight: 0.25\nmax_steps: 10\ndataset_name: foo\n")
    data, config = parse_args_with_config((DataArguments, ReadConfig),
                                          ["--config", str(yaml_file), "--max_steps", "3", "--no_decoder_dropout"])
    assert (config.alignment_weight, config.max_steps, config.decoder_dropout, data.dataset_name) == (0.25, 3, False, "foo")
    assert config.reconstruction_weight == 0.1 and config.learning_rate == 1e-5


def test_a_data_source_on_the_command_line_replaces_the_yamls_other_source():
    # The reference YAML names a train_file; --dataset_name my_photos must train on my_photos.
    reference = ["--config", str(RECIPES / "read_clip_vit_b32.yaml"), "--use_cpu", "true"]
    data, _ = parse_args_with_config((DataArguments, ReadConfig), reference + ["--dataset_name", "my_photos"])
    assert (data.dataset_name, data.train_file) == ("my_photos", None)
    data, _ = parse_args_with_config((DataArguments, ReadConfig), reference + ["--train_file=rows.jsonl"])
    assert (data.dataset_name, data.train_file) == (None, "rows.jsonl")
    data, _ = parse_args_with_config((DataArguments, ReadConfig), reference)
    assert data.train_file == "data/coco_read/train.jsonl"


def test_unknown_yaml_key_is_an_error(tmp_path):
    yaml_file = tmp_path / "typo.yaml"
    yaml_file.write_text("reconstruction_weigth: 0.2\n")
    with pytest.raises(ValueError, match=r"unknown option\(s\) 'reconstruction_weigth' \(did you mean 'reconstruction_weight'\?\)"):
        parse_args_with_config((DataArguments, ReadConfig), ["--config", str(yaml_file)])
    with pytest.raises(FileNotFoundError):
        parse_args_with_config((DataArguments, ReadConfig), ["--config", str(tmp_path / "missing.yaml")])


def test_invalid_values_are_rejected():
    with pytest.raises(ValueError, match="reconstruction_target"):
        ReadConfig(output_dir="x", reconstruction_target="paraphrase")
    with pytest.raises(ValueError, match="max_text_length"):
        ReadConfig(output_dir="x", max_text_length=100)
    with pytest.raises(ValueError, match="alignment_weight"):
        ReadConfig(output_dir="x", alignment_weight=-1)


def test_every_read_field_has_help():
    import dataclasses

    from transformers import TrainingArguments

    base = {f.name for f in dataclasses.fields(TrainingArguments)}
    for f in dataclasses.fields(ReadConfig):
        if f.name not in base:
            assert f.metadata.get("help"), f.name
