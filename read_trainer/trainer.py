"""ReadTrainer: `transformers.Trainer` with READ's loss, logging, saving and resume.

One forward, one backward: ``compute_loss`` runs the model once (images, all texts in
one pass, the frozen decoder) and returns L_con + λ_rec·L_rec + λ_align·L_align;
Trainer does the single backward (so every term is inside autocast and, under DDP,
all-reduced). Checkpoints and the final export hold a plain ``CLIPModel`` + processor.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from contextlib import contextmanager

import torch
from transformers import AutoTokenizer, CLIPProcessor, Trainer, TrainerCallback, set_seed
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from . import losses
from .config import ReadConfig
from .data.collator import ReadCollator
from .data.validation import check_dataset
from .modeling import ReadModel

HEAD_WEIGHTS_NAME = "read_head.safetensors"
TRAINING_ARGS_NAME = "read_training_args.json"


class _CollatorEpoch(TrainerCallback):
    """Tells the collator the epoch, so each epoch samples anchors/negatives afresh.

    Trainer calls ``on_epoch_begin`` before it creates the epoch's DataLoader iterator,
    so (non-persistent) workers pickle the collator with the new epoch.
    """

    def __init__(self, collator):
        self.collator = collator

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.collator.epoch = int(math.floor((state.epoch or 0.0) + 1e-9))


class ReadTrainer(Trainer):
    """Fine-tunes CLIP with READ.

    Args:
        model: a ``ReadModel``; built from ``args`` (``ReadModel.from_config``) when ``None``.
        args: a ``ReadConfig``.
        processing_class: the ``CLIPProcessor``; loaded from ``args.model_name_or_path`` when ``None``.
        decoder_tokenizer: the T5 tokenizer; loaded from ``args.decoder_name_or_path`` when needed.
        negative_generator: ``f(caption, k) -> list[str]`` for rows without a negatives column.
        Other arguments are `transformers.Trainer`'s.
    """

    def __init__(self, model: ReadModel | None = None, args: ReadConfig | None = None, data_collator=None,
                 train_dataset=None, eval_dataset=None, processing_class=None, decoder_tokenizer=None,
                 negative_generator=None, callbacks=None, **kwargs):
        args = args if args is not None else ReadConfig(output_dir="read_output")
        if not isinstance(args, ReadConfig):
            raise TypeError(f"ReadTrainer needs a ReadConfig, got {type(args).__name__}")
        if model is None:
            # Seed before building: the projection to the decoder is freshly initialised.
            set_seed(args.seed)
            model = ReadModel.from_config(args)
        if args.uses_decoder and model.decoder is None:
            raise ValueError("reconstruction_weight > 0 but the model has no decoder; build it with a decoder id")
        if processing_class is None:
            processing_class = CLIPProcessor.from_pretrained(args.model_name_or_path)
        if data_collator is None:
            if args.uses_decoder and decoder_tokenizer is None:
                decoder_tokenizer = AutoTokenizer.from_pretrained(args.decoder_name_or_path)
            data_collator = ReadCollator(
                processor=processing_class,
                decoder_tokenizer=decoder_tokenizer if args.uses_decoder else None,
                num_hard_negatives=args.num_hard_negatives,
                use_paraphrases=args.uses_paraphrases,
                negative_generator=negative_generator,
                reconstruction_target=args.reconstruction_target,
                max_text_length=args.max_text_length,
                max_target_length=args.max_target_length,
                seed=args.seed,
            )
        # Fail before the first optimizer step, not hours into training.
        for split, dataset in (("train", train_dataset), ("eval", eval_dataset)):
            if dataset is not None and isinstance(data_collator, ReadCollator):
                check_dataset(dataset, data_collator, split=split)

        callbacks = list(callbacks or [])
        if isinstance(data_collator, ReadCollator):
            callbacks.append(_CollatorEpoch(data_collator))
        super().__init__(model=model, args=args, data_collator=data_collator, train_dataset=train_dataset,
                         eval_dataset=eval_dataset, processing_class=processing_class, callbacks=callbacks, **kwargs)
        # Our loss is a mean computed here, not a sum Trainer should normalise.
        self.model_accepts_loss_kwargs = False
        # ``decoder_labels`` are inputs, not prediction targets.
        self.label_names = []
        self._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}

    # -- data ----------------------------------------------------------------------------
    def _set_signature_columns_if_needed(self):
        # Raw images and caption lists are what the collator reads: keep them through
        # ``remove_unused_columns`` although ReadModel.forward does not name them.
        if self._signature_columns is None:
            collator = self.data_collator
            self._signature_columns = list(collator.columns) if hasattr(collator, "columns") else ["image", "captions"]

    # -- loss ----------------------------------------------------------------------------
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        args: ReadConfig = self.args
        k = int(inputs.pop("num_negatives", args.num_hard_negatives))
        if not args.uses_decoder:
            inputs.pop("decoder_labels", None)  # λ_rec = 0: the decoder does not run at all
        outputs = model(**inputs)
        batch = outputs.image_embeds.shape[0]
        texts = outputs.text_embeds
        anchors, negatives = texts[:batch], texts[batch: batch * (1 + k)]
        paraphrases = texts[batch * (1 + k):]

        images = outputs.image_embeds
        if args.gather_across_processes and self.accelerator.num_processes > 1:
            images, anchors, negatives, paraphrases = (
                losses.gather_with_grad(t) for t in (images, anchors, negatives, paraphrases)
            )

        contrastive = losses.contrastive_with_negatives(images, anchors, negatives if k else None, outputs.logit_scale)
        total = contrastive
        components = {"contrastive": contrastive}
        if args.uses_decoder:
            components["reconstruction"] = outputs.reconstruction_loss
            total = total + args.reconstruction_weight * outputs.reconstruction_loss
        if args.uses_paraphrases:
            if paraphrases.shape[0] != anchors.shape[0]:
                raise ValueError(f"alignment needs one paraphrase per anchor, got {paraphrases.shape[0]} for "
                                 f"{anchors.shape[0]} anchors")
            alignment = losses.alignment(
                paraphrases, anchors, outputs.logit_scale, symmetric=args.alignment_symmetric,
                negative_embeds=negatives if args.alignment_include_negatives and k else None,
            )
            components["alignment"] = alignment
            total = total + args.alignment_weight * alignment

        mode = "train" if model.training else "eval"
        for name, value in components.items():
            self._metrics[mode][f"loss/{name}"].append(value.detach())
        self._metrics[mode]["logit_scale"].append(outputs.logit_scale.detach().exp())
        return (total, outputs) if return_outputs else total

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

    @contextmanager
    def _fixed_eval_sampling(self):
        # Evaluation draws the same anchors/negatives whatever the training epoch, so
        # eval losses are comparable across epochs.
        collator = self.data_collator
        epoch = getattr(collator, "epoch", None)
        if epoch is not None:
            collator.epoch = 0
        try:
            yield
        finally:
            if epoch is not None:
                collator.epoch = epoch

    def evaluate(self, *args, **kwargs):
        with self._fixed_eval_sampling():
            return super().evaluate(*args, **kwargs)

    # -- logging -------------------------------------------------------------------------
    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        mode = "eval" if any(key.startswith("eval_") for key in logs) else "train"
        prefix = "eval_" if mode == "eval" else ""
        for name, values in self._metrics[mode].items():
            if not values:
                continue
            mean = torch.stack([v.float() for v in values]).mean()
            if self.accelerator.num_processes > 1:
                mean = self.accelerator.reduce(mean.to(self.accelerator.device), reduction="mean")
            logs[prefix + name] = round(mean.item(), 6)
        self._metrics[mode].clear()
        super().log(logs, start_time)

    # -- saving and resume ---------------------------------------------------------------
    def _read_model(self) -> ReadModel:
        return self.accelerator.unwrap_model(self.model, keep_torch_compile=False)

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        """Write a plain ``CLIPModel`` + processor: no decoder, no projection."""
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if not self.args.should_save:
            return
        os.makedirs(output_dir, exist_ok=True)
        clip_state = None
        if state_dict:  # FSDP / DeepSpeed hand us the gathered full state dict
            clip_state = {k[len("clip."):]: v for k, v in state_dict.items() if k.startswith("clip.")}
        self._read_model().export_clip().save_pretrained(output_dir, state_dict=clip_state)
        if self.processing_class is not None:
            self.processing_class.save_pretrained(output_dir)
        # JSON, with hub tokens redacted by TrainingArguments.to_json_string, instead of
        # Trainer's pickled training_args.bin (which would carry a token verbatim).
        with open(os.path.join(output_dir, TRAINING_ARGS_NAME), "w", encoding="utf-8") as f:
            f.write(self.args.to_json_string())

    def _save_checkpoint(self, model, trial):
        # The projection goes in first: Trainer writes trainer_state.json last, so a
        # checkpoint that has it is complete even if the process dies right after.
        if self.args.should_save:
            folder = os.path.join(self._get_output_dir(trial=trial), f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
            os.makedirs(folder, exist_ok=True)
            self._read_model().save_head(os.path.join(folder, HEAD_WEIGHTS_NAME))
        super()._save_checkpoint(model, trial)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        target = self.accelerator.unwrap_model(model if model is not None else self.model)
        target.load_checkpoint(resume_from_checkpoint, head_file=HEAD_WEIGHTS_NAME)

    def _load_best_model(self) -> None:
        self._read_model().load_checkpoint(self.state.best_model_checkpoint, head_file=HEAD_WEIGHTS_NAME)
