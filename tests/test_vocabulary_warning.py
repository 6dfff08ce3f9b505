"""Evaluating a model whose tokenizer does not know the benchmark's words says so."""

import logging

from transformers import CLIPProcessor

from read_trainer.demo.tiny_models import build_clip_tokenizer
from read_trainer.evaluation.bundled import bundled_data_root
from read_trainer.evaluation.embedding import ClipEmbedder
from read_trainer.evaluation.suite import load_named, run_suite
from read_trainer.evaluation.vocabulary import out_of_vocabulary_fraction


def test_fraction_counts_word_occurrences_not_whole_tokens(tiny_models):
    tokenizer = CLIPProcessor.from_pretrained(tiny_models[0]).tokenizer
    assert tokenizer.tokenize("cube") == ["cube</w>"]  # a word of the tiny models' corpus
    assert len(tokenizer.tokenize("giraffe")) > 1
    # 6 word occurrences, "giraffe" twice unknown: 2/6 (punctuation and case ignored).
    assert out_of_vocabulary_fraction(tokenizer, ["A cube, a giraffe.", "giraffe cube"]) == 2 / 6


def test_real_captions_on_a_tiny_tokenizer_warn_and_a_fitting_tokenizer_does_not(tiny_models, tmp_path, caplog):
    from transformers import CLIPModel

    task = load_named("sugarcrepe_pp_tot", bundled_data_root(), limit=8)
    processor = CLIPProcessor.from_pretrained(tiny_models[0])
    fraction = out_of_vocabulary_fraction(processor.tokenizer, task.all_texts())
    assert fraction > 0.5
    model = CLIPModel.from_pretrained(tiny_models[0])
    with caplog.at_level(logging.WARNING, logger="read_trainer.evaluation.vocabulary"):
        run_suite([task], ClipEmbedder(model, processor, progress=False))
    (record,) = [r for r in caplog.records if "not whole tokens" in r.getMessage()]
    assert f"{100 * fraction:.0f}% of the benchmark's words" in record.getMessage()

    # A tokenizer learnt on these very captions knows their words: no warning.
    fitting = build_clip_tokenizer(tmp_path / "tok", task.all_texts() * 3, num_merges=3000)
    assert out_of_vocabulary_fraction(fitting, task.all_texts()) < 0.05
