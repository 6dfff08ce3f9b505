"""ReadModel: a CLIPModel plus the training-only reconstruction head.

The reconstruction head is a trainable bias-free ``Linear(text_hidden -> d_model)``
feeding a *frozen* T5 v1.1 decoder stack and ``lm_head`` (the T5 encoder is never
kept). At export only the CLIPModel leaves; see ``ReadTrainer``.
"""

from __future__ import annotations

import copy
import logging
import warnings
from dataclasses import dataclass

import torch
from torch import nn
from transformers import CLIPModel, T5ForConditionalGeneration
from transformers.utils import ModelOutput

from .decoder_weights import load_decoder
from .lean_decoder import lean_decode, lean_decoder_applies
from .losses import token_cross_entropy


@dataclass
class ReadOutput(ModelOutput):
    """Everything the losses need from one forward pass, by name.

    All texts go through one text-tower pass in the order anchors (B) | negatives (B·K,
    grouped by anchor) | paraphrases (B or none); the model splits them here, so the
    layout is defined in one place. Embeddings are L2-normalised.
    """

    image_embeds: torch.Tensor | None = None
    anchors: torch.Tensor | None = None
    negatives: torch.Tensor | None = None
    paraphrases: torch.Tensor | None = None
    anchor_pooled: torch.Tensor | None = None
    logit_scale: torch.Tensor | None = None
    reconstruction_loss: torch.Tensor | None = None
    reconstruction_tokens: torch.Tensor | None = None


def split_texts(texts: torch.Tensor, batch: int, num_negatives: int):
    """(anchors, negatives, paraphrases) of a tensor whose rows follow the batch's text layout."""
    end = batch * (1 + num_negatives)
    return texts[:batch], texts[batch:end], texts[end:]


