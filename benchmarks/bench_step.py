"""Training-step speed and peak memory: NegCLIP vs our READ step vs the reference's step pattern.

Three variants train the same CLIP (same initial weights, same AdamW, same clipping) on
the same synthetic batches, side by side in one process, interleaved step by step so
that machine noise hits all of them alike:

  (a) negclip    NegCLIP only (our trainer with λ_rec = λ_align = 0): one image pass, one
                 text pass over anchors | negatives, dynamic padding, one backward.
  (b) read       our READ step: ``ReadTrainer.compute_loss`` on ``ReadModel`` (one text pass
                 over anchors | negatives | paraphrases, dynamic padding, frozen decoder stack
                 only, in bf16 under bf16, logits only at label positions), one backward.
  (c) reference  the reference implementation's step pattern, rebuilt (DESIGN.md §3): every
                 CLIP text and T5 label padded to 77; the full T5 model (encoder too) in
                 memory, fp32 weights, run under autocast; pass 1 = images + anchors|negatives,
                 L_con + λ_rec·L_rec, backward; pass 2 = anchors encoded *again* with the
                 paraphrases, outside autocast, λ_align·L_align, second backward; full-vocabulary
                 logits kept in fp32 for a token-accuracy logging metric.

Timing covers forward, backward(s), gradient clipping and the optimizer step (not data
loading: collation runs in DataLoader workers). Peak memory is measured per variant in
a fresh child process (CUDA: ``max_memory_allocated``; CPU: the child's peak RSS, with
its RSS before the model was built). FLOPs are counted with ``FlopCounterMode`` on one
step without gradient checkpointing (model FLOPs, no recomputation) and give the model
FLOP utilisation on GPUs.

Caption lengths follow real COCO captions: the word+punctuation counts of the 4,345
COCO val2017 captions in SugarCrepe (histogram below); CLIP tokens = count + 2
(BOS/EOS; COCO words are almost all single BPE tokens), T5 tokens = round(1.2·count) + 1
(SentencePiece splits more; + </s>). Token ids are random; they do not change the cost.

    python benchmarks/bench_step.py                       # tiny CPU config (see --help)
    python benchmarks/bench_step.py --reference-scale     # ViT-B/32 + T5-v1.1-large, batch 256, bf16, GPU
    python benchmarks/bench_step.py --reference-scale --dry-run   # same code path, tiny batch/depth, any machine
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, T5Config, T5ForConditionalGeneration

from read_trainer import losses
from read_trainer.config import ReadConfig
from read_trainer.modeling import ReadModel
from read_trainer.trainer import ReadTrainer

# Word+punctuation counts of COCO val2017 captions (SugarCrepe's 4,345 positives): count -> captions.
COCO_LENGTHS = {7: 15, 8: 163, 9: 655, 10: 817, 11: 791, 12: 656, 13: 468, 14: 290, 15: 174, 16: 107, 17: 67,
                18: 40, 19: 28, 20: 18, 21: 11, 22: 13, 23: 6, 24: 6, 25: 3, 26: 8, 27: 2, 30: 3, 33: 1, 40: 1,
                42: 1, 48: 1}
CLIP_BOS, CLIP_EOS = 49406, 49407  # openai/clip-vit-base-patch32's ids (EOT pooling finds the EOS id)
REFERENCE_PAD = 77
VARIANTS = ("negclip", "read", "reference")  # optional extras (flags): "read-one-pass", "read-compiled"
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


# A 2-core CPU config (DESIGN.md §5: 64×64 images, width 128, 4 layers, batch 128). The T5
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
def build_models(scale: Scale, seed: int = 0):
    """(CLIPModel, T5ForConditionalGeneration) with random weights, v1.1 layout (untied head)."""
    clip_config = CLIPConfig(
        text_config=dict(hidden_size=scale.text_width, intermediate_size=4 * scale.text_width,
                         num_hidden_layers=scale.text_layers, num_attention_heads=scale.text_heads,
                         max_position_embeddings=77, vocab_size=49408, bos_token_id=CLIP_BOS,
                         eos_token_id=CLIP_EOS, pad_token_id=1),
        vision_config=dict(hidden_size=scale.vision_width, intermediate_size=4 * scale.vision_width,
                           num_hidden_layers=scale.vision_layers, num_attention_heads=scale.vision_heads,
                           image_size=scale.image_size, patch_size=scale.patch_size),
        projection_dim=scale.projection_dim,
    )
    t5_config = T5Config(
        vocab_size=scale.t5_vocab, d_model=scale.t5_d_model, d_ff=scale.t5_d_ff, d_kv=64,
        num_layers=scale.t5_layers, num_decoder_layers=scale.t5_layers, num_heads=scale.t5_heads,
        feed_forward_proj="gated-gelu", dropout_rate=0.1, tie_word_embeddings=False,
        decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
    )
    torch.manual_seed(seed)
    clip = CLIPModel(clip_config)
    t5 = T5ForConditionalGeneration(t5_config)
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

    ids, mask = texts(["anchors", "negatives"])
    negclip = {"pixel_values": pixels, "input_ids": ids, "attention_mask": mask, "num_negatives": k}
    ids, mask = texts(["anchors", "negatives", "paraphrases"])
    read = {"pixel_values": pixels, "input_ids": ids, "attention_mask": mask, "num_negatives": k,
            "decoder_labels": _t5_labels(t5_len, None, scale.t5_vocab, g)}
    ids, mask = texts(["anchors", "negatives"], REFERENCE_PAD)
    anchor_ids, anchor_mask = texts(["anchors"], REFERENCE_PAD)
    para_ids, para_mask = texts(["paraphrases"], REFERENCE_PAD)
    reference = {"pixel_values": pixels, "input_ids": ids, "attention_mask": mask,
                 "anchor_ids": anchor_ids, "anchor_mask": anchor_mask, "para_ids": para_ids, "para_mask": para_mask,
                 "labels": _t5_labels(t5_len, REFERENCE_PAD, scale.t5_vocab, g)}
    return {"negclip": negclip, "read": read, "reference": reference}


def _to(batch: dict, device) -> dict:
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


# -- steps -----------------------------------------------------------------------------------
class OurStep:
    """(a) or (b): the real ``ReadTrainer.compute_loss`` on a ``ReadModel``, as Trainer runs it.

    The model is prepared by the trainer's Accelerator (which wraps its forward in autocast
    under bf16), and the step is Trainer's: compute_loss, accelerator.backward, clip, step.
    """

    def __init__(self, scale: Scale, clip, t5, device, with_read_losses: bool, workdir: str,
                 length_groups: int = 4, compile: bool = False):
        args = ReadConfig(
            output_dir=workdir, report_to="none", use_cpu=device.type == "cpu", bf16=scale.bf16,
            reconstruction_weight=0.1 if with_read_losses else 0.0,
            alignment_weight=0.5 if with_read_losses else 0.0, num_hard_negatives=scale.num_negatives,
        )
        clip = copy.deepcopy(clip)
        if with_read_losses:
            dtype = torch.bfloat16 if scale.bf16 else torch.float32  # decoder_dtype="auto"
            decoder = copy.deepcopy(t5.decoder).to(dtype)
            lm_head = copy.deepcopy(t5.lm_head).to(dtype)
            model = ReadModel(clip, decoder, lm_head, t5.config, decoder_dropout=True, length_groups=length_groups)
        else:
            model = ReadModel(clip, length_groups=length_groups)
        if scale.checkpointing:
            model.activation_checkpointing_enable()
        self.trainer = ReadTrainer(model=model, args=args, processing_class=CLIPImageProcessor(),
                                   data_collator=lambda rows: rows)
        self.model = self.trainer.accelerator.prepare_model(self.trainer.model)
        self.model.train()
        if compile:
            # What TrainingArguments(torch_compile=True) does: compile the model's forward.
            # Lengths vary from batch to batch (and group to group): dynamic shapes.
            self.model.clip.text_model = torch.compile(self.model.clip.text_model, dynamic=True)
            self.model.clip.vision_model = torch.compile(self.model.clip.vision_model)
            if self.model.decoder is not None:
                self.model.decoder = torch.compile(self.model.decoder, dynamic=True)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=1e-5, weight_decay=0.1)

    def set_checkpointing(self, enabled: bool) -> None:
        clip = self.trainer.model.clip
        if enabled:
            clip.activation_checkpointing_enable()
        else:
            clip.activation_checkpointing_disable()

    def __call__(self, batch: dict) -> float:
        with self.trainer.compute_loss_context_manager():
            loss = self.trainer.compute_loss(self.model, dict(batch))
        self.trainer.accelerator.backward(loss)
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss.detach()


class ReferenceStep:
    """(c): the reference implementation's step, rebuilt from its description (DESIGN.md §3)."""

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

    def __call__(self, batch: dict) -> float:
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
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return first.detach()


