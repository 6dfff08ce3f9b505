"""The tiny stand-in models write checkpoints the hub code path loads, tokenizers that round-trip."""

import json
from pathlib import Path

import pytest
import sentencepiece as spm
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer, CLIPModel, CLIPProcessor, T5ForConditionalGeneration


def test_clip_folder_loads_with_tokenizer_that_knows_the_corpus(tiny_models):
    clip_dir, _ = tiny_models
    model, info = CLIPModel.from_pretrained(clip_dir, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    tok = CLIPProcessor.from_pretrained(clip_dir).tokenizer
    ids = tok("a red cube to the left of a blue sphere").input_ids
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
    assert len(ids) < 2 + len("a red cube to the left of a blue sphere") // 2  # merges learnt: words, not bytes
    assert tok.decode(ids, skip_special_tokens=True).strip() == "a red cube to the left of a blue sphere"
    assert model.config.text_config.vocab_size == len(tok)


def test_t5_folder_is_v1_1_style_and_its_tokenizer_uses_the_sentencepiece_model(tiny_models):
    _, t5_dir = tiny_models
    config = json.loads((Path(t5_dir) / "config.json").read_text())
    assert config["tie_word_embeddings"] is False and config["feed_forward_proj"] == "gated-gelu"
    weights = load_file(str(Path(t5_dir) / "model.safetensors"))
    assert not torch.equal(weights["lm_head.weight"], weights["shared.weight"])  # untied head
    model = T5ForConditionalGeneration.from_pretrained(t5_dir)
    assert model.lm_head.weight.data_ptr() != model.shared.weight.data_ptr()
    assert torch.equal(model.lm_head.weight, weights["lm_head.weight"])

    tok = AutoTokenizer.from_pretrained(t5_dir)
    sp = spm.SentencePieceProcessor(model_file=str(Path(t5_dir) / "spiece.model"))
    text = "a man riding a brown horse on the beach"
    assert tok(text).input_ids == sp.encode(text) + [1]  # same pieces, then </s>
    assert (tok.pad_token_id, tok.eos_token_id) == (0, 1)
    assert tok.decode(tok(text).input_ids, skip_special_tokens=True) == text


def test_the_frozen_decoder_loads_its_own_lm_head_without_a_tying_warning(tiny_models, caplog):
    from read_trainer.modeling import load_frozen_decoder

    _, t5_dir = tiny_models
    weights = load_file(str(Path(t5_dir) / "model.safetensors"))
    with caplog.at_level("WARNING"):
        load_frozen_decoder(t5_dir)
    assert not [r for r in caplog.records if "tie_word_embeddings" in r.getMessage()]
    decoder, lm_head, config = load_frozen_decoder(t5_dir)
    assert torch.equal(lm_head.weight, weights["lm_head.weight"])  # its own head, untied
    assert torch.equal(decoder.embed_tokens.weight, weights["shared.weight"])  # the stored embedding, tied
    assert config.scale_decoder_outputs is False  # v1.1: no d_model**-0.5 rescaling before the head


def test_pretraining_the_demo_t5_loads_it_without_a_tying_warning(tmp_path, caplog):
    import dataclasses

    import datasets

    from read_trainer.demo.base_models import T5Pretraining, pretrain_t5

    rows = datasets.Dataset.from_list([{"captions": ["a red cube left of a blue ball", "a red cube and a blue ball"],
                                        "paraphrases": ["a blue ball right of a red cube"]}] * 4)
    with caplog.at_level("WARNING"):
        pretrain_t5(rows, ["a red cube left of a blue ball", "a blue ball right of a red cube"], tmp_path / "t5",
                    dataclasses.replace(T5Pretraining(), steps=1, warmup_steps=0, batch_size=2), progress=False)
    assert not [r for r in caplog.records if "tie_word_embeddings" in r.getMessage()]


def test_t5_pretraining_tasks_pair_each_text_as_documented():
    import datasets

    from read_trainer.demo.base_models import T5Pretraining, paraphrase_pairs, pretrain_t5

    rows = datasets.Dataset.from_list([{"captions": ["c1", "c2"], "paraphrases": ["p1", "p2"]}])
    assert paraphrase_pairs(rows, "auto") == [("c1", "c1"), ("p1", "p1"), ("c2", "c2"), ("p2", "p2")]
    assert paraphrase_pairs(rows, "para") == [("c1", "p1"), ("p1", "c1"), ("c2", "p2"), ("p2", "c2")]
    assert sorted(paraphrase_pairs(rows, "mix")) == sorted(paraphrase_pairs(rows, "auto") + paraphrase_pairs(rows, "para"))
    assert T5Pretraining().task == "auto"  # the demo's decoder is an autoencoder through its one-token memory
    with pytest.raises(ValueError, match="task must be one of"):
        pretrain_t5(rows, ["c1"], "unused", T5Pretraining(task="copy"), progress=False)
