"""The benchmarked steps and their inputs: model sizes, COCO-length batches, the variants.

Variants (each trains the same CLIP: same initial weights, same AdamW, same clipping):

  (a) negclip       NegCLIP only (our trainer with λ_rec = λ_align = 0): one image pass, one
                    text pass over anchors | negatives, one backward; the device's default
                    step settings (as (b)).
  (b) read          our READ step as it trains on this device: ``ReadTrainer.compute_loss`` on
                    ``ReadModel`` with the step settings ``ReadConfig`` picks for the device
                    (``read_trainer.device_settings``): on a GPU the collator's static bucketed
                    widths (texts and T5 targets padded to one multiple of 16) and one pass
                    each; on the CPU each batch padded to its longest row and re-cut into 4
                    length groups. No padding mask, the lean frozen decoder (bf16 under bf16),
                    one backward.
  (c) reference     the reference implementation's step pattern, rebuilt: every CLIP text and
                    T5 label padded to 77; the full T5 model (encoder too) in memory, fp32
                    weights, run under autocast; pass 1 = images + anchors|negatives,
                    L_con + λ_rec·L_rec, backward; pass 2 = anchors encoded *again* with the
                    paraphrases, outside autocast, λ_align·L_align, second backward;
                    full-vocabulary logits kept in fp32 for a token-accuracy logging metric.
  (b') read-static  (``--with-static``) (b) with the GPU's settings: bucketed widths, one pass,
                    one ``lm_head`` pass over the padded targets.
  (b') read-grouped (``--with-grouped``) (b) with the CPU's settings: padding to the batch's
                    longest row, 4 length groups cut on the device, vocabulary logits at label
                    positions only.
  (b') read-compiled (``--with-compile``) read-static with the towers and the decoder under
                    ``torch.compile`` on the bucketed (static) shapes.

On a CPU every variant runs as CPU training does (``device_settings.torch_cpu_settings``: denormal
floats flushed to zero), with the threads ``bench_step.py --threads`` sets.

Caption lengths follow real COCO captions: the word+punctuation counts of the 4,345
COCO val2017 captions in SugarCrepe (histogram below); CLIP tokens = count + 2
(BOS/EOS; COCO words are almost all single BPE tokens), T5 tokens = round(1.2·count) + 1
(SentencePiece splits more; + </s>). Token ids are random; they do not change the cost.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, T5Config, T5ForConditionalGeneration

from read_trainer import losses
from read_trainer.config import ReadConfig
from read_trainer.data.collator import bucket_widths
from read_trainer.device_settings import STEP_SETTINGS
from read_trainer.modeling import ReadModel, shift_right
from read_trainer.trainer import ReadTrainer, read_model_inputs

# Word+punctuation counts of COCO val2017 captions (SugarCrepe's 4,345 positives): count -> captions.
COCO_LENGTHS = {7: 15, 8: 163, 9: 655, 10: 817, 11: 791, 12: 656, 13: 468, 14: 290, 15: 174, 16: 107, 17: 67,
                18: 40, 19: 28, 20: 18, 21: 11, 22: 13, 23: 6, 24: 6, 25: 3, 26: 8, 27: 2, 30: 3, 33: 1, 40: 1,
                42: 1, 48: 1}
CLIP_BOS, CLIP_EOS = 49406, 49407  # openai/clip-vit-base-patch32's ids (EOT pooling finds the EOS id)
REFERENCE_PAD = 77
VARIANTS = ("negclip", "read", "reference")
EXTRA_VARIANTS = ("read-static", "read-grouped", "read-compiled")  # added by flags or --variants
COMPILED = ("read-compiled",)
BUCKET = STEP_SETTINGS["gpu"]["padding_bucket"]
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0}  # dense


@dataclass
class Scale:
    """Model sizes and step settings of one benchmark configuration."""

    name: str
    image_size: int
    patch_size: int
    vision_width: int
    vision_layers: int
    vision_heads: int
    text_width: int
    text_layers: int
    text_heads: int
    projection_dim: int
    t5_d_model: int
    t5_d_ff: int
    t5_layers: int
    t5_heads: int
    t5_vocab: int
    batch_size: int
    bf16: bool
    checkpointing: bool
    num_negatives: int = 3
    compile_backend: str = "inductor"  # of read-compiled ("eager" proves the code path in seconds)


# A 2-core CPU config (64×64 images, width 128, 4 layers, batch 128). The T5
# keeps T5-v1.1-large's proportions to CLIP's text tower: twice the width, twice the depth,
# d_ff = 2.75·d_model, vocabulary ≈ 31·d_model.
TINY = Scale("tiny-cpu", image_size=64, patch_size=8, vision_width=128, vision_layers=4, vision_heads=4,
             text_width=128, text_layers=4, text_heads=4, projection_dim=128,
             t5_d_model=256, t5_d_ff=704, t5_layers=8, t5_heads=4, t5_vocab=8000,
             batch_size=128, bf16=False, checkpointing=False)
# The reference run: openai/clip-vit-base-patch32 + google/t5-v1_1-large (random weights,
# same architecture), batch 256 on one GPU, bf16, gradient checkpointing.
REFERENCE = Scale("reference", image_size=224, patch_size=32, vision_width=768, vision_layers=12, vision_heads=12,
                  text_width=512, text_layers=12, text_heads=8, projection_dim=512,
                  t5_d_model=1024, t5_d_ff=2816, t5_layers=24, t5_heads=16, t5_vocab=32128,
                  batch_size=256, bf16=True, checkpointing=True)


# -- models ----------------------------------------------------------------------------------
def clip_config(scale: Scale) -> CLIPConfig:
    return CLIPConfig(
        text_config=dict(hidden_size=scale.text_width, intermediate_size=4 * scale.text_width,
                         num_hidden_layers=scale.text_layers, num_attention_heads=scale.text_heads,
                         max_position_embeddings=77, vocab_size=49408, bos_token_id=CLIP_BOS,
                         eos_token_id=CLIP_EOS, pad_token_id=1),
        vision_config=dict(hidden_size=scale.vision_width, intermediate_size=4 * scale.vision_width,
                           num_hidden_layers=scale.vision_layers, num_attention_heads=scale.vision_heads,
                           image_size=scale.image_size, patch_size=scale.patch_size),
        projection_dim=scale.projection_dim,
    )


def t5_config(scale: Scale) -> T5Config:
    """T5 v1.1's layout (gated GELU, untied head) at the scale's sizes."""
    return T5Config(
        vocab_size=scale.t5_vocab, d_model=scale.t5_d_model, d_ff=scale.t5_d_ff, d_kv=64,
        num_layers=scale.t5_layers, num_decoder_layers=scale.t5_layers, num_heads=scale.t5_heads,
        feed_forward_proj="gated-gelu", dropout_rate=0.1, tie_word_embeddings=False,
        decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
    )


def build_models(scale: Scale, seed: int = 0, with_t5: bool = True):
    """(CLIPModel, T5ForConditionalGeneration or None) with random weights, v1.1 layout (untied head)."""
    torch.manual_seed(seed)
    clip = CLIPModel(clip_config(scale))
    if not with_t5:
        return clip, None
    t5 = T5ForConditionalGeneration(t5_config(scale))
    # transformers 5 may tie a config-built T5's head to the embedding; v1.1 has its own.
    if t5.lm_head.weight is t5.shared.weight:
        t5.lm_head.weight = torch.nn.Parameter(t5.shared.weight.detach().clone())
    t5.config.tie_word_embeddings = False
    t5.requires_grad_(False)
    return clip, t5


# -- batches ---------------------------------------------------------------------------------
def _sample_counts(generator: torch.Generator, n: int) -> torch.Tensor:
    values = torch.tensor(list(COCO_LENGTHS), dtype=torch.long)
    weights = torch.tensor(list(COCO_LENGTHS.values()), dtype=torch.float)
    return values[torch.multinomial(weights, n, replacement=True, generator=generator)]


def _clip_ids(lengths: torch.Tensor, pad_to: int | None, generator: torch.Generator):
    """CLIP ids: BOS, random tokens, EOS, then padding (EOS, like the HF CLIP tokenizer)."""
    width = pad_to if pad_to is not None else int(lengths.max())
    ids = torch.randint(1, CLIP_BOS, (len(lengths), width), generator=generator)
    positions = torch.arange(width).expand(len(lengths), width)
    ids[:, 0] = CLIP_BOS
    ids[positions == (lengths - 1).unsqueeze(1)] = CLIP_EOS
    ids[positions >= lengths.unsqueeze(1)] = CLIP_EOS
    return ids, (positions < lengths.unsqueeze(1)).long()


def _t5_labels(lengths: torch.Tensor, pad_to: int | None, vocab: int, generator: torch.Generator):
    width = pad_to if pad_to is not None else int(lengths.max())
    labels = torch.randint(2, vocab, (len(lengths), width), generator=generator)
    positions = torch.arange(width).expand(len(lengths), width)
    labels[positions == (lengths - 1).unsqueeze(1)] = 1  # </s>
    return labels.masked_fill(positions >= lengths.unsqueeze(1), -100)


def make_batches(scale: Scale, seed: int) -> dict[str, dict]:
    """One step's inputs for every variant, from the same captions (lengths) and images."""
    g = torch.Generator().manual_seed(seed)
    b, k = scale.batch_size, scale.num_negatives
    words = {"anchors": _sample_counts(g, b), "negatives": _sample_counts(g, b * k),
             "paraphrases": _sample_counts(g, b), "targets": _sample_counts(g, b)}
    clip_len = {name: (w + 2).clamp(max=77) for name, w in words.items()}
    t5_len = (torch.round(1.2 * words["targets"].float()).long() + 1).clamp(max=77)
    pixels = torch.randn(b, 3, scale.image_size, scale.image_size, generator=g)

    def texts(names, pad_to=None):
        return _clip_ids(torch.cat([clip_len[n] for n in names]), pad_to, g)

    negclip_texts = torch.cat([clip_len[n] for n in ("anchors", "negatives")])
    ids, mask = texts(["anchors", "negatives"], bucket_widths(int(negclip_texts.max()), 1, BUCKET, 77, 77)[0])
    negclip = {"pixel_values": pixels, "input_ids": ids, "attention_mask": mask, "num_negatives": k}
    # (b): the collator's bucket rule, one width index for texts and targets.
    all_texts = torch.cat([clip_len[n] for n in ("anchors", "negatives", "paraphrases")])
    text_width, target_width = bucket_widths(int(all_texts.max()), int(t5_len.max()), BUCKET, 77, 77)
    ids, mask = texts(["anchors", "negatives", "paraphrases"], text_width)
    labels = _t5_labels(t5_len, target_width, scale.t5_vocab, g)
    read = {"pixel_values": pixels, "input_ids": ids, "attention_mask": mask, "num_negatives": k,
            "decoder_labels": labels, "decoder_input_ids": shift_right(labels, 0, 0)}
    # The same texts, padded to the batch's longest row (the CPU's settings).
    longest = int(all_texts.max())
    grouped = {"pixel_values": pixels, "input_ids": ids[:, :longest], "attention_mask": mask[:, :longest],
               "num_negatives": k, "decoder_labels": labels[:, :int(t5_len.max())]}
    negclip_longest = {**negclip, "input_ids": negclip["input_ids"][:, :int(negclip_texts.max())],
                       "attention_mask": negclip["attention_mask"][:, :int(negclip_texts.max())]}
    ids, mask = texts(["anchors", "negatives"], REFERENCE_PAD)
    anchor_ids, anchor_mask = texts(["anchors"], REFERENCE_PAD)
    para_ids, para_mask = texts(["paraphrases"], REFERENCE_PAD)
    reference = {"pixel_values": pixels, "input_ids": ids, "attention_mask": mask,
                 "anchor_ids": anchor_ids, "anchor_mask": anchor_mask, "para_ids": para_ids, "para_mask": para_mask,
                 "labels": _t5_labels(t5_len, REFERENCE_PAD, scale.t5_vocab, g)}
    return {"negclip": negclip, "negclip-longest": negclip_longest, "read": read, "read-grouped": grouped,
            "reference": reference}


