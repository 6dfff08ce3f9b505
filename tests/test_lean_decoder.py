"""The lean paths against the stock transformers modules: the T5 decoder over a one-token
memory, and CLIP's text tower without a padding mask."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import CAPTIONS
from transformers import CLIPModel, CLIPProcessor, T5ForConditionalGeneration

from read_trainer.lean_decoder import lean_decode
from read_trainer.modeling import shift_right


@pytest.fixture(scope="module")
def t5(tiny_models):
    return T5ForConditionalGeneration.from_pretrained(tiny_models[1]).float()


def _inputs(t5, generator):
    labels = torch.randint(2, t5.config.vocab_size, (5, 9), generator=generator)
    for row, length in enumerate([9, 7, 4, 1, 6]):  # </s> at the end of each row, then -100
        labels[row, length - 1] = t5.config.eos_token_id
        labels[row, length:] = -100
    memory = torch.randn(5, 1, t5.config.d_model, generator=generator, requires_grad=True)
    return shift_right(labels, t5.config.decoder_start_token_id, t5.config.pad_token_id), labels, memory


def test_lean_decoder_equals_the_stock_t5_decoder(t5):
    """Hidden states, loss and the gradient into the memory (what trains the projection), fp32."""
    decoder = t5.decoder.eval()
    ids, labels, memory = _inputs(t5, torch.Generator().manual_seed(0))
    results = []
    for lean in (False, True):
        memory.grad = None
        if lean:
            hidden = lean_decode(decoder, ids, memory)
        else:
            hidden = decoder(input_ids=ids, encoder_hidden_states=memory, use_cache=False).last_hidden_state
        loss = F.cross_entropy(t5.lm_head(hidden).flatten(0, 1), labels.flatten(), ignore_index=-100)
        loss.backward()
        results.append((hidden.detach(), loss.detach(), memory.grad.clone()))
    (h0, l0, g0), (h1, l1, g1) = results
    torch.testing.assert_close(h1, h0, atol=1e-5, rtol=0)
    torch.testing.assert_close(l1, l0, atol=1e-5, rtol=0)
    torch.testing.assert_close(g1, g0, atol=1e-5, rtol=0)
    # And the stock seq2seq loss, with the memory as the encoder output.
    reference = t5.eval()(encoder_outputs=(memory,), labels=labels).loss
    torch.testing.assert_close(l1, reference.detach(), atol=1e-5, rtol=0)


def test_lean_decoder_reuses_its_fused_weights_until_they_change(t5):
    decoder = t5.decoder.eval()
    ids, _, memory = _inputs(t5, torch.Generator().manual_seed(1))
    before = lean_decode(decoder, ids, memory).detach()
    with torch.no_grad():  # a changed frozen weight must not be served from the cache
        decoder.block[0].layer[0].SelfAttention.k.weight.mul_(2.0)
    try:
        changed = lean_decode(decoder, ids, memory).detach()
        stock = decoder(input_ids=ids, encoder_hidden_states=memory, use_cache=False).last_hidden_state.detach()
        assert not torch.allclose(changed, before)
        torch.testing.assert_close(changed, stock, atol=1e-5, rtol=0)
    finally:
        with torch.no_grad():
            decoder.block[0].layer[0].SelfAttention.k.weight.mul_(0.5)


def test_lean_decoder_dropout_is_active_in_train_mode_only(t5):
    """Train mode: T5's dropout is on (a seed repeats its draw, the next draw differs, and
    both differ from the eval output); eval mode: deterministic."""
    decoder = t5.decoder
    ids, _, memory = _inputs(t5, torch.Generator().manual_seed(2))
    with torch.no_grad():
        deterministic = lean_decode(decoder.eval(), ids, memory)
        decoder.train()
        torch.manual_seed(0)
        first = lean_decode(decoder, ids, memory)
        torch.manual_seed(0)
        again = lean_decode(decoder, ids, memory)
        other = lean_decode(decoder, ids, memory)
    decoder.eval()
    assert t5.config.dropout_rate > 0
    torch.testing.assert_close(first, again, atol=0, rtol=0)
    assert not torch.allclose(first, other) and not torch.allclose(first, deterministic)


def test_clip_causal_mask_alone_is_exact_for_right_padded_texts(tiny_models):
    """With right padding and EOT pooling, the stock text tower gives every text the same
    pooled state with the padding mask, without it, and encoded alone without padding."""
    clip_dir, _ = tiny_models
    clip = CLIPModel.from_pretrained(clip_dir).eval()
    tokenizer = CLIPProcessor.from_pretrained(clip_dir).tokenizer
    texts = [c for captions in CAPTIONS for c in captions]
    tokens = tokenizer(texts, padding="max_length", max_length=32, return_tensors="pt")
    assert tokenizer.padding_side == "right" and (tokens["attention_mask"] == 0).any()
    with torch.no_grad():
        masked = clip.text_model(**tokens).pooler_output
        unmasked = clip.text_model(input_ids=tokens["input_ids"]).pooler_output
        alone = torch.cat([clip.text_model(**tokenizer([t], return_tensors="pt")).pooler_output for t in texts])
    torch.testing.assert_close(unmasked, masked, atol=1e-5, rtol=0)
    torch.testing.assert_close(unmasked, alone, atol=1e-5, rtol=0)


def _stored_bytes(module) -> int:
    """Bytes of the distinct storages a module holds, its parameters and the lean decoder's fused
    weights (a view of a storage counts once)."""
    tensors = [*module.parameters()] + [m._read_fused_weight for m in module.modules()
                                        if torch.is_tensor(getattr(m, "_read_fused_weight", None))]
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}
    return sum(storages.values())


def test_lean_decoder_holds_each_frozen_weight_once(t5, tiny_models):
    """Fusing q/k/v and the gated input projections frees the originals: the stock modules'
    weights become views of the fused tensors (no extra memory); names and values are unchanged,
    and the stock forward still gives the same result."""
    from read_trainer.modeling import load_frozen_decoder

    decoder = load_frozen_decoder(tiny_models[1])[0].eval()
    before = {k: v.clone() for k, v in decoder.state_dict().items()}
    held = _stored_bytes(decoder)
    ids, _, memory = _inputs(t5, torch.Generator().manual_seed(3))
    with torch.no_grad():
        lean = lean_decode(decoder, ids, memory)
    attention = decoder.block[0].layer[0].SelfAttention
    fused = attention.q._read_fused_weight
    assert fused.untyped_storage().data_ptr() == attention.v.weight.untyped_storage().data_ptr()
    assert _stored_bytes(decoder) == held  # the fused tensors replaced the originals
    after = decoder.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)
    with torch.no_grad():
        stock = decoder(input_ids=ids, encoder_hidden_states=memory, use_cache=False).last_hidden_state
        again = lean_decode(decoder, ids, memory)
    torch.testing.assert_close(lean, stock, atol=1e-5, rtol=0)
    assert attention.q._read_fused_weight is fused  # reused, not rebuilt
    torch.testing.assert_close(again, lean, atol=0, rtol=0)
    # A cast copies each weight on its own: the next call fuses again, still holding each weight once.
    decoder.double()
    with torch.no_grad():
        doubled = lean_decode(decoder, ids, memory.double())
    assert _stored_bytes(decoder) == 2 * held
    torch.testing.assert_close(doubled.float(), lean, atol=1e-5, rtol=0)


def test_memory_attention_with_dropout_equals_the_per_query_formula(t5, monkeypatch):
    """In train mode the closed form mixes each head's projected value per query; with the same
    dropout masks it equals o(keep ⊙ v) computed per query, as T5's dropped attention weights give."""
    from read_trainer import lean_decoder

    layer = t5.decoder.block[0].layer[1]
    attention = layer.EncDecAttention
    heads, width = attention.n_heads, attention.key_value_proj_dim
    generator, masks = torch.Generator().manual_seed(4), {}

    def fixed_dropout(x, p, training):  # one fixed mask per shape, shared by both computations
        if x.shape not in masks:
            masks[x.shape] = (torch.rand(x.shape, generator=generator) >= 0.5).to(x.dtype) * 2.0
        return x * masks[x.shape]

    monkeypatch.setattr(lean_decoder, "_dropout", fixed_dropout)
    batch, length = 3, 5
    hidden = torch.randn(batch, length, t5.config.d_model, generator=generator)
    memory = torch.randn(batch, 1, t5.config.d_model, generator=generator)
    assert attention.dropout > 0
    with torch.no_grad():
        got = lean_decoder._memory_attention(layer, hidden, memory, True)
        keep = masks[(batch, length, heads)]
        value = attention.v(memory).view(batch, 1, heads, width)
        per_query = attention.o((keep[..., None] * value).reshape(batch, length, heads * width))
        expected = hidden + fixed_dropout(per_query, layer.dropout.p, True)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_cpu_dropout_keeps_with_probability_one_minus_p_and_rescales():
    from read_trainer.lean_decoder import _dropout

    torch.manual_seed(0)
    for dtype in (torch.float32, torch.bfloat16):
        x = torch.ones(400_000, dtype=dtype)
        out = _dropout(x, 0.1, True)
        kept = out != 0
        assert abs(kept.float().mean().item() - 0.9) < 0.003, dtype  # 0.003 is > 6 standard deviations
        torch.testing.assert_close(out[kept].float(), torch.full_like(out[kept].float(), 1 / 0.9),
                                   atol=1e-2 if dtype == torch.bfloat16 else 1e-6, rtol=0)
    assert _dropout(x, 0.1, False) is x
