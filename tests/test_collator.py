"""ReadCollator on hand-written rows: layout, padding, labels, seeded sampling, bad rows."""

import copy

import pytest
import torch
from conftest import CAPTIONS, NEGATIVES, make_rows, random_image
from transformers import AutoTokenizer, CLIPProcessor

from read_trainer.data.collator import BadRowError, ReadCollator, row_rng


@pytest.fixture(scope="module")
def collator(tiny_models):
    clip_dir, t5_dir = tiny_models
    return ReadCollator(processor=CLIPProcessor.from_pretrained(clip_dir),
                        decoder_tokenizer=AutoTokenizer.from_pretrained(t5_dir), num_hard_negatives=2, seed=7)


def _decode(collator, ids):
    return [collator.processor.tokenizer.decode(x, skip_special_tokens=True).strip() for x in ids]


def test_layout_anchors_negatives_paraphrases(collator):
    rows = make_rows(3, paraphrases=True)
    batch = collator(rows)
    b, k = 3, 2
    assert batch["pixel_values"].shape == (3, 3, 32, 32)
    assert batch["input_ids"].shape[0] == b * (1 + k) + b and batch["num_negatives"] == k
    texts = _decode(collator, batch["input_ids"])
    for i, row in enumerate(rows):
        anchor = texts[i]
        anchor_index = [c.lower() for c in row["captions"]].index(anchor)
        negatives = texts[b + i * k: b + (i + 1) * k]
        assert set(negatives) <= {n.lower() for n in row["negatives"][anchor_index]}
        assert len(set(negatives)) == k
        assert texts[b * (1 + k) + i] in {p.lower() for p in row["paraphrases"]}