# -- steps -----------------------------------------------------------------------------------
class OurStep:
    """(a) or (b): the real ``ReadTrainer.compute_loss`` on a ``ReadModel``, as Trainer runs it.

    The model is prepared by the trainer's Accelerator (which wraps its forward in autocast
    under bf16), and the step is Trainer's: compute_loss, accelerator.backward, clip, step.
    """

    def __init__(self, scale: Scale, clip, t5, device, with_read_losses: bool, workdir: str,
                 length_groups: int = 1, lean_decoder: bool = True, compile: bool = False):
        args = ReadConfig(
            output_dir=workdir, report_to="none", use_cpu=device.type == "cpu", bf16=scale.bf16,
            reconstruction_weight=0.1 if with_read_losses else 0.0,
            alignment_weight=0.5 if with_read_losses else 0.0, num_hard_negatives=scale.num_negatives,
            length_groups=length_groups,
        )
        self.scale = scale
        clip = copy.deepcopy(clip)
        if with_read_losses:
            dtype = torch.bfloat16 if scale.bf16 else torch.float32  # decoder_dtype="auto"
            decoder = copy.deepcopy(t5.decoder).to(dtype)
            lm_head = copy.deepcopy(t5.lm_head).to(dtype)
            model = ReadModel(clip, decoder, lm_head, t5.config, decoder_dropout=True, length_groups=length_groups,
                              lean_decoder=lean_decoder)
        else:
            model = ReadModel(clip, length_groups=length_groups)
        if scale.checkpointing:
            model.activation_checkpointing_enable()
        self.trainer = ReadTrainer(model=model, args=args, processing_class=CLIPImageProcessor(),
                                   data_collator=lambda rows: rows)
        self.model = self.trainer.accelerator.prepare_model(self.trainer.model)
        self.model.train()
        self.compile_pending = compile  # at the first batch: compile_towers wants one eager forward first
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=1e-5, weight_decay=0.1)

    def set_checkpointing(self, enabled: bool) -> None:
        clip = self.trainer.model.clip
        if enabled:
            clip.activation_checkpointing_enable()
        else:
            clip.activation_checkpointing_disable()

    def forward_backward(self, batch: dict) -> torch.Tensor:
        if self.compile_pending:  # the towers and the lean decoder, fullgraph, one graph per bucket
            example = read_model_inputs(dict(batch), self.trainer.args)
            with self.trainer.compute_loss_context_manager():
                self.trainer.model.compile_towers(example_batch=example, backend=self.scale.compile_backend)
            self.compile_pending = False
        with self.trainer.compute_loss_context_manager():
            loss = self.trainer.compute_loss(self.model, dict(batch))
        self.trainer.accelerator.backward(loss)
        return loss

    def __call__(self, batch: dict) -> float:
        loss = self.forward_backward(batch)
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss.detach()


