"""The suite: benchmark names for the command line, a data-root layout, and one call to run them all.

Layout under ``data_root`` (each benchmark's annotations in its folder, images in
that folder's ``images/`` unless an image root is given, symlinks welcome)::

    sugarcrepe/{add_att,...}.json           images: COCO val2017
    sugarcrepe_pp/{replace_att,...}.json    images: COCO val2017 (TOT needs none)
    valse/{existence,...}.json              images: every VALSE source, one folder
    whatsup/{controlled_images_dataset,...}.json   images: What'sUp's data/ folder
    crepe/**/*.csv                          images: Visual Genome (VG_100K, VG_100K_2)
    aro/visual_genome_{relation,attribution}.json, coco_karpathy_test.json, flickr30k_test.json
    winoground/examples.jsonl               images: winoground/images
    coco/dataset_coco.json, flickr30k/dataset_flickr30k.json   (Karpathy splits)
    zeroshot/<class>/<image>                (an image folder; classnames.txt, templates.txt optional)

``protocol="read"`` scores the READ paper's six as the paper's own evaluator did (ties with the
best negative credited, What'sUp groups pooled); ``protocol.py`` describes both protocols.

A benchmark not listed here (the synthetic world, your own) is a ``Benchmark`` built from
``Item``s (scored by the batched scorer), or any object with ``name``, ``all_texts()``,
``all_images()`` and ``evaluate(embedder)`` (as ``RetrievalTask`` and ``ZeroShotTask``):
pass it to ``run_suite`` with the rest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Protocol, Sequence

from .aro import load_aro_order, load_aro_vg_attribution, load_aro_vg_relation
from .crepe import load_crepe
from .embedding import CachedEmbedder, ClipEmbedder, Embedder
from .items import Benchmark, ImageRef
from .protocol import apply_protocol, check_protocol
from .results import PAPER_SIX, BenchmarkResult
from .retrieval import load_karpathy_retrieval
from .scoring import score_benchmark
from .sugarcrepe import load_sugarcrepe, load_sugarcrepe_pp_itt, load_sugarcrepe_pp_tot
from .valse import load_valse
from .vocabulary import warn_if_out_of_vocabulary
from .whatsup import load_whatsup
from .winoground import load_winoground
from .zeroshot import load_imagefolder, read_lines

FOLDERS = {
    "sugarcrepe": "sugarcrepe", "sugarcrepe_pp_itt": "sugarcrepe_pp", "sugarcrepe_pp_tot": "sugarcrepe_pp",
    "valse": "valse", "whatsup": "whatsup", "crepe": "crepe",
    "aro_vg_relation": "aro", "aro_vg_attribution": "aro", "aro_coco_order": "aro", "aro_flickr_order": "aro",
    "winoground": "winoground", "coco_retrieval": "coco", "flickr30k_retrieval": "flickr30k", "zeroshot": "zeroshot",
}
BENCHMARKS = tuple(FOLDERS)
# Named sets accepted wherever benchmark names are.
SETS = {
    "paper": PAPER_SIX,
    "compositional": PAPER_SIX + ("aro_vg_relation", "aro_vg_attribution", "aro_coco_order", "aro_flickr_order",
                                  "winoground"),
    "retention": ("coco_retrieval", "flickr30k_retrieval", "zeroshot"),
    "all": BENCHMARKS,
}


class Task(Protocol):
    """What ``run_suite`` needs from a task other than a ``Benchmark``: ``RetrievalTask``, ``ZeroShotTask``, yours."""

    name: str

    def all_texts(self) -> list[str]: ...

    def all_images(self) -> list[ImageRef]: ...

    def evaluate(self, embedder: Embedder) -> BenchmarkResult: ...


def expand_names(names: Sequence[str]) -> list[str]:
    """Benchmark names with set names (``paper``, ``all``, ...) expanded, order kept, duplicates dropped."""
    out: list[str] = []
    for name in names:
        for n in SETS.get(name, (name,)):
            if n not in FOLDERS:
                raise ValueError(f"unknown benchmark {n!r}; known: {', '.join(BENCHMARKS)}; sets: {', '.join(SETS)}")
            if n not in out:
                out.append(n)
    return out


def load_named(name: str, data_root: str | Path, image_root: str | Path | None = None,
               limit: int | None = None, protocol: str = "strict") -> Benchmark | Task:
    """Load benchmark ``name`` from the layout above (``limit`` caps items per subset, or images),
    with the rules of evaluation ``protocol`` (``strict`` or ``read``: see ``protocol.py``)."""
    check_protocol(protocol)
    task = _load_named(name, data_root, image_root, limit)
    return apply_protocol(task, protocol) if isinstance(task, Benchmark) else task


def _load_named(name: str, data_root: str | Path, image_root: str | Path | None, limit: int | None):
    folder = Path(data_root) / FOLDERS[name]
    images = Path(image_root) if image_root is not None else folder / "images"
    if name == "sugarcrepe":
        return load_sugarcrepe(folder, images, limit=limit)
    if name == "sugarcrepe_pp_itt":
        return load_sugarcrepe_pp_itt(folder, images, limit=limit)
    if name == "sugarcrepe_pp_tot":
        return load_sugarcrepe_pp_tot(folder, limit=limit)
    if name == "valse":
        return load_valse(folder, images, limit=limit)
    if name == "whatsup":
        return load_whatsup(folder, images, limit=limit)
    if name == "crepe":
        return load_crepe(folder, images, limit=limit)
    if name == "aro_vg_relation":
        return load_aro_vg_relation(folder, images, limit=limit)
    if name == "aro_vg_attribution":
        return load_aro_vg_attribution(folder, images, limit=limit)
    if name == "aro_coco_order":
        return load_aro_order(folder / "coco_karpathy_test.json", images, name=name, limit=limit)
    if name == "aro_flickr_order":
        return load_aro_order(folder / "flickr30k_test.json", images, name=name, limit=limit)
    if name == "winoground":
        return load_winoground(folder, images, limit=limit)
    if name == "coco_retrieval":
        return load_karpathy_retrieval(folder / "dataset_coco.json", images, name=name, limit=limit)
    if name == "flickr30k_retrieval":
        return load_karpathy_retrieval(folder / "dataset_flickr30k.json", images, name=name, limit=limit)
    if name == "zeroshot":
        classnames = folder / "classnames.txt"
        templates = folder / "templates.txt"
        return load_imagefolder(images if image_root is not None else folder,
                                read_lines(classnames) if classnames.is_file() else None,
                                read_lines(templates) if templates.is_file() else None, limit=limit)
    raise ValueError(f"unknown benchmark {name!r}")


def load_suite(names: Sequence[str], data_root: str | Path, image_roots: Mapping[str, str | Path] | None = None,
               limit: int | None = None, protocol: str = "strict") -> list[Benchmark | Task]:
    """Load several benchmarks; ``image_roots`` maps a benchmark name to its image folder."""
    image_roots = image_roots or {}
    return [load_named(n, data_root, image_roots.get(n), limit, protocol) for n in expand_names(names)]


def run_suite(tasks: Sequence[Benchmark | Task], embedder: Embedder) -> dict[str, BenchmarkResult]:
    """Evaluate every task; each unique text and image across *all* tasks is embedded once."""
    cached = CachedEmbedder(embedder)
    texts = [t for task in tasks for t in task.all_texts()]
    warn_if_out_of_vocabulary(getattr(embedder, "tokenizer", None), texts)
    cached.prefetch(texts, [im for task in tasks for im in task.all_images()])
    return {task.name: score_task(task, cached) for task in tasks}


def score_task(task: Benchmark | Task, embedder: Embedder) -> BenchmarkResult:
    """A ``Benchmark`` goes through the batched item scorer; any other task scores itself."""
    if isinstance(task, Benchmark):
        return score_benchmark(task, embedder)
    return task.evaluate(embedder)


def evaluate_model(model, tasks: Sequence[Benchmark | Task], processor=None,
                   **embedder_kwargs) -> dict[str, BenchmarkResult]:
    """Run ``tasks`` on a model path / hub id (``processor`` loaded with it) or an in-memory model + processor."""
    if isinstance(model, (str, Path)):
        embedder = ClipEmbedder.from_pretrained(str(model), **embedder_kwargs)
    else:
        if processor is None:
            raise ValueError("an in-memory model needs its processor (a CLIPProcessor)")
        embedder = ClipEmbedder(model, processor, **embedder_kwargs)
    return run_suite(tasks, embedder)
