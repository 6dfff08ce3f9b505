"""The world-decoder probe: what a reconstruction target states, what word order is worth, decoder losses."""

import math

import pytest
import torch

from read_trainer.demo.base_models import pooled_encoding
from read_trainer.demo.reconstruction_probe import (
    mean_memory,
    order_gap,
    order_information,
    sequence_losses,
    target_pairs,
    token_mean,
    unstated_share,
)

LEFT = "a red cube to the left of a blue sphere"
RIGHT = "a blue sphere right of a red cube"  # the same fact, another template
CONE = "a photo of a green cone"
SPLIT = {"captions": [[LEFT, CONE]], "paraphrases": [[RIGHT, "there is a green cone"]]}


def test_unstated_share_counts_meaning_not_words():
    shares = unstated_share(SPLIT)
    assert shares["anchor"] == 0.0
    assert shares["paraphrase"] == 0.0  # a paraphrase states the same atoms in other words
    # random_caption: each anchor draws itself (nothing unstated) or the other caption, which
    # shares no atom with it: the exact expectation is 1/2.
    assert shares["random_caption"] == pytest.approx(0.5)


def test_target_pairs_follow_the_target():
    assert target_pairs(SPLIT, "anchor") == [(LEFT, LEFT), (CONE, CONE)]
    assert target_pairs(SPLIT, "paraphrase") == [(LEFT, RIGHT), (CONE, "there is a green cone")]
    assert all(target in (LEFT, CONE) for _, target in target_pairs(SPLIT, "random_caption"))
    with pytest.raises(ValueError, match="target must be one of"):
        target_pairs(SPLIT, "anchors")


def test_order_information_counts_the_readings_single_swaps_reach():
    def word_tokenizer(text):
        return {"input_ids": text.split() + ["</s>"]}

    info = order_information(SPLIT, word_tokenizer)
    # LEFT: itself, the colour swap and the shape swap are three different facts; CONE has no swap.
    assert info["captions"] == 2
    assert info["nats_per_caption"] == pytest.approx(math.log(3) / 2)
    tokens = len(LEFT.split()) + 1 + len(CONE.split()) + 1
    assert info["nats_per_token"] == pytest.approx(math.log(3) / tokens)
    assert info["share_with_a_swap"] == 0.5


@pytest.fixture(scope="module")
def tiny_t5(tiny_models):
    from transformers import AutoTokenizer

    from read_trainer.modeling import load_t5

    return load_t5(tiny_models[1]).eval(), AutoTokenizer.from_pretrained(tiny_models[1])


def test_sequence_losses_sum_to_the_models_token_mean(tiny_t5):
    model, tokenizer = tiny_t5
    sources, targets = [LEFT, CONE, RIGHT], [RIGHT, CONE, LEFT]
    per_row = sequence_losses(model, tokenizer, sources, targets, batch_size=2)
    enc = tokenizer(sources, padding=True, return_tensors="pt")
    labels = tokenizer(targets, padding=True, return_tensors="pt")
    label_ids = labels["input_ids"].masked_fill(labels["attention_mask"] == 0, -100)
    with torch.no_grad():
        expected = model(encoder_outputs=(pooled_encoding(model, enc),), labels=label_ids).loss
    assert [n for _, n in per_row] == labels["attention_mask"].sum(1).tolist()
    assert token_mean(per_row) == pytest.approx(float(expected), rel=1e-5)


def test_order_gap_is_zero_when_the_swap_reads_the_same(tiny_t5):
    model, tokenizer = tiny_t5
    item = {"category": "swap_att", "caption": LEFT, "caption2": RIGHT, "negative_caption": LEFT}
    other = {"category": "replace_att", "caption": LEFT, "caption2": RIGHT, "negative_caption": CONE}
    gap = order_gap(model, tokenizer, {"false_captions": [[item, other]]})
    assert gap["items"] == 1  # only swap items count
    for target in ("caption", "paraphrase"):
        assert gap[target]["gap_per_token"] == 0.0
        assert gap[target]["true_memory_lower"] == 0.0  # a tie is not "lower"


def test_own_order_separation_compares_the_t5s_own_memories(tiny_t5):
    from read_trainer.demo.reconstruction_probe import own_order_separation

    model, tokenizer = tiny_t5
    swap = "a blue cube to the left of a red sphere"
    same = {"category": "swap_obj", "caption": LEFT, "caption2": RIGHT, "negative_caption": LEFT}
    other = {"category": "swap_att", "caption": LEFT, "caption2": RIGHT, "negative_caption": swap}
    assert own_order_separation(model, tokenizer, {"false_captions": [[same]]}) == 0.0
    with torch.no_grad():
        true, swapped = (pooled_encoding(model, tokenizer([text], return_tensors="pt")).flatten() for text in (LEFT, swap))
    expected = float((true - swapped).norm() / true.norm()) / 2
    separation = own_order_separation(model, tokenizer, {"false_captions": [[same, other]]}, batch_size=1)
    assert separation == pytest.approx(expected, rel=1e-4) and separation > 0


def test_a_shared_memory_ignores_the_source(tiny_t5):
    model, tokenizer = tiny_t5
    memory = mean_memory(model, tokenizer, [LEFT, CONE, RIGHT], batch_size=2)
    assert memory.shape == (1, 1, model.config.d_model)
    own = sequence_losses(model, tokenizer, [LEFT, CONE], [RIGHT, RIGHT])
    shared = sequence_losses(model, tokenizer, [LEFT, CONE], [RIGHT, RIGHT], memory=memory)
    assert shared[0] == pytest.approx(shared[1])  # same target, same memory: the source no longer matters
    assert own[0] != pytest.approx(own[1])