class ReferenceStep:
    """(c): the reference implementation's step pattern, rebuilt (see the module docstring)."""

    def __init__(self, scale: Scale, clip, t5, device):
        self.scale, self.device = scale, device
        self.clip = copy.deepcopy(clip).to(device).train()
        self.t5 = copy.deepcopy(t5).to(device).train()  # full model, fp32, frozen, dropout on
        torch.manual_seed(1)
        self.projection = torch.nn.Linear(scale.text_width, scale.t5_d_model, bias=False).to(device)
        if scale.checkpointing:
            self.clip.activation_checkpointing_enable()
        self.params = [p for p in self.clip.parameters()] + list(self.projection.parameters())
        self.optimizer = torch.optim.AdamW(self.params, lr=1e-5, weight_decay=0.1)
        self.last_token_accuracy = None

    def set_checkpointing(self, enabled: bool) -> None:
        if enabled:
            self.clip.activation_checkpointing_enable()
        else:
            self.clip.activation_checkpointing_disable()

    def _encode_text(self, ids, mask):
        pooled = self.clip.text_model(input_ids=ids, attention_mask=mask).pooler_output
        return pooled, F.normalize(self.clip.text_projection(pooled), dim=-1)

    def forward_backward(self, batch: dict) -> torch.Tensor:
        b, k = batch["pixel_values"].shape[0], self.scale.num_negatives
        scale = self.clip.logit_scale
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.scale.bf16)
        with autocast:  # pass 1: contrastive + reconstruction
            image = F.normalize(self.clip.visual_projection(
                self.clip.vision_model(pixel_values=batch["pixel_values"]).pooler_output), dim=-1)
            pooled, text = self._encode_text(batch["input_ids"], batch["attention_mask"])
            contrastive = losses.contrastive_with_negatives(image, text[:b], text[b: b * (1 + k)], scale)
            memory = self.projection(pooled[:b]).unsqueeze(1)
            out = self.t5(encoder_outputs=(memory,), labels=batch["labels"])
            logits = out.logits.float()  # kept (B×77×V fp32) for the logging metric below
            first = contrastive + 0.1 * out.loss
        first.backward()
        # pass 2, outside autocast: anchors encoded again, with the paraphrases
        _, anchors = self._encode_text(batch["anchor_ids"], batch["anchor_mask"])
        _, paraphrases = self._encode_text(batch["para_ids"], batch["para_mask"])
        (0.5 * losses.alignment(paraphrases, anchors, scale)).backward()
        valid = batch["labels"] != -100
        self.last_token_accuracy = (logits.argmax(-1)[valid] == batch["labels"][valid]).float().mean()
        del logits
        return first

    def __call__(self, batch: dict) -> float:
        first = self.forward_backward(batch)
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return first.detach()