def _l2_normalize(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(p=2, dim=-1, keepdim=True)


def row_extents(mask: torch.Tensor) -> torch.Tensor:
    """1 + the index of each row's last kept position (its length when padding is on the right).

    Cutting a row after its extent drops only positions the mask excludes, wherever the
    padding is; a row's *count* of kept positions would cut real tokens if the mask had holes.
    """
    positions = torch.arange(1, mask.shape[1] + 1, device=mask.device)
    return (mask.to(positions.dtype) * positions).amax(dim=1)


def length_groups(lengths: torch.Tensor, max_groups: int) -> list[tuple[torch.Tensor, int]]:
    """Split rows into at most ``max_groups`` groups of similar length, with least padding.

    Dynamic padding pads a batch to its *longest* row, and caption lengths have a long
    tail: in a batch of 1,280 COCO texts (B=256, K=3, paraphrases) the longest is ~2.3x
    the mean, so more than half the positions the text tower (and the decoder) compute
    are padding. Rows sorted by length and cut into 4 groups, each padded to its own
    longest row, cost ~1.1x the real tokens. The cuts minimise the padded positions (sum of rows x group maximum):
    a dynamic programme over the distinct lengths (at most 77).

    Returns ``[(row indices, group max length)]`` in increasing length. One host sync
    (the lengths) per text tower or decoder pass, and shapes that change every step:
    used only with ``ReadModel(length_groups > 1)``.
    """
    order = torch.argsort(lengths, stable=True)
    sorted_lengths = lengths[order].tolist()
    distinct, counts = [], []  # runs of equal length in sorted order
    for value in sorted_lengths:
        if distinct and distinct[-1] == value:
            counts[-1] += 1
        else:
            distinct.append(value)
            counts.append(1)
    runs, cumulative = len(distinct), [0]
    for c in counts:
        cumulative.append(cumulative[-1] + c)
    groups = max(1, min(max_groups, runs))
    inf = float("inf")
    # best[g][j]: least padded positions for runs[:j] in g groups; cut[g][j]: start of the last group.
    best = [[inf] * (runs + 1) for _ in range(groups + 1)]
    cut = [[0] * (runs + 1) for _ in range(groups + 1)]
    best[0][0] = 0
    for g in range(1, groups + 1):
        for j in range(1, runs + 1):
            for i in range(g - 1, j):
                cost = best[g - 1][i] + (cumulative[j] - cumulative[i]) * distinct[j - 1]
                if cost < best[g][j]:
                    best[g][j], cut[g][j] = cost, i
    g = min(range(1, groups + 1), key=lambda n: best[n][runs])
    bounds, j = [], runs
    while g > 0:
        i = cut[g][j]
        bounds.append((cumulative[i], cumulative[j], max(1, distinct[j - 1])))
        j, g = i, g - 1
    return [(order[start:end], width) for start, end, width in reversed(bounds)]


def shift_right(labels: torch.Tensor, start_token_id: int, pad_token_id: int) -> torch.Tensor:
    """T5's teacher-forcing inputs: ``[start, labels[:-1]]`` per row, with -100 replaced by pad."""
    shifted = labels.new_full(labels.shape, start_token_id)
    shifted[..., 1:] = labels[..., :-1]
    return shifted.masked_fill(shifted == -100, pad_token_id)


def _untied_head_is_intended(record: logging.LogRecord) -> bool:
    return "to silence this warning" not in record.getMessage() or "lm_head" not in record.getMessage()


def load_t5(name_or_path: str, **kwargs) -> T5ForConditionalGeneration:
    """``T5ForConditionalGeneration.from_pretrained``, minus a misleading warning for v1.1 checkpoints.

    transformers 5's T5Config sets tie_word_embeddings=True whatever config.json says, so a v1.1
    checkpoint (its own lm_head, as google/t5-v1_1-* and the demo's T5) loads with a warning that
    the head will not be tied: that is the correct outcome. Setting the flag False instead would
    also untie embed_tokens from shared and leave them random, so only that message is dropped.
    """
    modeling_logger = logging.getLogger("transformers.modeling_utils")
    modeling_logger.addFilter(_untied_head_is_intended)
    try:
        return T5ForConditionalGeneration.from_pretrained(name_or_path, **kwargs)
    finally:
        modeling_logger.removeFilter(_untied_head_is_intended)


def load_frozen_decoder(name_or_path: str, dtype: torch.dtype | None = None, **hub_kwargs):
    """``(decoder stack, lm_head, config)`` of a T5 checkpoint, frozen.

    Only the decoder's, the shared embedding's and the head's tensors are read from the
    checkpoint and cast to ``dtype`` (:mod:`read_trainer.decoder_weights`): the encoder is
    never loaded, so it costs no memory, not even while loading.
    """
    return load_decoder(name_or_path, dtype=dtype, **hub_kwargs)


class ReadModel(nn.Module):
    """CLIP + frozen T5 decoder + trainable projection, as trained by READ.

    Args:
        clip: the ``CLIPModel`` being fine-tuned (optionally wrapped by PEFT).
        decoder, lm_head, decoder_config: a frozen T5 decoder stack, its output head and
            config, or ``None`` to train without reconstruction (NegCLIP / CLIP baselines).
        decoder_dropout: keep the frozen decoder's dropout active in training, as the
            reference run did.
        length_groups: 1 (default) encodes the batch as it comes, in the collator's
            static bucketed shapes. N > 1 re-cuts texts and decoder targets into up to N
            groups of similar length on the device (see ``length_groups``): exact, fewer
            FLOPs, but each group is a whole extra tower and decoder pass, new shapes every
            step and host syncs; it pays only where the step is compute-bound (eager CPU).
        lean_decoder: run the frozen decoder through ``lean_decode`` (the closed-form
            one-token cross-attention, same results as the stock ``T5Stack``) wherever it
            applies (not under FSDP or ZeRO-3: ``lean_decoder_applies``); False calls the
            stock stack.
    """

    def __init__(self, clip: CLIPModel, decoder=None, lm_head=None, decoder_config=None, decoder_dropout: bool = True,
                 length_groups: int = 1, lean_decoder: bool = True):
        super().__init__()
        self.clip = clip
        self.length_groups = length_groups
        self.lean_decoder = lean_decoder
        self.decoder = decoder
        self.lm_head = lm_head
        self.decoder_config = decoder_config
        self.decoder_dropout = decoder_dropout
        if decoder is not None:
            text_hidden = clip.config.text_config.hidden_size
            self.text_to_decoder = nn.Linear(text_hidden, decoder_config.d_model, bias=False)
        else:
            self.text_to_decoder = None
        self.train(self.training)

    @classmethod
    def from_pretrained(
        cls,
        model_name_or_path: str,
        decoder_name_or_path: str | None = None,
        *,
        decoder_dropout: bool = True,
        decoder_dtype: torch.dtype | None = None,
        length_groups: int = 1,
        lean_decoder: bool = True,
        **hub_kwargs,
    ) -> "ReadModel":
        """Build from hub ids or local folders (``decoder_name_or_path=None``: no reconstruction)."""
        clip = CLIPModel.from_pretrained(model_name_or_path, **hub_kwargs)
        if decoder_name_or_path is None:
            return cls(clip, length_groups=length_groups)
        decoder, lm_head, config = load_frozen_decoder(decoder_name_or_path, dtype=decoder_dtype, **hub_kwargs)
        return cls(clip, decoder, lm_head, config, decoder_dropout=decoder_dropout, length_groups=length_groups,
                   lean_decoder=lean_decoder)

    @classmethod
    def from_config(cls, config) -> "ReadModel":
        """Build from a ``ReadConfig``: loads the decoder only when λ_rec > 0."""
        dtype = {"bfloat16": torch.bfloat16, "float32": torch.float32}.get(config.decoder_dtype)
        if config.decoder_dtype == "auto":
            dtype = torch.bfloat16 if config.bf16 else torch.float32
        return cls.from_pretrained(
            config.model_name_or_path,
            config.decoder_name_or_path if config.uses_decoder else None,
            decoder_dropout=config.decoder_dropout,
            decoder_dtype=dtype,
            length_groups=config.length_groups,
            lean_decoder=config.lean_decoder,
        )

    # -- modes -----------------------------------------------------------------------
    def train(self, mode: bool = True):
        super().train(mode)
        if self.decoder is not None and not self.decoder_dropout:
            # Frozen and deterministic: eval mode even while CLIP trains.
            self.decoder.eval()
        return self

    def activation_checkpointing_enable(self, activation_checkpointing_kwargs=None, every_n_layers: int = 1,
                                        offload: bool = False):
        """Checkpoint CLIP's towers (what `TrainingArguments.activation_checkpointing` asks for).

        The frozen decoder needs no checkpointing: it stores activations only for the
        backward into the projection, which is one token wide on the encoder side.
        """
        if hasattr(self.clip, "activation_checkpointing_enable"):
            self.clip.activation_checkpointing_enable(
                activation_checkpointing_kwargs=activation_checkpointing_kwargs,
                every_n_layers=every_n_layers, offload=offload,
            )
        else:  # older transformers: the previous name, without every_n_layers / offload
            self.clip.gradient_checkpointing_enable(gradient_checkpointing_kwargs=activation_checkpointing_kwargs)

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs=None, **kwargs):
        """The older name, as older transformers' Trainer calls it."""
        self.activation_checkpointing_enable(gradient_checkpointing_kwargs, **kwargs)

    def compile_towers(self, example_batch: dict | None = None, **compile_kwargs) -> None:
        """``torch.compile`` CLIP's two towers and the lean decoder, for the collator's static shapes.

        Defaults: ``fullgraph=True`` (a graph break is an error, not a silent slow path)
        and ``dynamic=False`` (one graph per bucket: at most ceil(77 / padding_bucket)
        text and target widths, so recompilations stay within the bucket count; pass
        ``mode="reduce-overhead"`` for CUDA graphs). ``example_batch``: one eager
        forward first, so the frozen decoder's fused weights exist before tracing.
        """
        options = {"fullgraph": True, "dynamic": False, **compile_kwargs}
        if example_batch is not None:
            with torch.no_grad():
                self(**example_batch)
        # In place (``Module.compile``): parameter names, hence checkpoints and the export, stay as they are.
        self.clip.text_model.compile(**options)
        self.clip.vision_model.compile(**options)
        if self.decoder is not None:
            self._lean_decode = torch.compile(lean_decode, **options)

    # -- forward ---------------------------------------------------------------------
    def encode_text(self, input_ids, attention_mask=None):
        """Return (pooled pre-projection hidden state at EOT, L2-normalised projected embedding).

        Texts must be padded on the right (CLIP's tokenizer does). The tower then gets no
        padding mask: CLIP's causal mask already keeps every pad (which comes after its
        row's EOT) out of the real positions, and pooling reads the EOT token, so the
        result is the unpadded one, without transformers inspecting the mask on the host
        and with the causal attention kernel. ``attention_mask`` is read only to cut
        length groups (``length_groups`` > 1).
        """
        if attention_mask is None or self.length_groups <= 1:
            pooled = self.clip.text_model(input_ids=input_ids).pooler_output
        else:
            groups = length_groups(row_extents(attention_mask), self.length_groups)
            pieces = [self.clip.text_model(input_ids=input_ids[rows, :width]).pooler_output for rows, width in groups]
            order = torch.cat([rows for rows, _ in groups])
            pooled = torch.cat(pieces)[torch.argsort(order)]
        return pooled, _l2_normalize(self.clip.text_projection(pooled))

    def encode_image(self, pixel_values):
        pooled = self.clip.vision_model(pixel_values=pixel_values).pooler_output
        return _l2_normalize(self.clip.visual_projection(pooled))

    def reconstruction_loss(self, anchor_pooled: torch.Tensor, labels: torch.Tensor,
                            decoder_input_ids: torch.Tensor | None = None) -> torch.Tensor:
        """The frozen decoder regenerates ``labels`` from each anchor's pooled text state.

        The projected state is the decoder's entire (one-token) encoder output, so no
        encoder attention mask is needed. Decoder inputs are T5's shift-right of the
        labels (start = pad = 0; -100 mapped to pad; the collator hands them over ready);
        positions after </s> are -100 and unseen by earlier ones under the causal mask,
        so padding is exact. Every position goes through ``lm_head`` and the -100 ones
        are ignored by the cross-entropy: static shapes and no selection on the host.
        """
        if self.decoder is None:
            raise RuntimeError("This ReadModel was built without a decoder (reconstruction_weight=0).")
        dtype = self.lm_head.weight.dtype
        memory = self.text_to_decoder(anchor_pooled).unsqueeze(1).to(dtype)  # (B, 1, d_model), cast once
        if self.length_groups > 1:
            return self._grouped_reconstruction_loss(memory, labels)
        if decoder_input_ids is None:
            decoder_input_ids = self.shift_right(labels)
        hidden = self._decode(memory, decoder_input_ids)
        return token_cross_entropy(self.lm_head(hidden), labels)

    @torch.no_grad()
    def reconstruction_logits(self, anchor_pooled: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, L, V) logits of the frozen decoder regenerating ``labels`` from the anchors' pooled states.

        What ``reconstruction_loss`` scores (teacher forcing on ``labels``), per position and
        without gradients: for probing what the decoder reads from the memory this model
        builds (``read_trainer.demo.reconstruction_probe.read_memory_losses``).
        """
        if self.decoder is None:
            raise RuntimeError("This ReadModel was built without a decoder (reconstruction_weight=0).")
        memory = self.text_to_decoder(anchor_pooled).unsqueeze(1).to(self.lm_head.weight.dtype)
        return self.lm_head(self._decode(memory, self.shift_right(labels)))

    def _grouped_reconstruction_loss(self, memory: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        valid = labels != -100
        hidden, targets = [], []
        for rows, width in length_groups(row_extents(valid), self.length_groups):
            # Cut after the group's last label: only -100 positions are dropped; only label
            # positions go through the vocabulary projection.
            group_labels = labels[rows, :width]
            group_hidden = self._decode(memory[rows], self.shift_right(group_labels))
            keep = valid[rows, :width]
            hidden.append(group_hidden[keep])
            targets.append(group_labels[keep])
        return token_cross_entropy(self.lm_head(torch.cat(hidden)), torch.cat(targets))

    def shift_right(self, labels: torch.Tensor) -> torch.Tensor:
        """T5's decoder inputs for ``labels``: start token, then the labels shifted by one, -100 -> pad."""
        return shift_right(labels, self.decoder_config.decoder_start_token_id, self.decoder_config.pad_token_id)

    def _decode(self, memory: torch.Tensor, decoder_input_ids: torch.Tensor) -> torch.Tensor:
        """The frozen decoder stack's last hidden states (teacher forcing)."""
        if self.lean_decoder and lean_decoder_applies(self.decoder):
            hidden = getattr(self, "_lean_decode", lean_decode)(self.decoder, decoder_input_ids, memory)
        else:
            hidden = self.decoder(input_ids=decoder_input_ids, encoder_hidden_states=memory, use_cache=False)[0]
        if getattr(self.decoder_config, "scale_decoder_outputs", False):
            # Original T5 (tied head) rescales; v1.1 (untied) does not. Follow the checkpoint.
            hidden = hidden * (self.decoder_config.d_model**-0.5)
        return hidden

    def forward(
        self,
        pixel_values: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        decoder_labels: torch.Tensor | None = None,
        decoder_input_ids: torch.Tensor | None = None,
        num_negatives: int = 0,
        **unused,
    ) -> ReadOutput:
        """One vision pass, one text pass over all texts, the decoder when labels are given.

        Texts follow the layout anchors (B) | negatives (B·K) | paraphrases, with
        B = ``len(pixel_values)`` and K = ``num_negatives``. Reconstruction reads the
        anchors' pooled states from the same pass (CLIP's text tower has no dropout, so
        encoding anchors once is gradient-identical to encoding them twice).
        """
        image_embeds = self.encode_image(pixel_values)
        pooled, text_embeds = self.encode_text(input_ids, attention_mask)
        batch = pixel_values.shape[0]
        anchors, negatives, paraphrases = split_texts(text_embeds, batch, int(num_negatives))
        rec = tokens = None
        if decoder_labels is not None:
            rec = self.reconstruction_loss(pooled[:batch], decoder_labels, decoder_input_ids)
            tokens = (decoder_labels != -100).sum()
        return ReadOutput(
            image_embeds=image_embeds, anchors=anchors, negatives=negatives, paraphrases=paraphrases,
            anchor_pooled=pooled[:batch], logit_scale=self.clip.logit_scale, reconstruction_loss=rec,
            reconstruction_tokens=tokens,
        )

    # -- export and checkpoints ------------------------------------------------------
    accepts_loss_kwargs = False

    @property
    def is_peft(self) -> bool:
        return hasattr(self.clip, "peft_config")

    def apply_peft(self, peft_config) -> None:
        """Wrap CLIP in LoRA adapters; base CLIP weights freeze, the decoder projection stays trainable."""
        from peft import get_peft_model

        if self.is_peft:
            raise ValueError("this ReadModel already has adapters")
        with warnings.catch_warnings():
            # peft reads transformers' deprecated `is_gradient_checkpointing`: nothing a user can change.
            warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
            self.clip = get_peft_model(self.clip, peft_config)
        if self.text_to_decoder is not None:
            self.text_to_decoder.requires_grad_(True)

    def export_clip(self) -> CLIPModel:
        """The CLIPModel to publish: what READ trained, with nothing READ-specific attached.

        With adapters, a merged *copy* (``merge_and_unload`` rewrites the module it is
        called on, and training may go on after a checkpoint).
        """
        if self.is_peft:
            return copy.deepcopy(self.clip).merge_and_unload()
        return self.clip

    def base_clip(self) -> CLIPModel:
        """The CLIPModel being trained, adapters stripped of their wrapper (for loading weights)."""
        return self.clip.get_base_model() if self.is_peft else self.clip

    def head_state_dict(self) -> dict[str, torch.Tensor]:
        """Trainable weights outside plain CLIP, for resume: the decoder projection and LoRA adapters."""
        state = {}
        if self.text_to_decoder is not None:
            state["text_to_decoder.weight"] = self.text_to_decoder.weight.detach().contiguous()
        if self.is_peft:
            from peft import get_peft_model_state_dict

            state.update({f"adapter.{k}": v.detach().contiguous() for k, v in get_peft_model_state_dict(self.clip).items()})
        return state

    def save_head(self, path: str) -> None:
        """Write ``head_state_dict`` to ``path`` (see :mod:`read_trainer.checkpoint`)."""
        from .checkpoint import write_head

        write_head(self.head_state_dict(), path)

    def load_checkpoint(self, folder: str, head_file: str = "read_head.safetensors") -> None:
        """Restore CLIP and the projection from a checkpoint folder written by ReadTrainer.

        Strict on both: a resume that silently loads nothing would train from the base.
        """
        from .checkpoint import load_checkpoint

        load_checkpoint(self, folder, head_file)
