"""The frozen T5 decoder stack, teacher-forced over a one-token memory, with fewer ops.

READ's decoder reads a single memory token (the projected pooled text state), so its
cross-attention has a closed form: a softmax over one key is exactly 1, and every query
gets that token's projected value, ``o(v(memory))``, whatever the query. On a GPU a
step of this 24-block eager stack is bound by how many kernels the host launches, so
this module runs the same frozen weights (the stock ``T5Stack``'s own parameters and
layer norms) with fewer ops:

* cross-attention in closed form: no query/key projections, scores, softmax or
  weighted sum, and no layer norm of its (unused) queries;
* self-attention through ``scaled_dot_product_attention`` with the relative position
  bias and the causal mask folded once into one additive mask that every block shares
  (T5 adds both to every block's scores); q, k and v from one matmul;
* the gated feed-forward's two input projections as one matmul, and T5 v1.1's tanh GELU
  (``gelu_new``) as the fused ``gelu(approximate="tanh")``, the same formula;
* dropout as single ops (on the CPU drawn as uniforms, cheaper there); no transformers
  mask construction;
* with dropout on, the cross-attention's output projection once per row and head, not per
  query (its dropout acts on whole heads: see ``_memory_attention``).

The fused weights are concatenated once, and the stock modules' own weights become views
of them, so nothing is held twice (see ``_fused_weight``); the state dict, its names and
values, are unchanged. Dropout stays where T5 has it, at T5's rate, active
exactly when the decoder module is in train mode (the masks are drawn by other kernels,
so for one seed they are not bit-identical to the stock stack's). In eval mode the
outputs equal ``T5Stack.forward`` (eager) to float rounding; tests compare both.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from transformers.activations import NewGELUActivation
from transformers.models.t5.modeling_t5 import T5Block


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


def _fused_weight(linears) -> torch.Tensor:
    """The linears' weights stacked along the output dim, held once: the linears' weights become views of it.

    The decoder is frozen, so on the first call the weights are concatenated and each
    linear's weight is pointed (``.data``: the same ``Parameter``, same name and state dict
    entry) at its rows of the concatenation; the originals are freed, so the weights are
    not held twice. An in-place change of a weight is a change of the fused tensor. It is
    rebuilt when any weight is no longer its slice (replaced, moved or cast: ``.to()``
    copies each weight on its own).
    """
    cached = getattr(linears[0], "_read_fused_weight", None)
    if torch.compiler.is_compiling():
        # Compiled graphs are built after an eager call has fused the weights (see
        # ``ReadModel.compile_towers``); the frozen weights are constants to them.
        return cached if cached is not None else torch.cat([linear.weight for linear in linears])
    if cached is not None and _are_slices_of(cached, [linear.weight for linear in linears]):
        return cached
    with torch.no_grad():
        fused = torch.cat([linear.weight.detach() for linear in linears])
        start = 0
        for linear in linears:
            rows = linear.weight.shape[0]
            linear.weight.data = fused[start:start + rows]
            start += rows
    linears[0]._read_fused_weight = fused
    return fused


def _are_slices_of(fused: torch.Tensor, weights) -> bool:
    """Whether ``weights`` are, in order, consecutive row blocks of ``fused`` (sharing its memory)."""
    offset = fused.data_ptr()
    for weight in weights:
        if (weight.data_ptr() != offset or weight.dtype != fused.dtype or weight.device != fused.device
                or not weight.is_contiguous()):
            return False
        offset += weight.numel() * weight.element_size()
    return offset == fused.data_ptr() + fused.numel() * fused.element_size()


def uniform_dropout(device: torch.device) -> bool:
    """Whether dropout masks are drawn as uniforms (on the CPU) rather than by ``native_dropout``."""
    return device.type == "cpu"


def _dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """T5's dropout: each element kept with probability 1 - p and scaled by 1 / (1 - p)."""
    if not training or p <= 0:
        return x
    if uniform_dropout(x.device):
        # The same distribution, drawn as float32 uniforms (not in x's dtype: a bfloat16
        # uniform would shift the keep probability): on the CPU this costs ~40% less than
        # native_dropout's Bernoulli draw, and the decoder's dropout masks are a sixth of
        # the CPU READ step (benchmarks/README.md).
        keep = torch.rand(x.shape, device=x.device) >= p
        return x * (keep * (1.0 / (1.0 - p))).to(x.dtype)
    return torch.native_dropout(x, p, True)[0]