def variant_settings(name: str, device) -> dict:
    """The ``padding_bucket`` / ``length_groups`` a variant runs with on ``device``."""
    if name in ("read-static", "read-compiled"):
        return STEP_SETTINGS["gpu"]
    if name == "read-grouped":
        return STEP_SETTINGS["cpu"]
    return STEP_SETTINGS["cpu" if torch.device(device).type == "cpu" else "gpu"]  # the device's defaults


def build_variant(name: str, scale: Scale, clip, t5, device, workdir: str):
    if name == "reference":
        return ReferenceStep(scale, clip, t5, device)
    if name not in VARIANTS + EXTRA_VARIANTS:
        raise ValueError(f"unknown variant {name!r}; the variants are {', '.join(VARIANTS + EXTRA_VARIANTS)}")
    return OurStep(scale, clip, t5, device, with_read_losses=name.startswith("read"),
                   workdir=os.path.join(workdir, name), length_groups=variant_settings(name, device)["length_groups"],
                   compile=name in COMPILED)


def batch_kind(name: str, device) -> str:
    """Which of ``make_batches``' batches a variant trains on (padded as its settings say)."""
    if name == "reference":
        return name
    longest = variant_settings(name, device)["padding_bucket"] == 0
    if name == "negclip":
        return "negclip-longest" if longest else "negclip"
    return "read-grouped" if longest else "read"


def to_device(batch: dict, device) -> dict:
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
