"""Configuration: the READ knobs on top of `transformers.TrainingArguments`.

Defaults reproduce the reference recipe (ViT-B/32 + T5-v1.1-large, AdamW lr 1e-5,
weight decay 0.1, cosine schedule with 50 warm-up steps, seed 2025). The two loss
weights are the method: set both to 0 and the same trainer is a NegCLIP baseline;
set ``num_hard_negatives`` to 0 as well and it is plain CLIP fine-tuning.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass, field, fields

from transformers import TrainingArguments

from .device_settings import STEP_SETTINGS, device_kind
from .preemption import parse_signals

logger = logging.getLogger(__name__)

RECONSTRUCTION_TARGETS = ("random_caption", "anchor")
PARAPHRASE_SAMPLING = ("caption", "image_pool")
# transformers 5.x renamed gradient_checkpointing to activation_checkpointing (the old name
# warns); ReadConfig accepts the new name on every supported version.
_NEWER_CHECKPOINTING_NAME = "activation_checkpointing" in {f.name for f in fields(TrainingArguments)}


def wants_resume(value) -> bool:
    """Whether a ``resume_from_checkpoint`` value asks to resume (a path, True, "True", "last")."""
    return value not in (None, False) and str(value).strip().lower() not in ("", "false", "none")


@dataclass
class ReadConfig(TrainingArguments):
    """`TrainingArguments` plus everything READ adds. Every field is a CLI flag and a YAML key."""

    _argument_group_name = "READ (the method, its defaults of Trainer options, safety)"  # its title in --help (a class attribute, not a field)

    model_name_or_path: str = field(
        default="openai/clip-vit-base-patch32",
        metadata={"help": "CLIPModel to fine-tune: a hub id or a local folder saved with save_pretrained."},
    )
    decoder_name_or_path: str = field(
        default="google/t5-v1_1-large",
        metadata={
            "help": "T5 (v1.1) checkpoint whose decoder reconstructs captions from the CLIP text embedding. "
            "Only its decoder stack and lm_head are kept, frozen. Not loaded when reconstruction_weight is 0."
        },
    )
    reconstruction_weight: float = field(
        default=0.1, metadata={"help": "λ_rec: weight of the token-level reconstruction loss (0 skips the decoder)."}
    )
    alignment_weight: float = field(
        default=0.5, metadata={"help": "λ_align: weight of the paraphrase alignment loss (0 skips paraphrases)."}
    )
    num_hard_negatives: int = field(
        default=3,
        metadata={"help": "K: hard-negative captions per anchor, added as extra image->text columns (0 = plain CLIP)."},
    )
    decoder_dropout: bool = field(
        default=True,
        metadata={
            "help": "Keep the frozen decoder's dropout active during training, as the reference run did "
            "(its decoder stayed in train mode). False puts the decoder in eval mode."
        },
    )
    reconstruction_target: str = field(
        default="random_caption",
        metadata={
            "help": "What the decoder regenerates: 'random_caption' (uniform over all human captions of the "
            "image, the anchor included, as the reference) or 'anchor' (the anchor caption itself).",
            "choices": list(RECONSTRUCTION_TARGETS),
        },
    )
    alignment_symmetric: bool = field(
        default=False,
        metadata={"help": "Also align anchor -> paraphrase (the reference uses paraphrase -> anchor only)."},
    )
    alignment_include_negatives: bool = field(
        default=False,
        metadata={"help": "Add the anchors' hard negatives as extra columns in the alignment loss."},
    )
    # Which text the alignment loss pulls the anchor towards (read_trainer/data/collator.py).
    paraphrase_sampling: str = field(
        default="caption",
        metadata={
            "help": "The alignment positive: 'caption' draws one of the anchor's own paraphrases (another human "
            "caption of the image when it has none); 'image_pool' draws uniformly from the image's other human "
            "captions plus all of its paraphrases, as the official READ collator does when its paraphrase file "
            "is found.",
            "choices": list(PARAPHRASE_SAMPLING),
        },
    )
    max_text_length: int = field(
        default=77, metadata={"help": "CLIP text length limit in tokens; longer captions are truncated."}
    )
    max_target_length: int = field(
        default=77, metadata={"help": "T5 reconstruction-target length limit in tokens (incl. </s>)."}
    )
    decoder_dtype: str = field(
        default="auto",
        metadata={
            "help": "dtype of the frozen decoder: 'auto' (bfloat16 when bf16 training, else float32), "
            "'float32' or 'bfloat16'. A frozen module gains nothing from fp32 master weights.",
            "choices": ["auto", "float32", "bfloat16"],
        },
    )
    gather_across_processes: bool = field(
        default=True,
        metadata={
            "help": "With several processes, compute the contrastive and alignment losses over the global "
            "batch (embeddings gathered from every process, gradients to the local shard) and normalise the "
            "reconstruction loss by the global token count, so N processes train exactly like one."
        },
    )
    padding_bucket: int | None = field(
        default=None,
        metadata={
            "help": "Static shapes: the collator pads texts and decoder targets to widths that are multiples of "
            "this (capped at max_text_length / max_target_length), one bucket per batch for both: the number of "
            "distinct step shapes is at most ceil(max length / padding_bucket) (5 at 77 and 16). 0 pads to the "
            "batch's longest row (a new shape nearly every step). Default: chosen by the device, 16 on a GPU "
            "(few shapes for the allocator and compiled graphs) and 0 on the CPU (fewer padded FLOPs); 16 with "
            "compile_towers."
        },
    )
    length_groups: int | None = field(
        default=None,
        metadata={
            "help": "1: encode the batch in the collator's shapes. N > 1: re-cut texts and decoder targets on the "
            "device into up to N groups of similar length (exact; fewer FLOPs, but N tower and decoder passes, "
            "host syncs and new shapes every step). Default: chosen by the device, 1 on a GPU and 4 on the CPU, "
            "where the step is compute-bound (benchmarks/README.md); 1 with compile_towers."
        },
    )
    torch_threads: int = field(
        default=0,
        metadata={
            "help": "torch CPU threads of each training process (torch.set_num_threads, for the run only). "
            "0: 1 when training on the CPU (on a machine other jobs share, a multi-threaded step waits for its "
            "slowest thread at every parallel region: one thread measured several times faster there) and "
            "torch's own default on a GPU. On an idle CPU machine, set it to its core count. Results are "
            "deterministic for a given count, not across counts."
        },
    )
    lean_decoder: bool = field(
        default=True,
        metadata={
            "help": "Run the frozen T5 decoder with the one-token cross-attention in closed form and the causal "
            "mask built once (same results as the stock decoder, fewer ops). False: the stock T5Stack.forward."
        },
    )
    compile_towers: bool = field(
        default=False,
        metadata={
            "help": "torch.compile CLIP's towers and the lean decoder (fullgraph, static shapes: one graph per "
            "padding bucket). Off by default: compile time is minutes and the gain has to be measured per "
            "machine; for CUDA graphs on top, see ReadModel.compile_towers(mode='reduce-overhead')."
        },
    )

    embedding_chunk_size: int = field(
        default=0,
        metadata={
            "help": "Train each batch in chunks of this many rows with the same update as the whole batch "
            "(cached embeddings: every chunk is encoded without grad, the contrastive and alignment losses are "
            "computed on the whole batch's embeddings, then each chunk is encoded again and back-propagated "
            "with its cached gradients and its share of the reconstruction loss). Peak activation memory is "
            "that of one chunk, for one extra no-grad forward of the towers. 0 = off; a batch of at most this many "
            "rows trains in one piece. A chunk size dividing the batch keeps the step shapes static."
        },
    )

    use_peft: bool = field(
        default=False,
        metadata={"help": "Train LoRA adapters on the CLIP towers instead of all weights; the export is the merged "
                  "plain CLIPModel. The projection to the decoder is always fully trainable."},
    )
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling numerator (scale = alpha / r)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA branch."})
    lora_towers: str = field(
        default="both",
        metadata={"help": "Which CLIP tower gets adapters: 'text', 'vision' or 'both' (module names repeat in "
                  "both towers, so the selection is by path pattern).", "choices": ["text", "vision", "both"]},
    )
    lora_target_modules: str = field(
        default="q_proj,k_proj,v_proj,out_proj",
        metadata={"help": "Comma-separated module names inside each encoder layer to adapt (e.g. add fc1,fc2)."},
    )
    save_adapter: bool = field(
        default=False, metadata={"help": "With use_peft, also write the unmerged adapter to <output_dir>/adapter."}
    )
    wise_alpha: float = field(
        default=1.0,
        metadata={"help": "WiSE-FT: the exported model is (1-alpha)·base + alpha·fine-tuned weights. 1 exports the "
                  "fine-tuned model; lower values trade compositional gains for zero-shot retention."},
    )

    # Safety: what happens on divergence, in a used output folder, on preemption and on resume (docs/safety.md).
    nonfinite: str = field(
        default="stop",
        metadata={"help": "On a non-finite loss or gradient: 'stop' raises, naming the step, the loss components "
                  "and the batch's row ids; 'skip' drops that update and counts it in the logs.",
                  "choices": ["stop", "skip"]},
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Start a new run in a non-empty output_dir: the earlier run's checkpoint-* folders are "
                  "removed before the first save (the log names them); its export is replaced by this run's."},
    )
    resume_ignore_mismatch: bool = field(
        default=False,
        metadata={"help": "Resume even if the checkpoint was trained with other settings, base weights or data "
                  "(a LoRA checkpoint onto another base is refused regardless)."},
    )
    preemption_signals: str = field(
        default="SIGTERM",
        metadata={"help": "Signals that preempt the run (comma-separated, e.g. SIGTERM,SIGUSR1; SLURM sends SIGUSR1 "
                  "ahead of the end with --signal=USR1@120): at the end of the optimizer step under way a checkpoint "
                  "is saved and the run exits with status 75, without exporting; resume it with "
                  "--resume_from_checkpoint last. 'none' leaves every signal's default (SIGTERM kills at once)."},
    )
    resume_weights_only: bool = field(
        default=False,
        metadata={"help": "Resume from a checkpoint without optimizer/scheduler state (e.g. save_only_model): "
                  "the weights continue, the optimizer and schedule start afresh."},
    )

    # Reference hyper-parameters as defaults (TrainingArguments' own defaults differ).
    learning_rate: float = field(default=1e-5, metadata={"help": "AdamW peak learning rate."})
    weight_decay: float = field(default=0.1, metadata={"help": "AdamW weight decay."})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "Learning-rate schedule."})
    warmup_steps: float = field(default=50, metadata={"help": "Linear warm-up steps (or ratio if < 1)."})
    seed: int = field(default=2025, metadata={"help": "Seed for initialisation and for the collator's sampling."})
    logging_steps: float = field(default=10, metadata={"help": "Log every N optimizer steps."})

    if not _NEWER_CHECKPOINTING_NAME:
        # Older transformers name it gradient_checkpointing only; the newer name works there too.
        activation_checkpointing: bool | None = field(
            default=None, metadata={"help": "Checkpoint CLIP's towers: recompute their activations in the backward "
                                    "(less memory, about 20%% slower).", "nargs": "?", "const": True})

    def __post_init__(self):
        if not _NEWER_CHECKPOINTING_NAME and self.activation_checkpointing:
            self.gradient_checkpointing = True
        super().__post_init__()
        # Step settings by device (read_trainer.device_settings); an explicit value is kept. Compiled
        # towers need the static shapes whatever the device (one graph per bucket).
        kind = "gpu" if self.compile_towers else device_kind(self.use_cpu)
        for name, value in STEP_SETTINGS[kind].items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        if self.reconstruction_target not in RECONSTRUCTION_TARGETS:
            raise ValueError(
                f"reconstruction_target must be one of {RECONSTRUCTION_TARGETS}, got {self.reconstruction_target!r}"
            )
        if self.paraphrase_sampling not in PARAPHRASE_SAMPLING:
            raise ValueError(f"paraphrase_sampling must be one of {PARAPHRASE_SAMPLING}, got {self.paraphrase_sampling!r}")
        for name in ("reconstruction_weight", "alignment_weight", "num_hard_negatives"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        check_values(self)
        if not 0.0 <= self.wise_alpha <= 1.0:
            raise ValueError(f"wise_alpha must be in [0, 1], got {self.wise_alpha}")
        if self.lora_towers not in ("text", "vision", "both"):
            raise ValueError(f"lora_towers must be 'text', 'vision' or 'both', got {self.lora_towers!r}")
        cpus = available_cpus()
        if self.dataloader_num_workers > cpus:
            # torch warns about this in every DataLoader it builds, and more worker processes than CPUs
            # only queue for them.
            logger.warning("dataloader_num_workers=%d is more than the %d CPU(s) this process may use: using %d",
                           self.dataloader_num_workers, cpus, cpus)
            self.dataloader_num_workers = cpus
        if self.torch_threads < 0:
            raise ValueError(f"torch_threads must be >= 0 (0 = chosen by the device), got {self.torch_threads}")
        if self.padding_bucket < 0 or self.length_groups < 1:
            raise ValueError(f"padding_bucket must be >= 0 and length_groups >= 1, got {self.padding_bucket} and "
                             f"{self.length_groups}")
        if self.embedding_chunk_size < 0:
            raise ValueError(f"embedding_chunk_size must be >= 0 (0 = off), got {self.embedding_chunk_size}")
        if self.gradient_accumulation_steps > 1:
            warnings.warn(
                f"gradient_accumulation_steps={self.gradient_accumulation_steps} is not a larger batch for READ: "
                "each micro-batch's contrastive and alignment losses see only that micro-batch. For the exact "
                "large batch, raise per_device_train_batch_size and set embedding_chunk_size instead.",
                UserWarning, stacklevel=3)
        parse_signals(self.preemption_signals)  # an unknown name fails here, not at the first signal
        if self.nonfinite not in ("stop", "skip"):
            raise ValueError(f"nonfinite must be 'stop' or 'skip', got {self.nonfinite!r}")
        if self.fp16 and (self.use_cpu or not _has_fp16_device()):
            # Trainer would silently train in fp32 while the recorded settings say fp16.
            raise ValueError("fp16 needs a GPU (CUDA or another torch accelerator); none is in use. "
                             "Drop --fp16 (or use --bf16 where supported)")
        if not 1 <= self.max_text_length <= 77:
            # CLIP's position table has 77 entries; longer text cannot be encoded.
            raise ValueError(f"max_text_length must be in [1, 77], got {self.max_text_length}")

    @property
    def resume_requested(self) -> bool:
        """Whether ``resume_from_checkpoint`` asks to resume (a path, or True/last)."""
        return wants_resume(self.resume_from_checkpoint)

    @property
    def uses_decoder(self) -> bool:
        return self.reconstruction_weight > 0

    @property
    def uses_paraphrases(self) -> bool:
        return self.alignment_weight > 0

    def lora_config(self):
        """The ``peft.LoraConfig`` that ``use_peft`` asks for (CLIP towers only)."""
        from peft import LoraConfig

        towers = {"text": "text_model", "vision": "vision_model", "both": "(?:text_model|vision_model)"}[self.lora_towers]
        modules = "|".join(m.strip() for m in self.lora_target_modules.split(",") if m.strip())
        # A regex, because q_proj/k_proj/... exist in both towers and only the chosen one may match.
        pattern = rf".*{towers}\.encoder\.layers\.\d+\.(?:self_attn|mlp)\.(?:{modules})"
        return LoraConfig(r=self.lora_r, lora_alpha=self.lora_alpha, lora_dropout=self.lora_dropout,
                          target_modules=pattern, bias="none")


# Values that Trainer accepts and that then fail deep inside PyTorch (a batch of 0 rows, a NaN
# learning rate), after the data scan and the model load: refused when the flags are read.
AT_LEAST_ONE = ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps",
                "max_target_length", "lora_r")
FINITE_NOT_NEGATIVE = ("learning_rate", "weight_decay", "warmup_steps", "reconstruction_weight", "alignment_weight",
                       "lora_dropout")


def check_values(config) -> None:
    """Raise ``ValueError`` naming the first flag of ``config`` whose value cannot train."""
    import math

    for name in AT_LEAST_ONE:
        value = getattr(config, name, None)
        if value is not None and value < 1:
            raise ValueError(f"--{name} must be at least 1, got {value}")
    for name in FINITE_NOT_NEGATIVE:
        value = getattr(config, name, None)
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise ValueError(f"--{name} must be a finite number >= 0, got {value}")
    if config.max_steps <= 0 and not (math.isfinite(config.num_train_epochs) and config.num_train_epochs > 0):
        raise ValueError(f"--num_train_epochs must be > 0 (or set --max_steps), got {config.num_train_epochs}")


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one), as torch's DataLoader counts them."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _has_fp16_device() -> bool:
    import torch

    if torch.cuda.is_available():
        return True
    accelerator = getattr(torch, "accelerator", None)
    return bool(accelerator is not None and accelerator.is_available()
                and accelerator.current_accelerator().type not in ("cpu", "mps"))
