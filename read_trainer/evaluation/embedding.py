"""Batched CLIP embeddings: the only place that runs the model.

Scores use cosine similarity of L2-normalised *projected* embeddings with no logit
scale: a benchmark compares embeddings, and the learned temperature would only rescale
every score of an item alike. In transformers 5, ``CLIPModel.get_text_features`` and
``get_image_features`` return an output object whose ``pooler_output`` has already
been through ``text_projection`` / ``visual_projection``; that is the embedding.

Speed comes from three things, none of which changes a similarity beyond float
rounding: each unique text/image is embedded once (the scorer de-duplicates before
calling in), texts are batched by exact token length so no batch carries padding,
and images are decoded and preprocessed in batches, optionally in DataLoader workers.
"""

from __future__ import annotations

import contextlib
from typing import Any, Protocol, Sequence

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ..data.rows import decode_image
from .items import ImageRef

DTYPES = {
    None: None, "fp32": None, "float32": None, "no": None,
    "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
    "fp16": torch.float16, "float16": torch.float16,
}


class Embedder(Protocol):
    """What the scorers need: rows of L2-normalised float32 embeddings, one per input, in order."""

    def embed_texts(self, texts: Sequence[str]) -> torch.Tensor: ...

    def embed_images(self, images: Sequence[ImageRef]) -> torch.Tensor: ...


def unwrap_clip(model: torch.nn.Module) -> torch.nn.Module:
    """The ``CLIPModel`` inside DDP/accelerate wrappers (``.module``) and READ's wrapper (``.clip``)."""
    while hasattr(model, "module"):
        model = model.module
    return getattr(model, "clip", model)


def load_image(ref: ImageRef) -> Image.Image:
    """Decode ``ref`` to 8-bit RGB, as training rows are decoded, and crop it to its box (CREPE, ARO).

    An image that cannot be read raises ``ValueError`` naming the file.
    """
    image = decode_image(ref.data if ref.data is not None else ref.path)
    return image.crop(ref.box) if ref.box is not None else image


def normalize(x: torch.Tensor) -> torch.Tensor:
    """Float32 L2 normalisation (done after any autocast so the cosine itself is fp32)."""
    return torch.nn.functional.normalize(x.float(), dim=-1)


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    """``"bf16"``/``"fp16"`` → an autocast dtype; ``None``/``"fp32"`` → no autocast."""
    if isinstance(dtype, torch.dtype) or dtype is None:
        return None if dtype in (None, torch.float32) else dtype
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; use one of {sorted(k for k in DTYPES if k)}")
    return DTYPES[dtype]


class _Images(Dataset):
    def __init__(self, refs: Sequence[ImageRef]):
        self.refs = refs

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, i: int) -> Image.Image:
        return load_image(self.refs[i])


class _Preprocess:
    """DataLoader collate: runs the image processor on a batch (inside the worker when there are workers)."""

    def __init__(self, image_processor: Any):
        self.image_processor = image_processor

    def __call__(self, images: list[Image.Image]) -> torch.Tensor:
        return self.image_processor(images=images, return_tensors="pt")["pixel_values"]