def _self_attention(layer, hidden: torch.Tensor, bias: torch.Tensor, training: bool) -> torch.Tensor:
    attention = layer.SelfAttention
    batch, length, _ = hidden.shape
    normed = layer.layer_norm(hidden)
    qkv = F.linear(normed, _fused_weight([attention.q, attention.k, attention.v]))
    q, k, v = qkv.view(batch, length, 3, attention.n_heads, attention.key_value_proj_dim).permute(2, 0, 3, 1, 4)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=attention.dropout if training else 0.0,
                                         scale=1.0)  # T5 does not scale q·k
    out = attention.o(out.transpose(1, 2).reshape(batch, length, attention.inner_dim))
    return hidden + _dropout(out, layer.dropout.p, training)


def _memory_attention(layer, hidden: torch.Tensor, memory: torch.Tensor, training: bool) -> torch.Tensor:
    """Cross-attention over one memory token: every query's output is ``o(v(memory))``."""
    attention = layer.EncDecAttention
    batch, length, _ = hidden.shape
    value = attention.v(memory)  # (B, 1, heads·d_kv)
    if training and attention.dropout > 0:
        # T5's dropout of the (B, heads, L, 1) attention weights, which are all exactly 1:
        # a dropped weight zeroes that head's value for that query. The output is linear in
        # the kept heads, o(keep ⊙ v) = Σ_h keep_h · o_h(v_h) (o_h: o's columns of head h),
        # so each head's projected value is computed once per row and mixed per query.
        heads, width = attention.n_heads, attention.key_value_proj_dim
        keep = _dropout(value.new_ones(batch, length, heads), attention.dropout, True)  # (B, L, heads)
        o_weight = attention.o.weight.view(-1, heads, width)  # (d_model, heads, d_kv)
        per_head = torch.einsum("bhw,dhw->bhd", value.view(batch, heads, width), o_weight)  # (B, heads, d_model)
        return hidden + _dropout(torch.bmm(keep, per_head), layer.dropout.p, True)
    # No dropout: one row per memory token, broadcast over the L queries (exact: 1·v = v).
    return hidden + attention.o(value)


def _feed_forward(layer, hidden: torch.Tensor, training: bool) -> torch.Tensor:
    dense = layer.DenseReluDense
    if not hasattr(dense, "wi_0"):  # original T5's ungated ReLU feed-forward: the stock module
        return layer(hidden)
    normed = layer.layer_norm(hidden)
    gate, linear = F.linear(normed, _fused_weight([dense.wi_0, dense.wi_1])).chunk(2, dim=-1)
    gate = F.gelu(gate, approximate="tanh") if isinstance(dense.act, NewGELUActivation) else dense.act(gate)
    inner = _dropout(gate * linear, dense.dropout.p, training)
    if inner.dtype != dense.wo.weight.dtype and dense.wo.weight.dtype != torch.int8:
        inner = inner.to(dense.wo.weight.dtype)  # as T5: wo may be kept in another dtype
    return hidden + _dropout(dense.wo(inner), layer.dropout.p, training)


def lean_decoder_applies(decoder: nn.Module) -> bool:
    """Whether ``lean_decode`` can run this decoder: plain ``T5Block``s with local weights.

    Under FSDP (its wrappers and its per-module subclasses gather a block's weights only
    inside that block's own forward) or DeepSpeed ZeRO-3 (partitioned weights), the block
    forward must be the stock one, which then runs.
    """
    blocks = getattr(decoder, "block", None)
    if blocks is None or not all(type(block) is T5Block for block in blocks):
        return False
    return all(type(p) is torch.Tensor or type(p) is nn.Parameter for p in decoder.parameters()) and not any(
        hasattr(p, "ds_id") for p in decoder.parameters())


def lean_decode(decoder: nn.Module, input_ids: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
    """``decoder(input_ids=..., encoder_hidden_states=memory).last_hidden_state`` for a (B, 1, d) memory.

    ``decoder`` is a stock transformers ``T5Stack`` (decoder); its ``training`` flag
    decides whether dropout is active, as in the stock forward.
    """
    if memory.shape[1] != 1:
        raise ValueError(f"lean_decode needs a one-token memory, got {memory.shape[1]} tokens")
    training = decoder.training
    hidden = _dropout(decoder.embed_tokens(input_ids), decoder.dropout.p, training)
    bias = causal_position_bias(decoder, input_ids.shape[1], hidden.dtype, hidden.device)
    for block in decoder.block:
        hidden = _fp16_clamp(_self_attention(block.layer[0], hidden, bias, training))
        hidden = _fp16_clamp(_memory_attention(block.layer[1], hidden, memory, training))
        hidden = _fp16_clamp(_feed_forward(block.layer[2], hidden, training))
    return _dropout(decoder.final_layer_norm(hidden), decoder.dropout.p, training)
