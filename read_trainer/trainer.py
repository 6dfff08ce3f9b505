"""ReadTrainer: `transformers.Trainer` with READ's loss, logging, saving and resume.

One forward, one backward: ``compute_loss`` runs the model once (images, all texts in
one pass, the frozen decoder) and returns L_con + λ_rec·L_rec + λ_align·L_align;
Trainer does the single backward (so every term is inside autocast and, under DDP,
all-reduced). Checkpoints and the final export hold a plain ``CLIPModel`` + processor.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from contextlib import contextmanager

import torch
from huggingface_hub import HfApi
from safetensors.torch import save_file
from transformers import AutoTokenizer, CLIPModel, CLIPProcessor, Trainer, TrainerCallback, set_seed
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from . import losses
from .config import ReadConfig
from .data.collator import ReadCollator
from .data.validation import check_dataset
from .modeling import ReadModel
from .stream_resume import StreamResumeMixin
from .wise import wise_ft

HEAD_WEIGHTS_NAME = "read_head.safetensors"
TRAINING_ARGS_NAME = "read_training_args.json"


def _full(tensor: torch.Tensor) -> torch.Tensor:
    """A parameter's whole value. FSDP2 shards parameters as DTensors: assembling one is a
    collective, so every process must call this, not only the one that writes."""
    from torch.distributed.tensor import DTensor

    return tensor.full_tensor() if isinstance(tensor, DTensor) else tensor


def _is_sharded(model: torch.nn.Module) -> bool:
    from torch.distributed.tensor import DTensor

    return any(isinstance(p, DTensor) for p in model.parameters())


def shardable_logit_scale(model: ReadModel) -> None:
    """Make CLIP's logit scale a 1-element vector: FSDP (1 and 2) cannot shard 0-dim parameters.

    The losses broadcast it either way; ``clip_state_dict`` turns it back into CLIP's
    scalar for every export and checkpoint, and ``load_checkpoint_sharded`` reads it back.
    """
    clip = model.clip.get_base_model() if model.is_peft else model.clip
    if clip.logit_scale.dim() == 0:
        clip.logit_scale = torch.nn.Parameter(clip.logit_scale.detach().reshape(1))


def clip_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The ``CLIPModel`` part of a full ReadModel state dict (FSDP/DeepSpeed hand one to ``_save``)."""
    state = {k[len("clip."):]: v for k, v in state_dict.items() if k.startswith("clip.")}
    if "logit_scale" in state:
        state["logit_scale"] = state["logit_scale"].reshape(())  # see shardable_logit_scale
    return state


def load_checkpoint_sharded(model: ReadModel, folder: str, head_file: str = HEAD_WEIGHTS_NAME) -> None:
    """``ReadModel.load_checkpoint`` for a model sharded by FSDP2 (parameters are DTensors).

    ``load_state_dict`` cannot copy full tensors into shards; ``set_model_state_dict`` with
    a full state dict keeps each process's shard of it. Every process reads the files.
    As strict as ``load_checkpoint``: a resume that loads nothing would silently train
    from the base model. The frozen decoder is not in our checkpoints (it comes from its
    own checkpoint, unchanged by training).
    """
    from safetensors.torch import load_file
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    if model.is_peft:
        raise NotImplementedError("resuming a LoRA run under FSDP is not supported; use DDP or DeepSpeed")
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.isfile(os.path.join(folder, "model.safetensors")):
        files = ["model.safetensors"]
    elif os.path.isfile(index):
        with open(index, encoding="utf-8") as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        raise FileNotFoundError(f"no CLIP weights (model.safetensors) in checkpoint {folder!r}")
    state = {}
    for name in files:
        state.update({"clip." + k: v for k, v in load_file(os.path.join(folder, name)).items()})
    if "clip.logit_scale" in state:  # a scalar in the file, maybe a vector in the model (FSDP)
        state["clip.logit_scale"] = state["clip.logit_scale"].reshape(model.clip.logit_scale.shape)
    head_path = os.path.join(folder, head_file)
    if model.text_to_decoder is not None:
        if not os.path.isfile(head_path):
            raise FileNotFoundError(f"checkpoint {folder!r} has no {head_file} (the decoder projection)")
        state.update(load_file(head_path))
    result = set_model_state_dict(model, state, options=StateDictOptions(full_state_dict=True, strict=False))
    missing = [k for k in result.missing_keys
               if not k.startswith(("decoder.", "lm_head.")) and not k.endswith("position_ids")]
    if missing or result.unexpected_keys:
        raise RuntimeError(f"checkpoint {folder!r} does not match the model: missing {missing[:5]}, "
                           f"unexpected {list(result.unexpected_keys)[:5]}")


class _CollatorEpoch(TrainerCallback):
    """Tells the collator the epoch, so each epoch samples anchors/negatives afresh.

    Trainer calls ``on_epoch_begin`` before it creates the epoch's DataLoader iterator,
    so (non-persistent) workers pickle the collator with the new epoch.
    """

    def __init__(self, collator):
        self.collator = collator

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.collator.epoch = int(math.floor((state.epoch or 0.0) + 1e-9))