class ClipEmbedder:
    """Batched, optionally autocast, progress-barred embeddings from a ``CLIPModel``.

    ``model`` may be a ``CLIPModel``, READ's training wrapper (``.clip``) or a
    DDP/accelerate wrapper of either; it stays on the device it is on unless
    ``device`` is given. The model is put in eval mode while embedding and restored.
    """

    def __init__(self, model: torch.nn.Module, processor: Any, *, batch_size: int = 256,
                 device: str | torch.device | None = None, dtype: str | torch.dtype | None = None,
                 num_workers: int = 0, progress: bool = True):
        self.model = unwrap_clip(model)
        if device is not None:
            self.model.to(device)
        self.device = next(self.model.parameters()).device
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.batch_size = batch_size
        self.dtype = resolve_dtype(dtype)
        self.num_workers = num_workers
        self.progress = progress
        # CLIP's position table is the hard limit (77 for OpenAI checkpoints); longer texts are truncated.
        self.max_length = self.model.config.text_config.max_position_embeddings

    @classmethod
    def from_pretrained(cls, name_or_path: str, **kwargs) -> "ClipEmbedder":
        """Load any ``CLIPModel`` checkpoint (hub id or local folder) with its processor."""
        from transformers import CLIPModel, CLIPProcessor

        return cls(CLIPModel.from_pretrained(name_or_path), CLIPProcessor.from_pretrained(name_or_path), **kwargs)

    @contextlib.contextmanager
    def _inference(self):
        was_training = self.model.training
        self.model.eval()
        autocast = torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None)
        try:
            with torch.inference_mode(), autocast:
                yield
        finally:
            self.model.train(was_training)

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        return self.tokenizer(list(texts), truncation=True, max_length=self.max_length,
                              return_attention_mask=False)["input_ids"]

    def length_batches(self, ids: list[list[int]]) -> list[list[int]]:
        """Indices grouped by exact token length, in batches of at most ``batch_size``.

        Equal lengths need no padding at all, which on CPU is worth ~1.5x over padding
        length-sorted batches; the pooled end-of-text token never sees padding either way.
        """
        by_length: dict[int, list[int]] = {}
        for i, row in enumerate(ids):
            by_length.setdefault(len(row), []).append(i)
        return [rows[s:s + self.batch_size] for _, rows in sorted(by_length.items())
                for s in range(0, len(rows), self.batch_size)]

    def embed_texts(self, texts: Sequence[str]) -> torch.Tensor:
        if not texts:
            return torch.empty(0, self.model.config.projection_dim)
        ids = self.tokenize(texts)
        out = torch.empty(len(ids), self.model.config.projection_dim)
        bar = tqdm(total=len(ids), desc="embedding texts", unit="text", disable=not self.progress, leave=False)
        with self._inference():
            for rows in self.length_batches(ids):
                input_ids = torch.tensor([ids[i] for i in rows], device=self.device)
                out[rows] = normalize(self.model.get_text_features(input_ids=input_ids).pooler_output).cpu()
                bar.update(len(rows))
        bar.close()
        return out

    def embed_images(self, images: Sequence[ImageRef]) -> torch.Tensor:
        if not images:
            return torch.empty(0, self.model.config.projection_dim)
        loader = DataLoader(_Images(images), batch_size=self.batch_size, num_workers=self.num_workers,
                            collate_fn=_Preprocess(self.processor.image_processor))
        chunks = []
        bar = tqdm(total=len(images), desc="embedding images", unit="img", disable=not self.progress, leave=False)
        with self._inference():
            for pixel_values in loader:
                feats = self.model.get_image_features(pixel_values=pixel_values.to(self.device)).pooler_output
                chunks.append(normalize(feats).cpu())
                bar.update(len(pixel_values))
        bar.close()
        return torch.cat(chunks)


class CachedEmbedder:
    """Remembers embeddings across calls so benchmarks sharing texts/images (SugarCrepe and
    SugarCrepe++ share COCO images and captions) embed them once per evaluation run.

    Make a new one per run: a cache outliving a training step would serve stale embeddings.
    """

    def __init__(self, embedder: Embedder):
        self.embedder = embedder
        self.texts: dict[str, torch.Tensor] = {}
        self.images: dict[tuple, torch.Tensor] = {}

    def prefetch(self, texts: Sequence[str], images: Sequence[ImageRef]) -> None:
        """Embed everything up front: one pass, full batches, however the tasks split it later."""
        self._add_texts(texts)
        self._add_images(images)

    def _add_texts(self, texts: Sequence[str]) -> None:
        missing = [t for t in dict.fromkeys(texts) if t not in self.texts]
        self.texts.update(zip(missing, self.embedder.embed_texts(missing)))

    def _add_images(self, images: Sequence[ImageRef]) -> None:
        missing = list({ref.key: ref for ref in images if ref.key not in self.images}.values())
        self.images.update(zip((r.key for r in missing), self.embedder.embed_images(missing)))

    def embed_texts(self, texts: Sequence[str]) -> torch.Tensor:
        self._add_texts(texts)
        return torch.stack([self.texts[t] for t in texts]) if texts else self.embedder.embed_texts([])

    def embed_images(self, images: Sequence[ImageRef]) -> torch.Tensor:
        self._add_images(images)
        return torch.stack([self.images[r.key] for r in images]) if images else self.embedder.embed_images([])
