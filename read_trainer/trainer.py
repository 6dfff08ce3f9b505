"""ReadTrainer: `transformers.Trainer` with READ's loss, logging, saving and resume.

One forward, one backward: ``compute_loss`` runs the model once (images, all texts in
one pass, the frozen decoder) and returns L_con + λ_rec·L_rec + λ_align·L_align;
Trainer does the single backward (so every term is inside autocast and, under DDP,
all-reduced). With ``embedding_chunk_size``, ``training_step`` trains the batch in chunks
with the same update (:mod:`read_trainer.chunking`). Checkpoints and the final export hold
a plain ``CLIPModel`` + processor.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import defaultdict
from contextlib import contextmanager

import torch
from huggingface_hub import HfApi
from transformers import AutoTokenizer, CLIPModel, CLIPProcessor, Trainer, TrainerCallback, set_seed
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, rotate_checkpoints

from . import losses
from .checkpoint import (
    HEAD_WEIGHTS_NAME,
    TRAINING_ARGS_NAME,
    clip_state_dict,
    load_checkpoint_sharded,
    shardable_logit_scale,
    write_head,
)
from .checkpoint import full_tensor as _full  # the trainer's historical private names
from .checkpoint import is_sharded as _is_sharded
from .chunking import cached_embedding_step
from .config import ReadConfig
from .data.collator import WARNINGS_KEY as COLLATOR_WARNINGS
from .data.collator import ReadCollator
from .data.loading import default_negative_generator
from .data.validation import check_dataset
from .device_settings import device_step_settings
from .modeling import ReadModel
from .nonfinite import NonFiniteGuard, assert_finite
from .output_dir import claim_output_dir, staged_export
from .preemption import PREEMPTED_EXIT_CODE, Preempted, PreemptionCallback, parse_signals
from .publish_files import LOCAL_PATHS_NAME, publishable_settings
from .run_record import (
    begin_run,
    build_record,
    check_record,
    checkpoint_run_id,
    clear_for_save,
    data_fingerprint,
    new_run_id,
    resolve_resume,
    seal_checkpoint,
    weights_hash,
)
from .step_timer import StepTimeEstimate
from .stream_resume import StreamResumeMixin
from .wise import wise_ft

logger = logging.getLogger(__name__)


class _CollatorEpoch(TrainerCallback):
    """Tells the collator the epoch, so each epoch samples anchors/negatives afresh.

    Trainer calls ``on_epoch_begin`` before it creates the epoch's DataLoader iterator,
    so (non-persistent) workers pickle the collator with the new epoch.
    """

    def __init__(self, collator):
        self.collator = collator

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.collator.epoch = int(math.floor((state.epoch or 0.0) + 1e-9))


def read_model_inputs(inputs: dict, args: ReadConfig) -> dict:
    """A collated batch as ``ReadModel.forward`` takes it under ``args`` (K set; no decoder targets at λ_rec = 0)."""
    inputs.setdefault("num_negatives", args.num_hard_negatives)
    if not args.uses_decoder:  # λ_rec = 0: the decoder does not run at all
        inputs.pop("decoder_labels", None)
        inputs.pop("decoder_input_ids", None)
    return inputs


def read_loss_options(args: ReadConfig, reconstruction_weight: float | None = None) -> dict:
    """``losses.read_loss``'s weights and alignment options from ``args``."""
    return dict(reconstruction_weight=args.reconstruction_weight if reconstruction_weight is None
                else reconstruction_weight, alignment_weight=args.alignment_weight,
                alignment_symmetric=args.alignment_symmetric,
                alignment_include_negatives=args.alignment_include_negatives)