@pytest.mark.parametrize("bucket", [0, 16, 5])
def test_padding_to_buckets_and_t5_labels(collator, bucket):
    """Texts and targets are right-padded to one bucket index (0: each to its own longest row)."""
    collator = copy.copy(collator)
    collator.padding_bucket = bucket
    batch = collator(make_rows(4))
    ids, mask = batch["input_ids"], batch["attention_mask"]
    labels = batch["decoder_labels"]
    longest_text, longest_target = int(mask.sum(1).max()), int((labels != -100).sum(1).max())
    if bucket == 0:
        assert (ids.shape[1], labels.shape[1]) == (longest_text, longest_target)
    else:
        index = max(-(-longest_text // bucket), -(-longest_target // bucket))
        assert (ids.shape[1], labels.shape[1]) == (min(77, index * bucket), min(77, index * bucket))
    assert (mask.cumsum(1) == mask.sum(1, keepdim=True)).logical_or(mask == 1).all()  # right padding
    assert (ids[mask == 0] == collator.processor.tokenizer.pad_token_id).all()
    eos = collator.decoder_tokenizer.eos_token_id
    for row in labels:
        kept = row[row != -100]
        assert kept[-1] == eos and (row[len(kept):] == -100).all()  # </s> then only -100
    assert not (labels == collator.decoder_tokenizer.pad_token_id).any()
    # Decoder inputs: T5's shift right (start = pad = 0), -100 -> pad.
    shifted = torch.cat([torch.zeros_like(labels[:, :1]), labels[:, :-1]], 1).clamp(min=0)
    assert torch.equal(batch["decoder_input_ids"], shifted)


def test_sampling_depends_on_seed_epoch_and_row_only(collator):
    rows = make_rows(8)
    alone = collator([rows[5]])
    in_batch = collator([rows[2], rows[7], rows[5]])
    # Row 5 draws the same anchor and negatives whatever else is in the batch (or which worker builds it).
    assert _decode(collator, alone["input_ids"][:1]) == _decode(collator, in_batch["input_ids"][2:3])
    assert _decode(collator, alone["input_ids"][1:3]) == _decode(collator, in_batch["input_ids"][3 + 2 * 2: 3 + 3 * 2])

    other_epoch = copy.copy(collator)
    other_epoch.epoch = 1
    anchors = lambda c: [tuple(_decode(c, c(rows)["input_ids"][:8]))]
    assert anchors(collator) == anchors(collator)
    assert anchors(collator) != anchors(other_epoch)
    assert row_rng(1, 0, 3).random() == row_rng(1, 0, 3).random() != row_rng(1, 0, 4).random()


def test_reconstruction_target_policies(collator):
    rows = [{"row_id": 0, "image": random_image(0), "captions": CAPTIONS[0], "negatives": NEGATIVES[0]}]
    tok = collator.decoder_tokenizer
    as_anchor = copy.copy(collator)
    as_anchor.reconstruction_target = "anchor"
    seen = set()
    for epoch in range(30):
        as_anchor.epoch = collator.epoch = epoch
        b = as_anchor(rows)
        anchor = _decode(collator, b["input_ids"][:1])[0]
        label = b["decoder_labels"][0]
        assert tok.decode(label[label != -100], skip_special_tokens=True).lower() == anchor
        r = collator(rows)["decoder_labels"][0]
        seen.add(tok.decode(r[r != -100], skip_special_tokens=True))
    assert len(seen) == len(CAPTIONS[0])  # random_caption draws from all captions, the anchor included


def test_paraphrase_fallback_uses_another_caption(collator):
    rows = make_rows(4)  # no paraphrases column
    batch = collator(rows)
    texts = _decode(collator, batch["input_ids"])
    b, k = 4, 2
    for i, row in enumerate(rows):
        assert texts[b * (1 + k) + i] in {c.lower() for c in row["captions"]}
        assert texts[b * (1 + k) + i] != texts[i]


def test_bad_rows_are_named(collator, tmp_path):
    good = make_rows(2)
    empty = dict(good[0], row_id="img-17", captions=["  ", ""])
    with pytest.raises(BadRowError, match="img-17"):
        collator([good[1], empty])

    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg at all")
    with pytest.raises(BadRowError, match=r"row 'img-9'.*broken\.jpg"):
        collator([dict(good[0], row_id="img-9", image=str(broken))])
    with pytest.raises(BadRowError, match=r"row 'img-3'.*missing\.png"):
        collator([dict(good[0], row_id="img-3", image=str(tmp_path / "missing.png"))])

    no_negatives = {k: v for k, v in good[0].items() if k != "negatives"}
    with pytest.raises(BadRowError, match="no 'negatives' and no negative generator"):
        collator([no_negatives])
    too_few = dict(good[0], captions=["a red cube"], negatives=["a red cube", "", "a blue cube"])
    with pytest.raises(BadRowError, match="1 usable hard negative.*batch cannot supply"):
        collator([too_few])
    # In a batch, the shortfall is filled from the other anchors' negatives (and never with its own anchor).
    batch = collator([too_few] + make_rows(3)[1:])
    texts = _decode(collator, batch["input_ids"])
    own = texts[3: 3 + 2]
    assert "a red cube" not in own and len(set(own)) == 2 and "a blue cube" in own


def test_negative_generator_is_used_when_rows_have_none(collator):
    calls = []

    def generator(caption, k):
        calls.append(caption)
        return [f"not {caption}", f"never {caption}", f"hardly {caption}", f"barely {caption}"][:k]

    with_generator = copy.copy(collator)
    with_generator.negative_generator = generator
    rows = [{k: v for k, v in r.items() if k != "negatives"} for r in make_rows(2)]
    batch = with_generator(rows)
    texts = _decode(collator, batch["input_ids"])
    assert calls == texts[:2]
    assert texts[2].startswith(("not ", "never ", "hardly ", "barely "))


def _anchor_negatives_paraphrase(collator, row, epoch):
    at_epoch = copy.copy(collator)
    at_epoch.epoch = epoch
    texts = _decode(collator, at_epoch([row])["input_ids"])
    k = collator.num_hard_negatives
    return texts[0], texts[1: 1 + k], texts[1 + k]


def test_blank_or_none_caption_keeps_per_caption_lists_on_their_own_caption(collator):
    """A caption dropped as blank takes its own paraphrases and negatives with it."""
    first, second = CAPTIONS[0][0], CAPTIONS[0][2]
    row = {
        "row_id": 0, "image": random_image(0),
        "captions": [first, None, "   ", second],
        "paraphrases": [[f"in short {first}"], [f"in short {CAPTIONS[1][0]}"], [f"in short {CAPTIONS[2][0]}"],
                        [f"in short {second}"]],
        "negatives": [NEGATIVES[0][0], NEGATIVES[1][0], NEGATIVES[2][0], NEGATIVES[0][2]],
    }
    own = {first: NEGATIVES[0][0], second: NEGATIVES[0][2]}
    anchors = set()
    for epoch in range(12):
        anchor, negatives, paraphrase = _anchor_negatives_paraphrase(collator, row, epoch)
        caption = {c.lower(): c for c in own}[anchor]
        anchors.add(caption)
        assert paraphrase == f"in short {caption}".lower()
        assert set(negatives) <= {n.lower() for n in own[caption]}
    assert anchors == {first, second}


def test_a_string_in_per_caption_paraphrases_is_one_paraphrase(collator):
    first, second = CAPTIONS[1]
    row = {"row_id": 1, "image": random_image(1), "captions": [first, second], "negatives": NEGATIVES[1],
           "paraphrases": [f"in short {first}", [f"in short {second}"]]}
    seen = set()
    for epoch in range(12):
        anchor, _, paraphrase = _anchor_negatives_paraphrase(collator, row, epoch)
        assert paraphrase == f"in short {anchor}"
        seen.add(anchor)
    assert len(seen) == 2
