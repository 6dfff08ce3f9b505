"""The Python API makes hard negatives when the data has none, exactly as ``run_read.py`` does."""

import dataclasses

import datasets
import pytest
import torch
from conftest import make_rows

from read_trainer.config import ReadConfig
from read_trainer.data.loading import DataArguments, negative_generator_for
from read_trainer.data.negatives import HardNegativeGenerator
from read_trainer.trainer import ReadTrainer


def _config(tiny_models, tmp_path, **overrides):
    clip_dir, t5_dir = tiny_models
    return ReadConfig(output_dir=str(tmp_path / "out"), model_name_or_path=clip_dir, decoder_name_or_path=t5_dir,
                      per_device_train_batch_size=4, max_steps=1, report_to="none", use_cpu=True,
                      save_strategy="no", seed=7, **overrides)


def test_rows_without_negatives_get_the_recipes_generator_and_train(tiny_models, tmp_path):
    rows = datasets.Dataset.from_list(make_rows(4, negatives=False))
    trainer = ReadTrainer(args=_config(tiny_models, tmp_path), train_dataset=rows)
    made = trainer.data_collator.negative_generator
    assert isinstance(made, HardNegativeGenerator) and made.seed == 7

    # The batch is the one run_read.py's generator (--hard_negatives auto) collates, and the
    # seed matters: another seed's negatives give other text tokens.
    recipe = negative_generator_for(DataArguments(), rows, 3, seed=7)
    batch = trainer.data_collator(list(rows))
    as_recipe = dataclasses.replace(trainer.data_collator, negative_generator=recipe)(list(rows))
    other = dataclasses.replace(trainer.data_collator, negative_generator=HardNegativeGenerator(seed=8))(list(rows))
    assert torch.equal(batch["input_ids"], as_recipe["input_ids"])
    assert batch["input_ids"].shape != other["input_ids"].shape or not torch.equal(batch["input_ids"],
                                                                                   other["input_ids"])
    trainer.train()
    assert trainer.state.global_step == 1


def test_a_negatives_column_is_used_and_none_means_none(tiny_models, tmp_path):
    with_column = datasets.Dataset.from_list(make_rows(4, negatives=True))
    assert ReadTrainer(args=_config(tiny_models, tmp_path), train_dataset=with_column) \
        .data_collator.negative_generator is None
    # An eval split without the column still needs negatives: generated for both.
    without = datasets.Dataset.from_list(make_rows(4, negatives=False))
    trainer = ReadTrainer(args=_config(tiny_models, tmp_path), train_dataset=with_column, eval_dataset=without)
    assert isinstance(trainer.data_collator.negative_generator, HardNegativeGenerator)
    # K = 0 needs none; None asks for the rows' own negatives, and rows without them are refused.
    assert ReadTrainer(args=_config(tiny_models, tmp_path, num_hard_negatives=0), train_dataset=without) \
        .data_collator.negative_generator is None
    with pytest.raises(ValueError, match="no 'negatives' column and no negative generator"):
        ReadTrainer(args=_config(tiny_models, tmp_path), train_dataset=without, negative_generator=None)