class ReadTrainer(StreamResumeMixin, Trainer):
    """Fine-tunes CLIP with READ.

    Args:
        model: a ``ReadModel``; built from ``args`` (``ReadModel.from_config``) when ``None``.
        args: a ``ReadConfig``.
        processing_class: the ``CLIPProcessor``; loaded from ``args.model_name_or_path`` when ``None``.
        decoder_tokenizer: the T5 tokenizer; loaded from ``args.decoder_name_or_path`` when needed.
        negative_generator: ``f(caption, k) -> list[str]`` for rows without negatives. ``"auto"`` (the
            default): the package's ``HardNegativeGenerator(seed=args.seed)`` when ``num_hard_negatives > 0``
            and the train or eval dataset has no ``negatives`` column, as ``run_read.py --hard_negatives auto``
            does; ``None``: never generate (every row must carry its negatives).
        peft_config: a ``peft`` config (e.g. ``LoraConfig``) for the CLIP towers; ``args.use_peft``
            builds one from the ``lora_*`` options. Saving and pushing write the merged CLIPModel.
        Other arguments are `transformers.Trainer`'s.
    """

    def __init__(self, model: ReadModel | None = None, args: ReadConfig | None = None, data_collator=None,
                 train_dataset=None, eval_dataset=None, processing_class=None, decoder_tokenizer=None,
                 negative_generator="auto", peft_config=None, callbacks=None, **kwargs):
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
        if args.compile_towers:
            model.compile_towers()
        if processing_class is None:
            processing_class = CLIPProcessor.from_pretrained(args.model_name_or_path)
        if data_collator is None:
            if isinstance(negative_generator, str):
                if negative_generator != "auto":
                    raise ValueError(f"negative_generator={negative_generator!r}: pass a callable, 'auto' or None")
                negative_generator = default_negative_generator((train_dataset, eval_dataset),
                                                                args.num_hard_negatives, args.seed)
            if args.uses_decoder and decoder_tokenizer is None:
                decoder_tokenizer = AutoTokenizer.from_pretrained(args.decoder_name_or_path)
            data_collator = ReadCollator(
                processor=processing_class,
                decoder_tokenizer=decoder_tokenizer if args.uses_decoder else None,
                num_hard_negatives=args.num_hard_negatives,
                use_paraphrases=args.uses_paraphrases,
                paraphrase_sampling=args.paraphrase_sampling,
                negative_generator=negative_generator,
                reconstruction_target=args.reconstruction_target,
                max_text_length=args.max_text_length,
                max_target_length=args.max_target_length,
                padding_bucket=args.padding_bucket,
                decoder_start_token_id=getattr(getattr(model, "decoder_config", None), "decoder_start_token_id", None),
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

        # What every checkpoint records and a resume must match (base weights hashed untrained,
        # on the CPU, before Trainer moves the model).
        run_record = build_record(args, weights_hash(model.clip),
                                  data_fingerprint(train_dataset, getattr(data_collator, "caption_column", "captions")))

        callbacks = list(callbacks or [])
        # fp16's GradScaler skips overflowing steps itself; the guard then watches the loss only.
        self._nonfinite = NonFiniteGuard(args.nonfinite, check_gradients=not args.fp16)
        callbacks.append(self._nonfinite)
        self._preemption = PreemptionCallback(parse_signals(args.preemption_signals))
        callbacks.append(self._preemption)
        if isinstance(data_collator, ReadCollator):
            callbacks.append(_CollatorEpoch(data_collator))
        callbacks.append(StepTimeEstimate())
        super().__init__(model=model, args=args, data_collator=data_collator, train_dataset=train_dataset,
                         eval_dataset=eval_dataset, processing_class=processing_class, callbacks=callbacks, **kwargs)
        # Our loss is a mean computed here, not a sum Trainer should normalise.
        self.model_accepts_loss_kwargs = False
        # ``decoder_labels`` are inputs, not prediction targets.
        self.label_names = []
        self._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
        if self.is_fsdp_enabled:
            shardable_logit_scale(self.model)
        if args.embedding_chunk_size and self.is_deepspeed_enabled:
            # DeepSpeed's engine counts one backward per micro-batch; a chunked step runs several.
            raise ValueError("embedding_chunk_size is not supported under DeepSpeed; use DDP or FSDP, "
                             "or set embedding_chunk_size 0")
        self._saving_checkpoint = False
        self._filter_logged_losses: bool | None = None  # set while train() runs (see _loss_filter_on_device)
        self._logged_sum = None
        # Dataset names for the model card (set by the recipe; hub ids only are linked).
        self.card_datasets: list[str] = []
        self.run_record = run_record
        self.run_id: str | None = None  # set by train(): the run this trainer's checkpoints belong to
        self._resumed_from: str | None = None

    # -- training ------------------------------------------------------------------------
    def train(self, resume_from_checkpoint: str | bool | None = None, trial=None, **kwargs):
        """``Trainer.train`` in a claimed output folder; ``True``/``"last"`` resume the newest
        complete checkpoint of the folder's run, and any resume is refused when the checkpoint was
        trained differently, is damaged or holds a pickle that could run code. A preemption signal
        (``preemption_signals``) saves a checkpoint at the next step end and raises ``Preempted``."""
        args: ReadConfig = self.args
        folder = resolve_resume(resume_from_checkpoint, args.output_dir, weights_only=args.resume_weights_only,
                                needs_head=self._read_model().text_to_decoder is not None)
        claim_output_dir(args.output_dir, resuming=folder is not None, overwrite=args.overwrite_output_dir,
                         is_main_process=args.process_index == 0)
        if folder is not None:
            check_record(folder, self.run_record, ignore_mismatch=args.resume_ignore_mismatch)
        # A resume continues its checkpoint's run; anything else is a new run, with one id on every process.
        self.run_id = (checkpoint_run_id(folder) if folder is not None else None) or self._new_shared_run_id()
        self._resumed_from = folder
        if args.should_save:
            begin_run(args.output_dir, self.run_record, self.run_id, new_run=folder is None,
                      overwrite=args.overwrite_output_dir)
        self._preemption.install()
        try:
            with device_step_settings(args), self._loss_filter_on_device():
                result = super().train(resume_from_checkpoint=folder, trial=trial, **kwargs)
        finally:
            self._preemption.uninstall()
        if self._preemption.stopped_at is not None:
            self._stop_preempted()
        return result

    def _new_shared_run_id(self) -> str:
        run_id = [new_run_id()]
        if self.accelerator.num_processes > 1:
            from accelerate.utils import broadcast_object_list

            broadcast_object_list(run_id, from_process=0)
        return run_id[0]

    def _stop_preempted(self) -> None:
        step = self._preemption.stopped_at
        checkpoint = os.path.join(self.args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{step}")
        message = (f"preempted by {self._preemption.received}: saved {checkpoint} at step {step} and stopped "
                   f"without exporting (exit status {PREEMPTED_EXIT_CODE}); continue with "
                   "--resume_from_checkpoint last")
        if self.is_world_process_zero():
            logger.warning(message)
        if self.accelerator.num_processes > 1:
            self.accelerator.end_training()  # leave the process group before the interpreter exits
        raise Preempted(message)

    @contextmanager
    def _loss_filter_on_device(self):
        """Trainer's ``logging_nan_inf_filter`` reads every micro-batch's loss back from the device
        (two host syncs per step); during training ``training_step`` applies it on the device."""
        self._filter_logged_losses, self._logged_sum = self.args.logging_nan_inf_filter, None
        self.args.logging_nan_inf_filter = False
        try:
            yield
        finally:
            self.args.logging_nan_inf_filter = self._filter_logged_losses
            self._filter_logged_losses = None

    def _user_loss_filter(self) -> bool:
        """``logging_nan_inf_filter`` as the user set it, also while training holds Trainer's off."""
        return self.args.logging_nan_inf_filter if self._filter_logged_losses is None else self._filter_logged_losses

    def training_step(self, model, inputs, num_items_in_batch=None):
        row_ids = inputs.pop("row_ids", None)  # for error messages; the model does not take them
        self._show_collator_warnings(inputs)
        chunk = self.args.embedding_chunk_size
        if chunk and inputs["pixel_values"].shape[0] > chunk:
            loss = self._chunked_training_step(model, inputs)
        else:
            loss = super().training_step(model, inputs, num_items_in_batch)
        self._nonfinite.check_loss(loss, self.state.global_step + 1, self._latest_loss_components, row_ids)
        if self._filter_logged_losses:
            loss = self._finite_for_logging(loss)
        return loss

    def _finite_for_logging(self, loss: torch.Tensor) -> torch.Tensor:
        """What Trainer's ``logging_nan_inf_filter`` adds to the logged loss for this micro-batch.

        A non-finite loss counts as the mean of the losses since the last log (Trainer's rule:
        the running sum over ``1 + steps since the last log``), picked with ``torch.where`` on
        the device instead of read back. The update itself is the guard's business
        (``--nonfinite``). Trainer sums what this returns and resets the sum when it logs.
        """
        last_logged = getattr(self, "_globalstep_last_logged", 0)
        if self._logged_sum is None or self._logged_sum[0] != last_logged:
            self._logged_sum = (last_logged, torch.zeros((), dtype=torch.float32, device=loss.device))
        total = self._logged_sum[1]
        fallback = total / (1 + self.state.global_step - last_logged)
        loss = torch.where(torch.isfinite(loss), loss, fallback.to(loss.dtype))
        self._logged_sum = (last_logged, total + loss)
        return loss

    def _show_collator_warnings(self, inputs: dict) -> None:
        warnings = inputs.pop(COLLATOR_WARNINGS, None)
        if warnings and isinstance(self.data_collator, ReadCollator):
            self.data_collator.show_warnings(warnings)

    def _chunked_training_step(self, model, inputs) -> torch.Tensor:
        """``Trainer.training_step`` with the batch trained in chunks (``embedding_chunk_size``).

        The same update as the one-shot step (see :mod:`read_trainer.chunking`); every
        backward goes through ``accelerator.backward`` divided by the accumulation steps as
        Trainer does it, and all but the last inside ``accelerator.no_sync``.
        """
        args: ReadConfig = self.args
        model.train()
        if hasattr(self.optimizer, "train") and callable(self.optimizer.train):
            self.optimizer.train()
        inputs = self._read_inputs(self._prepare_inputs(inputs))
        accumulation = getattr(self, "current_gradient_accumulation_steps", 1)
        step = cached_embedding_step(
            model, inputs, args.embedding_chunk_size,
            embedding_loss=lambda output: self._read_loss(output, reconstruction_weight=0.0),
            reconstruction_weight=args.reconstruction_weight,
            backward=lambda loss: self.accelerator.backward(loss / accumulation),
            across_processes=self._across_processes,
            no_sync=lambda: self.accelerator.no_sync(model),
            forward_context=self.compute_loss_context_manager,
        )
        self._record_metrics("train", step.components, step.logit_scale)
        return step.total / accumulation

    def _latest_loss_components(self) -> dict[str, float]:
        return {name.split("/", 1)[-1]: float(values[-1]) for name, values in self._metrics["train"].items()
                if name.startswith("loss/") and values}

    # -- data ----------------------------------------------------------------------------
    def _set_signature_columns_if_needed(self):
        # Raw images and caption lists are what the collator reads: keep them through
        # ``remove_unused_columns`` although ReadModel.forward does not name them.
        if self._signature_columns is None:
            collator = self.data_collator
            self._signature_columns = list(collator.columns) if hasattr(collator, "columns") else ["image", "captions"]

    # -- loss ----------------------------------------------------------------------------
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(**self._read_inputs(inputs))
        total, components = self._read_loss(outputs)
        self._record_metrics("train" if model.training else "eval", components, outputs.logit_scale)
        return (total, outputs) if return_outputs else total

    def _read_inputs(self, inputs: dict) -> dict:
        return read_model_inputs(inputs, self.args)

    @property
    def _across_processes(self) -> bool:
        return self.args.gather_across_processes and self.accelerator.num_processes > 1

    def _read_loss(self, outputs, reconstruction_weight: float | None = None):
        return losses.read_loss(outputs, **read_loss_options(self.args, reconstruction_weight),
                                across_processes=self._across_processes)

    def _record_metrics(self, mode: str, components: dict, logit_scale: torch.Tensor) -> None:
        for name, value in components.items():
            self._metrics[mode][f"loss/{name}"].append(value.detach())
        self._metrics[mode]["logit_scale"].append(logit_scale.detach().exp())

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs.pop("row_ids", None)
        self._show_collator_warnings(inputs)
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
        # Trainer's filter of non-finite eval losses as the user set it (training turns it off, see train()).
        filtering, self.args.logging_nan_inf_filter = self.args.logging_nan_inf_filter, self._user_loss_filter()
        try:
            with self._fixed_eval_sampling():
                return super().evaluate(*args, **kwargs)
        finally:
            self.args.logging_nan_inf_filter = filtering

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
        if mode == "train":
            logs.update(self._nonfinite.log_fields())
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
        model = self._read_model()
        clip_state = None
        if state_dict and not model.is_peft:  # FSDP / DeepSpeed hand us the gathered full state dict
            clip_state = clip_state_dict(state_dict)
        clip = model.export_clip()
        final = not self._saving_checkpoint
        if final and self.args.wise_alpha < 1.0:
            clip = wise_ft(CLIPModel.from_pretrained(self.args.model_name_or_path), clip, self.args.wise_alpha)
            clip_state = None
        # Before any file is written: a diverged model is never saved over a good one.
        assert_finite(clip_state if clip_state is not None else clip.state_dict(), f"save the model to {output_dir}")
        os.makedirs(output_dir, exist_ok=True)
        if final:
            # The export is written aside and moved into place complete (a kill keeps the old one).
            with staged_export(output_dir) as staging:
                self._write_export(model, clip, clip_state, staging, final)
        else:
            self._write_export(model, clip, clip_state, output_dir, final)

    def _write_export(self, model: ReadModel, clip: CLIPModel, clip_state, output_dir: str, final: bool) -> None:
        clip.save_pretrained(output_dir, state_dict=clip_state)
        if final and self.args.save_adapter and model.is_peft:
            model.clip.save_pretrained(os.path.join(output_dir, "adapter"))
        if self.processing_class is not None:
            self.processing_class.save_pretrained(output_dir)
        # JSON, with hub tokens redacted by TrainingArguments.to_json_string, instead of
        # Trainer's pickled training_args.bin (which would carry a token verbatim); local
        # paths reduced to their last component (they would leak the machine's layout), and
        # which model settings were local folders. Their full paths stay in a file that is
        # never uploaded, so this machine can still load the base (``hub.base_model_of``).
        settings = json.loads(self.args.to_json_string())
        # As the user set it (training applies it on the device and turns Trainer's own check off).
        settings["logging_nan_inf_filter"] = self._user_loss_filter()
        published, local = publishable_settings(settings)
        with open(os.path.join(output_dir, TRAINING_ARGS_NAME), "w", encoding="utf-8") as f:
            json.dump(published, f, indent=2, sort_keys=True)
        with open(os.path.join(output_dir, LOCAL_PATHS_NAME), "w", encoding="utf-8") as f:
            json.dump(local, f, indent=2, sort_keys=True)  # {} too: replaces an earlier export's

    def _save_checkpoint(self, model, trial):
        # A diverged model is not saved: save_total_limit would otherwise rotate good checkpoints out.
        # Under FSDP2 the head is sharded: every process helps assemble it, the main one writes.
        head = {name: _full(value) for name, value in self._read_model().head_state_dict().items()}
        trained = ((n, p) for n, p in self._read_model().named_parameters() if p.requires_grad)
        assert_finite(trained, f"save checkpoint-{self.state.global_step}")
        run_dir = self._get_output_dir(trial=trial)
        folder = os.path.join(run_dir, f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
        if self.args.should_save:
            clear_for_save(folder, self._resumed_from)
        self.accelerator.wait_for_everyone()  # cleared before any process writes its files into it
        if self.args.should_save:
            os.makedirs(folder, exist_ok=True)
            write_head(head, os.path.join(folder, HEAD_WEIGHTS_NAME))
        # Trainer rotates old checkpoints out at the end of its save: here that waits until this
        # one is sealed, so a kill in between never leaves fewer complete checkpoints than asked for.
        limit, self.args.save_total_limit = self.args.save_total_limit, None
        self._saving_checkpoint = True
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self._saving_checkpoint = False
            self.args.save_total_limit = limit
        self.accelerator.wait_for_everyone()  # every process's RNG and stream state is written
        if self.args.should_save:
            # Written last, with every file's size and hash: the checkpoint is complete from here on.
            seal_checkpoint(folder, self.run_record, self.run_id or new_run_id())
            rotate_checkpoints(output_dir=run_dir, save_total_limit=limit,
                               best_model_checkpoint=self.state.best_model_checkpoint, use_mtime=True)

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
        from .publish_files import allowed_files

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
            allow_patterns=allowed_files(self.args.output_dir), run_as_future=not blocking,
        )

    def _push_from_checkpoint(self, checkpoint_folder: str) -> None:
        """``hub_strategy='every_save'``: push the checkpoint's CLIPModel files, never its training state."""
        from transformers.trainer import PushInProgress

        from .publish_files import allowed_files

        if not self.is_world_process_zero() or str(self.args.hub_strategy).split(".")[-1].lower() == "end":
            return
        if not self.args.hub_always_push and self.push_in_progress is not None and not self.push_in_progress.is_done():
            return
        job = HfApi(token=self.args.hub_token).upload_folder(
            repo_id=self.hub_model_id, folder_path=checkpoint_folder,
            commit_message=f"Training in progress, step {self.state.global_step}", revision=self.args.hub_revision,
            allow_patterns=allowed_files(checkpoint_folder, include_card=False), run_as_future=True,
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