def build_variant(name: str, scale: Scale, clip, t5, device, workdir: str):
    if name == "reference":
        return ReferenceStep(scale, clip, t5, device)
    return OurStep(scale, clip, t5, device, with_read_losses=name.startswith("read"),
                   workdir=os.path.join(workdir, name), length_groups=1 if name == "read-one-pass" else 4,
                   compile=name == "read-compiled")


# -- measurement -----------------------------------------------------------------------------
def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def count_flops(step, batch, scale: Scale) -> float:
    """Model FLOPs of one step: counted without checkpointing (no recomputation)."""
    if scale.checkpointing:
        step.set_checkpointing(False)
    with FlopCounterMode(display=False) as counter:
        step(batch)
    if scale.checkpointing:
        step.set_checkpointing(True)
    return float(counter.get_total_flops())


def _proc_status_mb(key: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process, in MB (Linux).

    VmHWM, not ``getrusage``'s ru_maxrss: a spawned child's ru_maxrss starts from its
    parent's RSS at fork time (and survives exec), so it would report the parent's peak.
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {key} in /proc/self/status")


def _memory_child(name: str, scale_dict: dict, device_name: str, steps: int, queue) -> None:
    """Build one variant in a fresh process and report its peak memory (and its FLOPs)."""
    scale, device = Scale(**scale_dict), torch.device(device_name)
    baseline = _proc_status_mb("VmRSS")
    clip, t5 = build_models(scale)
    with tempfile.TemporaryDirectory() as workdir:
        step = build_variant(name, scale, clip, t5, device, workdir)
        del clip, t5  # each variant holds its own copies; the originals would inflate the RSS
        batch = _to(make_batches(scale, seed=1000)[_batch_kind(name)], device)
        built = _proc_status_mb("VmRSS")
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        for _ in range(steps):
            step(batch)
        _sync(device)
        result = {"variant": name, "rss_before_mb": baseline, "rss_after_build_mb": built,
                  "peak_rss_mb": _proc_status_mb("VmHWM")}
        if device.type == "cuda":
            result["peak_cuda_gb"] = torch.cuda.max_memory_allocated(device) / 2**30
            result["peak_cuda_reserved_gb"] = torch.cuda.max_memory_reserved(device) / 2**30
        # After the memory steps: a step without checkpointing would raise the peak.
        result["flops_per_step"] = count_flops(step, batch, scale)
    queue.put(result)


def _batch_kind(name: str) -> str:
    return "read" if name.startswith("read") else name


def measure_memory(scale: Scale, device, steps: int, variants) -> dict[str, dict]:
    context = mp.get_context("spawn")
    results = {}
    for name in variants:
        queue = context.Queue()
        child = context.Process(target=_memory_child, args=(name, asdict(scale), str(device), steps, queue))
        child.start()
        result = queue.get()
        child.join()
        if child.exitcode != 0:
            raise RuntimeError(f"memory measurement of {name} failed (exit code {child.exitcode})")
        results[name] = result
    return results


def measure_speed(scale: Scale, device, repeats: int, warmup: int, workdir: str, variants):
    """Seconds per step of every variant, interleaved: rep 1 (a,b,c), rep 2 (a,b,c), ...

    Returns (wall-clock seconds, process CPU seconds) per variant. On a shared CPU the
    CPU time is the steadier measure: time spent descheduled does not count.
    """
    clip, t5 = build_models(scale)
    steps = {name: build_variant(name, scale, clip, t5, device, workdir) for name in variants}
    del clip, t5
    times = {name: [] for name in variants}
    cpu_times = {name: [] for name in variants}
    for rep in range(warmup + repeats):
        batches = make_batches(scale, seed=rep)  # a new batch (new lengths) each repeat, shared by all
        for name in variants:
            batch = _to(batches[_batch_kind(name)], device)
            _sync(device)
            start, cpu_start = time.perf_counter(), time.process_time()
            steps[name](batch)
            _sync(device)
            if rep >= warmup:
                times[name].append(time.perf_counter() - start)
                cpu_times[name].append(time.process_time() - cpu_start)
        if rep >= warmup:
            row = "  ".join(f"{n} {times[n][-1]:.3f}s (cpu {cpu_times[n][-1]:.3f}s)" for n in variants)
            print(f"repeat {rep - warmup + 1}/{repeats}: {row}", flush=True)
    return times, cpu_times


def profile_steps(scale: Scale, device, workdir: str, variants, out_dir: str, rows: int = 25) -> None:
    """One warm-up and one profiled step per variant (torch.profiler, CPU + CUDA): writes
    ``<out_dir>/profile_<variant>.txt`` with the ops sorted by self device time and by self
    CPU time, to find where a variant's step time goes (kernels, launches, synchronisation)."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    clip, t5 = build_models(scale)
    steps = {name: build_variant(name, scale, clip, t5, device, workdir) for name in variants}
    del clip, t5
    os.makedirs(out_dir, exist_ok=True)
    batches = make_batches(scale, seed=0)
    for name in variants:
        batch = _to(batches[_batch_kind(name)], device)
        steps[name](batch)  # warm-up: allocator, kernel selection
        _sync(device)
        with profile(activities=activities, record_shapes=False) as prof:
            steps[name](batch)
            _sync(device)
        table = prof.key_averages()
        sort_device = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
        text = (f"# {name}: by self device time\n{table.table(sort_by=sort_device, row_limit=rows)}\n"
                f"# {name}: by self CPU time\n{table.table(sort_by='self_cpu_time_total', row_limit=rows)}\n")
        path = os.path.join(out_dir, f"profile_{name}.txt")
        with open(path, "w") as f:
            f.write(text)
        print(f"profile of {name}: {path}", flush=True)


def count_flops_only(scale: Scale, device, variants, command: str) -> dict:
    """Model FLOPs per sample of one step of each variant (no timing, no memory children)."""
    clip, t5 = build_models(scale)
    batches = make_batches(scale, seed=1000)
    flops = {}
    with tempfile.TemporaryDirectory() as workdir:
        for name in variants:
            step = build_variant(name, scale, clip, t5, device, workdir)
            flops[name] = count_flops(step, _to(batches[_batch_kind(name)], device), scale) / scale.batch_size
            del step
    lines = [f"command: {command}", f"scale: {scale.name}, batch {scale.batch_size}: model GFLOP per sample "
             "(one step, no recomputation)"]
    lines += [f"  {name}: {value / 1e9:.2f}" for name, value in flops.items()]
    lines += [f"FLOP ratio (b)/(a): {flops['read'] / flops['negclip']:.2f}x;  "
              f"(c)/(b): {flops['reference'] / flops['read']:.2f}x"]
    print("\n".join(lines))
    return {"scale": asdict(scale), "flops_per_sample": flops}


def peak_tflops(device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def _paired_ratio(times: dict, x: str, y: str) -> float:
    """Median over repeats of time(x)/time(y): same repeat = same moment, same batch."""
    return statistics.median(tx / ty for tx, ty in zip(times[x], times[y]))


def report(scale: Scale, device, times, cpu_times, memory, command: str) -> str:
    b = scale.batch_size
    median = {n: statistics.median(t) for n, t in times.items()}
    cpu_median = {n: statistics.median(t) for n, t in cpu_times.items()}
    on_cpu = device.type == "cpu"

    def ratio(x, y):
        text = f"{_paired_ratio(times, x, y):.2f}x wall"
        return text + (f", {_paired_ratio(cpu_times, x, y):.2f}x CPU time" if on_cpu else "")

    peak = peak_tflops(device)
    lines = [f"command: {command}", f"device: {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}"
             f" (torch {torch.__version__}, {torch.get_num_threads()} threads)",
             f"scale: {scale.name}, batch {b}, bf16 {scale.bf16}, gradient checkpointing {scale.checkpointing}, "
             f"{len(times['read'])} interleaved repeats", "",
             "| variant | s/step (median) | samples/s | " + ("CPU s/step | " if on_cpu else "") + "GFLOP/sample | "
             + ("MFU | peak GPU mem (GB) |" if not on_cpu else "peak RSS (MB) [before model] |"),
             "|---|---|---|---|---|" + ("---|" if on_cpu or memory else "")]
    for name in times:
        mem = memory.get(name) if memory else None
        flops = mem["flops_per_step"] if mem else float("nan")
        label = f"({'abc'[VARIANTS.index(name)]}) {name}" if name in VARIANTS else f"(b') {name}"
        cells = [label, f"{median[name]:.3f}", f"{b / median[name]:.1f}"]
        cells += [f"{cpu_median[name]:.3f}"] if on_cpu else []
        cells += [f"{flops / b / 1e9:.2f}"]
        if mem and device.type == "cuda":
            mfu = flops / median[name] / (peak * 1e12) if peak else float("nan")
            cells += [f"{100 * mfu:.1f}%", f"{mem['peak_cuda_gb']:.1f}"]
        elif mem:
            cells += [f"{mem['peak_rss_mb']:.0f} [{mem['rss_before_mb']:.0f}]"]
        else:
            cells += ["-"] * (1 if on_cpu else 2)
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "time ratios (median over repeats of the paired ratio):",
              f"  (c)/(b) reference/read: {ratio('reference', 'read')}",
              f"  (b)/(a) read/negclip:   {ratio('read', 'negclip')}"]
    for name in times:
        if name not in VARIANTS:
            lines.append(f"  {name}/read: {ratio(name, 'read')}")
    if memory:
        fr = memory["read"]["flops_per_step"] / memory["negclip"]["flops_per_step"]
        lines.append(f"FLOP ratio (b)/(a): {fr:.2f}x;  (c)/(b): "
                     f"{memory['reference']['flops_per_step'] / memory['read']['flops_per_step']:.2f}x")
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference-scale", action="store_true",
                        help="ViT-B/32 + T5-v1.1-large, batch 256, bf16, gradient checkpointing (a GPU machine)")
    parser.add_argument("--dry-run", action="store_true",
                        help="prove the code path cheaply: batch 4, 2 layers per stack, 1 warm-up + 2 repeats")
    parser.add_argument("--batch-size", type=int, help="override the configuration's batch size")
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None, help="override bf16")
    parser.add_argument("--checkpointing", action=argparse.BooleanOptionalAction, default=None,
                        help="override gradient checkpointing")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per variant (interleaved)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per variant first")
    parser.add_argument("--memory-steps", type=int, default=2, help="steps per variant in the memory children")
    parser.add_argument("--no-memory", action="store_true", help="skip the per-variant memory/FLOP children")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int,
                        help="torch CPU threads (on a shared CPU, 1 avoids threads stalling on a descheduled peer)")
    parser.add_argument("--with-one-pass", action="store_true",
                        help="add (b') our READ step with texts and targets in one padded pass (length_groups=1)")
    parser.add_argument("--with-compile", action="store_true", help="add (b') our READ step under torch.compile")
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--profile", metavar="DIR",
                        help="instead of timing, profile one step per variant (torch.profiler) into DIR")
    parser.add_argument("--flops-only", action="store_true",
                        help="only count each variant's model FLOPs on one step (any device; no timing)")
    args = parser.parse_args(argv)

    scale = REFERENCE if args.reference_scale else TINY
    if args.dry_run:
        scale = replace(scale, name=scale.name + "-dry-run", batch_size=4, vision_layers=2, text_layers=2, t5_layers=2)
        args.repeats, args.warmup, args.memory_steps = 2, 1, 1
    if args.batch_size:
        scale = replace(scale, batch_size=args.batch_size)
    if args.bf16 is not None:
        scale = replace(scale, bf16=args.bf16)
    if args.checkpointing is not None:
        scale = replace(scale, checkpointing=args.checkpointing)
    device = torch.device(args.device)
    if args.reference_scale and device.type != "cuda" and not (args.dry_run or args.flops_only):
        raise SystemExit("--reference-scale needs a GPU (add --dry-run to exercise the code path on CPU)")
    command = "python benchmarks/bench_step.py " + " ".join(sys.argv[1:] if argv is None else argv)

    variants = list(VARIANTS) + ["read-one-pass"] * args.with_one_pass + ["read-compiled"] * args.with_compile
    if args.flops_only:
        return count_flops_only(scale, device, variants, command)
    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # inherited by the memory children
    if args.profile:
        with tempfile.TemporaryDirectory() as workdir:
            profile_steps(scale, device, workdir, variants, args.profile)
        return {}
    with tempfile.TemporaryDirectory() as workdir:
        times, cpu_times = measure_speed(scale, device, args.repeats, args.warmup, workdir, variants)
    memory = None if args.no_memory else measure_memory(scale, device, args.memory_steps, variants)
    text = report(scale, device, times, cpu_times, memory, command)
    print("\n" + text)
    result = {"scale": asdict(scale), "device": str(device), "times": times, "cpu_times": cpu_times,
              "memory": memory, "report": text}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
