"""The frozen T5 decoder stack, teacher-forced over a one-token memory, with fewer ops.

READ's decoder reads a single memory token (the projected pooled text state), so its
cross-attention has a closed form: a softmax over one key is exactly 1, and every query
gets that token's projected value, ``o(v(memory))``, whatever the query. This module
runs the same weights (the stock ``T5Stack``'s own modules) without:

* the cross-attention's query/key projections, score matmul, softmax and weighted sum
  (per block: 1 linear for V and 1 for O on one token, instead of 4 linears on L tokens
  and 2 matmuls);
* transformers' mask construction (the causal mask is built once, from the static
  width, and folded into the relative position bias, which all blocks share as in T5);
* the fp16 clamp checks (no-ops outside fp16: they are kept for fp16).

Dropout is the stock one, call for call, in the same order and with the same shapes,
so in train mode the masks are the ones the stock stack would draw from the same seed
(the cross-attention's weight dropout too: a dropped weight zeroes that head's value
for that query, as it does in T5). The results equal ``T5Stack.forward`` (eager) to
float rounding; tests compare both, in train and eval mode.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def _fp16_clamp(hidden: torch.Tensor) -> torch.Tensor:
    # T5's guard against inf in fp16 activations (a host-side no-op in other dtypes).
    if hidden.dtype != torch.float16:
        return hidden
    limit = torch.where(torch.isinf(hidden).any(), torch.finfo(hidden.dtype).max - 1000,
                        torch.finfo(hidden.dtype).max)
    return torch.clamp(hidden, min=-limit, max=limit)


def causal_position_bias(decoder: nn.Module, length: int, dtype: torch.dtype, device) -> torch.Tensor:
    """(1, heads, L, L): block 0's relative position bias plus the causal mask, shared by all blocks.

    T5 adds the bias and the mask to every block's scores; adding them once is the same
    sum for every allowed position, and the masked ones stay at the dtype's minimum
    (softmax weight 0) either way.
    """
    attention = decoder.block[0].layer[0].SelfAttention
    bias = attention.compute_bias(length, length, device=device).to(dtype)
    future = torch.ones(length, length, dtype=torch.bool, device=device).triu(1)
    return bias.masked_fill(future, torch.finfo(dtype).min)


def _self_attention(layer, hidden: torch.Tensor, bias: torch.Tensor, training: bool) -> torch.Tensor:
    attention = layer.SelfAttention
    batch, length, _ = hidden.shape
    normed = layer.layer_norm(hidden)
    shape = (batch, length, attention.n_heads, attention.key_value_proj_dim)
    q = attention.q(normed).view(shape).transpose(1, 2)
    k = attention.k(normed).view(shape).transpose(1, 2)
    v = attention.v(normed).view(shape).transpose(1, 2)
    scores = torch.matmul(q, k.transpose(2, 3)) + bias  # T5 does not scale q·k
    weights = F.softmax(scores, dim=-1)
    if training:
        weights = F.dropout(weights, p=attention.dropout, training=True)
    out = torch.matmul(weights, v).transpose(1, 2).reshape(batch, length, attention.inner_dim)
    return hidden + layer.dropout(attention.o(out))


def _memory_attention(layer, hidden: torch.Tensor, memory: torch.Tensor, training: bool) -> torch.Tensor:
    """Cross-attention over one memory token: every query's output is ``o(v(memory))``."""
    attention = layer.EncDecAttention
    batch, length, _ = hidden.shape
    value = attention.v(memory)  # (B, 1, heads·d_kv)
    if training and attention.dropout > 0:
        # The stock weight dropout on the (B, heads, L, 1) weights, which are all exactly 1.
        heads, width = attention.n_heads, attention.key_value_proj_dim
        keep = F.dropout(value.new_ones(batch, heads, length, 1), p=attention.dropout, training=True)
        out = (keep * value.view(batch, 1, heads, width).transpose(1, 2)).transpose(1, 2)
        return hidden + layer.dropout(attention.o(out.reshape(batch, length, heads * width)))
    # Eval: one row per memory token, broadcast over the L queries (exact: 1·v = v).
    return hidden + layer.dropout(attention.o(value))


def lean_decode(decoder: nn.Module, input_ids: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
    """``decoder(input_ids=..., encoder_hidden_states=memory).last_hidden_state`` for a (B, 1, d) memory.

    ``decoder`` is a stock transformers ``T5Stack`` (decoder); its ``training`` flag
    decides whether dropout is active, as in the stock forward.
    """
    if memory.shape[1] != 1:
        raise ValueError(f"lean_decode needs a one-token memory, got {memory.shape[1]} tokens")
    training = decoder.training
    hidden = decoder.dropout(decoder.embed_tokens(input_ids))
    bias = causal_position_bias(decoder, input_ids.shape[1], hidden.dtype, hidden.device)
    for block in decoder.block:
        hidden = _fp16_clamp(_self_attention(block.layer[0], hidden, bias, training))
        hidden = _fp16_clamp(_memory_attention(block.layer[1], hidden, memory, training))
        hidden = _fp16_clamp(block.layer[2](hidden))
    return decoder.dropout(decoder.final_layer_norm(hidden))