class ReadTrainer(StreamResumeMixin, Trainer):
    """Fine-tunes CLIP with READ.

    Args:
        model: a ``ReadModel``; built from ``args`` (``ReadModel.from_config``) when ``None``.
        args: a ``ReadConfig``.
        processing_class: the ``CLIPProcessor``; loaded from ``args.model_name_or_path`` when ``None``.
        decoder_tokenizer: the T5 tokenizer; loaded from ``args.decoder_name_or_path`` when needed.
        negative_generator: ``f(caption, k) -> list[str]`` for rows without a negatives column.
        peft_config: a ``peft`` config (e.g. ``LoraConfig``) for the CLIP towers; ``args.use_peft``
            builds one from the ``lora_*`` options. Saving and pushing write the merged CLIPModel.
        Other arguments are `transformers.Trainer`'s.
    """

    def __init__(self, model: ReadModel | None = None, args: ReadConfig | None = None, data_collator=None,
                 train_dataset=None, eval_dataset=None, processing_class=None, decoder_tokenizer=None,
                 negative_generator=None, peft_config=None, callbacks=None, **kwargs):
        args = args if args is not None else ReadConfig(output_dir="read_output")
        if not isinstance(args, ReadConfig):
            raise TypeError(f"ReadTrainer needs a ReadConfig, got {type(args).__name__}")
        if model is None:
            # Seed before building: the projection to the decoder is freshly initialised.
            set_seed(args.seed)
            model = ReadModel.from_config(args)
        if args.uses_decoder and model.decoder is None:
            raise ValueError("reconstruction_weight > 0 but the model has no decoder; build it with a decoder id")
        if args.push_to_hub and str(args.hub_strategy).split(".")[-1].lower() in ("checkpoint", "all_checkpoints"):
            # Those strategies upload optimizer state and the decoder projection for hub resume.
            raise ValueError("hub_strategy 'checkpoint'/'all_checkpoints' would upload training state; "
                             "use 'end' or 'every_save' (only the plain CLIPModel is pushed)")
        if peft_config is None and args.use_peft:
            peft_config = args.lora_config()
        if peft_config is not None and not model.is_peft:
            model.apply_peft(peft_config)
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

        if args.ddp_find_unused_parameters is None:
            # Trainer's default for a model that is not a PreTrainedModel is True: DDP then walks
            # the autograd graph after every forward. Every trainable parameter of a ReadModel
            # gets a gradient in every step (CLIP's towers, projections and logit scale; the
            # decoder projection whenever reconstruction runs), so the search finds nothing.
            args.ddp_find_unused_parameters = getattr(model, "text_to_decoder", None) is not None \
                and not args.uses_decoder

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
        if self.is_fsdp_enabled:
            shardable_logit_scale(self.model)
        self._saving_checkpoint = False
        # Dataset names for the model card (set by the recipe; hub ids only are linked).
        self.card_datasets: list[str] = []

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
        # Global-batch losses across processes (DDP/FSDP/DeepSpeed): every process sees every
        # image, anchor, negative and paraphrase, so L_con and L_align are the combined-batch
        # losses, and the update equals one process on the combined batch (see losses.py).
        across = args.gather_across_processes and self.accelerator.num_processes > 1
        if across:
            images, anchors, negatives, paraphrases = losses.gather_with_grad([images, anchors, negatives, paraphrases])

        contrastive = losses.contrastive_with_negatives(images, anchors, negatives if k else None, outputs.logit_scale)
        total = contrastive
        components = {"contrastive": contrastive}
        if args.uses_decoder:
            reconstruction = logged = outputs.reconstruction_loss
            if across:
                # T5's loss is this process's token mean; weight it so the averaged update is
                # the combined batch's token mean, and log that global mean.
                tokens = (inputs["decoder_labels"] != -100).sum()
                reconstruction, logged = losses.token_mean_over_processes(reconstruction, tokens)
            components["reconstruction"] = logged
            total = total + args.reconstruction_weight * reconstruction
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
        # Trainer's training logs carry "loss", its evaluation logs "eval_*"; anything else
        # (e.g. benchmark results logged by a callback) gets no loss components merged in.
        if "loss" in logs:
            mode = "train"
        elif any(key.startswith("eval_") for key in logs):
            mode = "eval"
        else:
            super().log(logs, start_time)
            return
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
        """Write a plain ``CLIPModel`` + processor: no decoder, no projection.

        A final export (not a checkpoint) also applies ``wise_alpha`` and, with
        ``save_adapter``, writes the unmerged LoRA adapter to ``adapter/``.
        """
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if not self.args.should_save:
            return
        os.makedirs(output_dir, exist_ok=True)
        model = self._read_model()
        clip_state = None
        if state_dict and not model.is_peft:  # FSDP / DeepSpeed hand us the gathered full state dict
            clip_state = clip_state_dict(state_dict)
        clip = model.export_clip()
        final = not self._saving_checkpoint
        if final and self.args.wise_alpha < 1.0:
            clip = wise_ft(CLIPModel.from_pretrained(self.args.model_name_or_path), clip, self.args.wise_alpha)
            clip_state = None
        clip.save_pretrained(output_dir, state_dict=clip_state)
        if final and self.args.save_adapter and model.is_peft:
            model.clip.save_pretrained(os.path.join(output_dir, "adapter"))
        if self.processing_class is not None:
            self.processing_class.save_pretrained(output_dir)
        # JSON, with hub tokens redacted by TrainingArguments.to_json_string, instead of
        # Trainer's pickled training_args.bin (which would carry a token verbatim).
        with open(os.path.join(output_dir, TRAINING_ARGS_NAME), "w", encoding="utf-8") as f:
            f.write(self.args.to_json_string())

    def _save_checkpoint(self, model, trial):
        # The projection goes in first: Trainer writes trainer_state.json last, so a
        # checkpoint that has it is complete even if the process dies right after.
        # Under FSDP2 it is sharded: every process helps assemble it, the main one writes.
        head = {name: _full(value) for name, value in self._read_model().head_state_dict().items()}
        if self.args.should_save:
            folder = os.path.join(self._get_output_dir(trial=trial), f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
            os.makedirs(folder, exist_ok=True)
            if head:
                save_file({k: v.detach().cpu().contiguous() for k, v in head.items()},
                          os.path.join(folder, HEAD_WEIGHTS_NAME), metadata={"format": "pt"})
        self._saving_checkpoint = True
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self._saving_checkpoint = False

    # -- publishing ----------------------------------------------------------------------
    def create_model_card(self, model_name: str | None = None, dataset_name: str | list[str] | None = None,
                          **kwargs) -> None:
        """Write ``README.md`` (a ``huggingface_hub.ModelCard``) into ``output_dir``."""
        if not self.is_world_process_zero():
            return
        from .hub import build_model_card

        eval_results, table = None, None
        for callback in self.callback_handler.callbacks:
            if getattr(callback, "latest", None):
                from .evaluation.report import markdown_report, model_card_eval_results

                eval_results = model_card_eval_results(callback.latest)
                table = markdown_report({"this model": callback.latest})
        datasets = [dataset_name] if isinstance(dataset_name, str) else list(dataset_name or self.card_datasets)
        card = build_model_card(
            model_id=self.hub_model_id or model_name or os.path.basename(os.path.abspath(self.args.output_dir)),
            base_model=self.args.model_name_or_path, training_args=self.args.to_dict(), datasets=datasets,
            eval_results=eval_results, results_markdown=table,
        )
        card.save(os.path.join(self.args.output_dir, "README.md"))

    def push_to_hub(self, commit_message: str | None = "End of training", blocking: bool = True,
                    token: str | None = None, revision: str | None = None, private: bool | None = None, **kwargs):
        """Upload the plain CLIPModel, processor and model card to ``hub_model_id`` (nothing else)."""
        from .hub import HUB_ALLOW_PATTERNS

        token = token if token is not None else self.args.hub_token
        if self.hub_model_id is None:
            self.init_hf_repo(token=token, private=private)
        self.save_model(_internal_call=True)
        if not self.is_world_process_zero():
            return None
        self.create_model_card(**kwargs)
        self._finish_current_push()
        return HfApi(token=token).upload_folder(
            repo_id=self.hub_model_id, folder_path=self.args.output_dir, commit_message=commit_message,
            revision=revision if revision is not None else self.args.hub_revision,
            allow_patterns=HUB_ALLOW_PATTERNS, run_as_future=not blocking,
        )

    def _push_from_checkpoint(self, checkpoint_folder: str) -> None:
        """``hub_strategy='every_save'``: push the checkpoint's CLIPModel files, never its training state."""
        from transformers.trainer import PushInProgress

        from .hub import HUB_ALLOW_PATTERNS

        if not self.is_world_process_zero() or str(self.args.hub_strategy).split(".")[-1].lower() == "end":
            return
        if not self.args.hub_always_push and self.push_in_progress is not None and not self.push_in_progress.is_done():
            return
        job = HfApi(token=self.args.hub_token).upload_folder(
            repo_id=self.hub_model_id, folder_path=checkpoint_folder,
            commit_message=f"Training in progress, step {self.state.global_step}", revision=self.args.hub_revision,
            allow_patterns=[p for p in HUB_ALLOW_PATTERNS if p != "README.md"], run_as_future=True,
        )
        self.push_in_progress = PushInProgress([job])

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        target = self.accelerator.unwrap_model(model if model is not None else self.model)
        if _is_sharded(target):  # FSDP2: Trainer calls this with the sharded model
            load_checkpoint_sharded(target, resume_from_checkpoint)
        else:
            target.load_checkpoint(resume_from_checkpoint, head_file=HEAD_WEIGHTS_NAME)

    def _load_best_model(self) -> None:
        model = self._read_model()
        if _is_sharded(model):
            load_checkpoint_sharded(model, self.state.best_model_checkpoint)
        else:
            model.load_checkpoint(self.state.best_model_checkpoint, head_file=HEAD_WEIGHTS_NAME)