@pytest.fixture(scope="module")
def tiny_read_model(tiny_models):
    from transformers import AutoTokenizer, CLIPProcessor

    from read_trainer.modeling import ReadModel

    clip_dir, t5_dir = tiny_models
    torch.manual_seed(0)
    model = ReadModel.from_pretrained(clip_dir, t5_dir, decoder_dropout=True)
    return model, CLIPProcessor.from_pretrained(clip_dir).tokenizer, AutoTokenizer.from_pretrained(t5_dir)


def test_read_memory_losses_score_what_the_reconstruction_term_trains(tiny_read_model):
    from read_trainer.demo.reconstruction_probe import read_memory_losses

    model, clip_tokenizer, t5_tokenizer = tiny_read_model
    sources, targets = [LEFT, CONE, RIGHT], [RIGHT, LEFT, CONE]
    model.train()
    per_row = read_memory_losses(model, clip_tokenizer, t5_tokenizer, sources, targets, batch_size=2)
    assert model.training  # its mode is given back
    # The training path, dropout off: each source encoded alone, its token-mean reconstruction loss.
    model.eval()
    with torch.no_grad():
        for source, target, (summed, count) in zip(sources, targets, per_row):
            ids = clip_tokenizer([source], return_tensors="pt")["input_ids"]
            labels = torch.tensor([t5_tokenizer(target)["input_ids"]])
            pooled, _ = model.encode_text(ids)
            assert count == labels.shape[1]
            assert summed / count == pytest.approx(float(model.reconstruction_loss(pooled, labels)), rel=1e-5)


def test_read_memory_order_gap_compares_the_swap_through_reads_memory(tiny_read_model):
    from read_trainer.demo.reconstruction_probe import read_memory_order_gap

    model, clip_tokenizer, t5_tokenizer = tiny_read_model
    swap = "a blue cube to the left of a red sphere"
    same = {"category": "swap_obj", "caption": LEFT, "caption2": RIGHT, "negative_caption": LEFT}
    other = {"category": "swap_att", "caption": LEFT, "caption2": RIGHT, "negative_caption": swap}
    assert read_memory_order_gap(model, clip_tokenizer, t5_tokenizer, {"false_captions": [[same]]})[
        "caption"]["gap_per_token"] == 0.0  # the same text: the same memory
    gap = read_memory_order_gap(model, clip_tokenizer, t5_tokenizer, {"false_captions": [[other]]})
    assert gap["items"] == 1 and gap["caption"]["gap_per_token"] != 0.0  # CLIP's causal tower sees the order


def test_a_model_without_a_decoder_has_no_reconstruction_logits(tiny_models):
    from read_trainer.modeling import ReadModel

    model = ReadModel.from_pretrained(tiny_models[0])
    with pytest.raises(RuntimeError, match="without a decoder"):
        model.reconstruction_logits(torch.zeros(1, model.clip.config.text_config.hidden_size),
                                    torch.zeros(1, 2, dtype=torch.long))


def test_order_separation_measures_each_head_on_the_swap(tiny_read_model):
    from read_trainer.demo.reconstruction_probe import order_separation

    model, clip_tokenizer, _ = tiny_read_model
    swap = "a blue cube to the left of a red sphere"
    same = {"category": "swap_obj", "caption": LEFT, "caption2": RIGHT, "negative_caption": LEFT}
    other = {"category": "swap_att", "caption": LEFT, "caption2": RIGHT, "negative_caption": swap}
    unrelated = {"category": "replace_att", "caption": LEFT, "caption2": RIGHT, "negative_caption": CONE}
    split = {"false_captions": [[same, other, unrelated]]}
    model.train()
    result = order_separation(model, clip_tokenizer, split, batch_size=1)
    assert model.training  # its mode is given back
    assert result["items"] == 2  # swaps only
    # Independently: each head on the pooled states, the identical pair counting 0.
    model.eval()
    with torch.no_grad():
        pooled = [model.encode_text(clip_tokenizer([text], return_tensors="pt")["input_ids"])[0] for text in (LEFT, swap)]
        for name, head in (("pooled", lambda x: x), ("contrastive", model.clip.text_projection),
                           ("decoder_memory", model.text_to_decoder)):
            true, swapped = head(pooled[0]), head(pooled[1])
            expected = float((true - swapped).norm() / true.norm()) / 2
            assert result[name] == pytest.approx(expected, rel=1e-4) and result[name] > 0
        true, swapped = model.clip.text_projection(pooled[0]), model.clip.text_projection(pooled[1])
        cosine = float(torch.nn.functional.cosine_similarity(true, swapped))
        assert result["contrastive_cosine_distance"] == pytest.approx((1 - cosine) / 2, rel=1e-4, abs=1e-7)


def test_order_separation_without_a_decoder_reads_the_contrastive_head(tiny_models):
    from transformers import CLIPProcessor

    from read_trainer.demo.reconstruction_probe import order_separation
    from read_trainer.modeling import ReadModel

    model = ReadModel.from_pretrained(tiny_models[0])
    item = {"category": "swap_att", "caption": LEFT, "caption2": RIGHT,
            "negative_caption": "a blue cube to the left of a red sphere"}
    result = order_separation(model, CLIPProcessor.from_pretrained(tiny_models[0]).tokenizer,
                              {"false_captions": [[item]]})
    assert "decoder_memory" not in result and result["contrastive"] > 0
