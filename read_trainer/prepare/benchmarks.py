"""Every benchmark ``run_evaluation.py`` knows, laid out exactly as ``evaluation/suite.py`` reads it.

Each benchmark folder gets its official annotation files (copied; the SugarCrepe, SugarCrepe++ and
VALSE ones come from the copies shipped in the package) and an ``images/`` folder holding one
relative link per image the annotations name, found by file name in the extracted sources. So a
benchmark folder is complete exactly when every image its annotations reference is there, which is
what ``.prepared.json`` records and a rerun checks. ImageNet is never downloaded: ``--imagenet_dir``
points at your copy, and ``zeroshot/`` links its class folders.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path
from typing import Callable, Iterable, Sequence

from ..cli import UsageError
from ..evaluation.suite import FOLDERS, expand_names
from .store import DataStore, basename_index, link, link_all

MARKER = ".prepared.json"
SUGARCREPE = ("add_att", "add_obj", "replace_att", "replace_obj", "replace_rel", "swap_att", "swap_obj")
SUGARCREPE_PP = ("replace_att", "replace_obj", "replace_rel", "swap_att", "swap_obj")
VALSE = ("existence", "plurals", "counting-hard", "counting-small-quant", "counting-adversarial", "relations",
         "action-replacement", "actant-swap", "coreference-standard", "coreference-hard", "foil-it")
WHATSUP = ("controlled_images_dataset.json", "controlled_clevr_dataset.json", "coco_qa_one_obj.json",
           "coco_qa_two_obj.json", "vg_qa_one_obj.json", "vg_qa_two_obj.json")
VAL2017 = ("coco-val2017", "val2017.zip")
VAL2014 = ("coco-val2014", "val2014.zip")
TRAIN2014 = ("coco-train2014", "train2014.zip")
VALSE_IMAGES = [("visual7w-images", "visual7w_images.zip"), ("swig-images", "images_512.zip"),
                ("visdial-val2018-images", "VisualDialog_val2018.zip"), VAL2014, TRAIN2014, VAL2017]
VG_IMAGES = [("visual-genome", "images.zip"), ("visual-genome", "images2.zip")]
FLICKR_TEST_IMAGES = ("flickr30k-test-images", "images_flickr_1k_test.zip")
PROMPTS = ("imagenet-prompts", "en_classnames.json"), ("imagenet-prompts", "en_zeroshot_classification_templates.json")


def folders_for(names: Sequence[str]) -> dict[str, list[str]]:
    """Benchmark folder -> the benchmark names (after expanding sets) that live in it, in order."""
    out: dict[str, list[str]] = {}
    for name in expand_names(names):
        out.setdefault(FOLDERS[name], []).append(name)
    return out


def files_for(folder: str, names: Sequence[str], flickr30k_images: str | None = None) -> list[tuple[str, str]]:
    """The manifest files a benchmark folder needs (for the space check before any download)."""
    if folder == "sugarcrepe":
        return [("sugarcrepe", f"{s}.json") for s in SUGARCREPE] + [VAL2017]
    if folder == "sugarcrepe_pp":
        images = [VAL2017] if "sugarcrepe_pp_itt" in names else []
        return [("sugarcrepe-pp", f"{s}.json") for s in SUGARCREPE_PP] + images
    if folder == "valse":
        return [("valse", f"{s}.json") for s in VALSE] + VALSE_IMAGES
    if folder == "whatsup":
        return [("whatsup", n) for n in WHATSUP] + [("whatsup", "controlled_images.tar.gz"),
                                                    ("whatsup", "controlled_clevr.tar.gz"),
                                                    ("whatsup", "vg_images.tar.gz"), VAL2017]
    if folder == "crepe":
        return [("crepe", "prod_hard_negatives.zip")] + VG_IMAGES
    if folder == "aro":
        out = []
        if {"aro_vg_relation", "aro_vg_attribution"} & set(names):
            out += [("aro", "visual_genome_relation.json"), ("aro", "visual_genome_attribution.json"),
                    ("aro", "vgr_vga_images.zip")]
        if "aro_coco_order" in names:
            out += [("blip-karpathy-test", "coco_karpathy_test.json"), VAL2014]
        if "aro_flickr_order" in names:
            out += [("blip-karpathy-test", "flickr30k_test.json")] + ([] if flickr30k_images else [FLICKR_TEST_IMAGES])
        return out
    if folder == "winoground":
        return [("winoground", "examples.jsonl"), ("winoground", "images.zip")]
    if folder == "coco":
        return [("karpathy-coco", "test.parquet"), VAL2014]
    if folder == "flickr30k":
        return [("flickr30k-karpathy", "dataset_flickr30k.json")] + ([] if flickr30k_images else [FLICKR_TEST_IMAGES])
    if folder == "zeroshot":
        return list(PROMPTS)
    raise UsageError(f"no preparation known for benchmark folder {folder!r}")


# -- helpers ---------------------------------------------------------------------------------


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _json(path: Path):
    with path.open(encoding="utf-8") as f:
        return json.load(f)


def _index(store: DataStore, archives: Iterable[tuple[str, str]]) -> dict[str, Path]:
    return basename_index([store.extracted(*a) for a in archives])


def is_prepared(folder: Path) -> bool:
    """A finished folder: its note exists and every image link it recorded still resolves."""
    note = folder / MARKER
    if not note.is_file():
        return False
    recorded = json.loads(note.read_text())
    images = folder / "images"
    if recorded.get("images", 0) and images.is_dir():
        found = sum(1 for dirpath, _, names in os.walk(images, followlinks=False) for n in names
                    if os.path.exists(os.path.join(dirpath, n)))
        return found >= recorded["images"]
    return True


# -- one builder per folder ------------------------------------------------------------------


def _sugarcrepe(store: DataStore, folder: Path, names: Sequence[str], **_) -> dict:
    wanted = {}
    for subset in SUGARCREPE:
        path = store.file("sugarcrepe", f"{subset}.json")
        _copy(path, folder / path.name)
        wanted.update({row["filename"]: row["filename"] for row in _json(path).values()})
    count = link_all(wanted, _index(store, [VAL2017]), folder / "images", "SugarCrepe", "COCO val2017 is incomplete")
    return {"annotation_files": len(SUGARCREPE), "images": count}


def _sugarcrepe_pp(store: DataStore, folder: Path, names: Sequence[str], **_) -> dict:
    wanted = {}
    for subset in SUGARCREPE_PP:
        path = store.file("sugarcrepe-pp", f"{subset}.json")
        _copy(path, folder / path.name)
        wanted.update({row["filename"]: row["filename"] for row in _json(path)})
    count = 0
    if "sugarcrepe_pp_itt" in names:  # TOT is text only
        count = link_all(wanted, _index(store, [VAL2017]), folder / "images", "SugarCrepe++",
                         "COCO val2017 is incomplete")
    return {"annotation_files": len(SUGARCREPE_PP), "images": count}


def _valse(store: DataStore, folder: Path, names: Sequence[str], **_) -> dict:
    wanted = {}
    for piece in VALSE:
        path = store.file("valse", f"{piece}.json")
        _copy(path, folder / path.name)
        wanted.update({s["image_file"]: s["image_file"] for s in _json(path).values() if s["mturk"]["caption"] >= 2})
    count = link_all(wanted, _index(store, VALSE_IMAGES), folder / "images", "VALSE",
                     "one of VALSE's image sources (Visual7W, SWiG, VisDial, COCO) is incomplete")
    return {"annotation_files": len(VALSE), "images": count}


def _whatsup(store: DataStore, folder: Path, names: Sequence[str], **_) -> dict:
    rows = {}
    for name in WHATSUP:
        path = store.file("whatsup", name)
        _copy(path, folder / name)
        rows[name] = _json(path)
    images = folder / "images"
    count = 0
    for name, archive in (("controlled_images_dataset.json", "controlled_images.tar.gz"),
                          ("controlled_clevr_dataset.json", "controlled_clevr.tar.gz")):
        wanted = {}
        for row in rows[name]:
            parts = Path(row["image_path"]).parts
            relative = Path(*parts[1:]) if parts and parts[0] == "data" else Path(row["image_path"])
            wanted[relative.as_posix()] = relative.name
        count += link_all(wanted, _index(store, [("whatsup", archive)]), images, f"What'sUp {name}",
                          f"{archive} is incomplete")
    coco = {f"val2017/{int(r[0]):012d}.jpg": f"{int(r[0]):012d}.jpg"
            for n in ("coco_qa_one_obj.json", "coco_qa_two_obj.json") for r in rows[n]}
    count += link_all(coco, _index(store, [VAL2017]), images, "What'sUp COCO-QA", "COCO val2017 is incomplete")
    vg = {f"vg_images/{r[0]}.jpg": f"{r[0]}.jpg" for n in ("vg_qa_one_obj.json", "vg_qa_two_obj.json") for r in rows[n]}
    count += link_all(vg, _index(store, [("whatsup", "vg_images.tar.gz")]), images, "What'sUp VG-QA",
                      "vg_images.tar.gz is incomplete")
    return {"annotation_files": len(WHATSUP), "images": count}


def _crepe(store: DataStore, folder: Path, names: Sequence[str], **_) -> dict:
    extracted = store.extracted("crepe", "prod_hard_negatives.zip")
    csvs = sorted(p for p in extracted.rglob("prod_vg_hard_negs_*_complexity_*.csv"))
    wanted = {}
    for path in csvs:
        _copy(path, folder / path.parent.name / path.name)
        with path.open(newline="", encoding="utf-8") as f:
            wanted.update({f"{row['image_id']}.jpg": f"{row['image_id']}.jpg" for row in csv.DictReader(f)})
    count = link_all(wanted, _index(store, VG_IMAGES), folder / "images", "CREPE", "the Visual Genome zips are incomplete")
    return {"annotation_files": len(csvs), "images": count}


def _aro(store: DataStore, folder: Path, names: Sequence[str], flickr30k_images: str | None = None, **_) -> dict:
    images, count, files = folder / "images", 0, 0
    if {"aro_vg_relation", "aro_vg_attribution"} & set(names):
        wanted = {}
        for name in ("visual_genome_relation.json", "visual_genome_attribution.json"):
            path = store.file("aro", name)
            _copy(path, folder / name)
            files += 1
            wanted.update({row["image_path"]: Path(row["image_path"]).name for row in _json(path)})
        count += link_all(wanted, _index(store, [("aro", "vgr_vga_images.zip")]), images, "ARO VG",
                          "vgr_vga_images.zip is incomplete")
    if "aro_coco_order" in names:
        path = store.file("blip-karpathy-test", "coco_karpathy_test.json")
        _copy(path, folder / path.name)
        files += 1
        wanted = {row["image"]: Path(row["image"]).name for row in _json(path)}
        count += link_all(wanted, _index(store, [VAL2014]), images, "ARO COCO-Order", "COCO val2014 is incomplete")
    if "aro_flickr_order" in names:
        path = store.file("blip-karpathy-test", "flickr30k_test.json")
        _copy(path, folder / path.name)
        files += 1
        wanted = {row["image"]: Path(row["image"]).name for row in _json(path)}
        count += link_all(wanted, _flickr_index(store, flickr30k_images), images, "ARO Flickr30k-Order",
                          "the Flickr30k test images are incomplete")
    return {"annotation_files": files, "images": count}


def _winoground(store: DataStore, folder: Path, names: Sequence[str], **_) -> dict:
    path = store.file("winoground", "examples.jsonl")
    _copy(path, folder / "examples.jsonl")
    with path.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    wanted = {f"{row[k]}.png": f"{row[k]}.png" for row in rows for k in ("image_0", "image_1")}
    count = link_all(wanted, _index(store, [("winoground", "images.zip")]), folder / "images", "Winoground",
                     "images.zip is incomplete")
    return {"annotation_files": 1, "images": count}


def _coco(store: DataStore, folder: Path, names: Sequence[str], **_) -> dict:
    from .training import read_parquet_rows

    rows = read_parquet_rows(store, "test")
    images = [{"filepath": r["filepath"], "filename": r["filename"], "split": "test", "cocoid": r["cocoid"],
               "sentences": [{"raw": s["raw"] if isinstance(s, dict) else s} for s in r["sentences"]]} for r in rows]
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "dataset_coco.json.tmp"
    tmp.write_text(json.dumps({"dataset": "coco", "images": images}), encoding="utf-8")
    os.replace(tmp, folder / "dataset_coco.json")
    wanted = {f"{r['filepath']}/{r['filename']}": r["filename"] for r in rows}
    count = link_all(wanted, _index(store, [VAL2014]), folder / "images", "COCO retrieval", "COCO val2014 is incomplete")
    return {"annotation_files": 1, "images": count, "note": "dataset_coco.json holds the Karpathy test split only"}


def _flickr_index(store: DataStore, flickr30k_images: str | None) -> dict[str, Path]:
    if flickr30k_images:
        folder = Path(flickr30k_images)
        if not folder.is_dir():
            raise UsageError(f"--flickr30k_images {folder} is not a folder")
        return basename_index([folder.resolve()])
    return _index(store, [FLICKR_TEST_IMAGES])


def _flickr30k(store: DataStore, folder: Path, names: Sequence[str], flickr30k_images: str | None = None,
               **_) -> dict:
    path = store.file("flickr30k-karpathy", "dataset_flickr30k.json")
    _copy(path, folder / "dataset_flickr30k.json")
    rows = [r for r in _json(path)["images"] if r["split"] == "test"]
    wanted = {r["filename"]: r["filename"] for r in rows}
    count = link_all(wanted, _flickr_index(store, flickr30k_images), folder / "images", "Flickr30k retrieval",
                     "the Flickr30k test images are incomplete (or pass --flickr30k_images)")
    return {"annotation_files": 1, "images": count}


def _zeroshot(store: DataStore, folder: Path, names: Sequence[str], imagenet_dir: str | None = None, **_) -> dict:
    if not imagenet_dir:
        raise UsageError("zero-shot classification needs your ImageNet validation images: pass --imagenet_dir (one "
                         "subfolder per class; ImageNet needs an account at https://image-net.org)")
    source = Path(imagenet_dir)
    classes = sorted(p for p in source.iterdir() if p.is_dir()) if source.is_dir() else []
    classnames = _json(store.file("imagenet-prompts", "en_classnames.json"))["imagenet1k"]
    templates = _json(store.file("imagenet-prompts", "en_zeroshot_classification_templates.json"))["imagenet1k"]
    if len(classes) != len(classnames):
        raise UsageError(f"--imagenet_dir {source}: {len(classes)} class folders, ImageNet-1k has {len(classnames)} "
                         "(one subfolder per WordNet id, n01440764 ... n15075141)")
    for cls in classes:
        link(cls.resolve(), folder / cls.name)
    (folder / "classnames.txt").write_text("\n".join(classnames) + "\n", encoding="utf-8")
    (folder / "templates.txt").write_text("\n".join(t.replace("{c}", "{}") for t in templates) + "\n",
                                          encoding="utf-8")
    images = sum(1 for cls in classes for p in cls.iterdir() if p.is_file())
    return {"classes": len(classes), "images_in_folder": images, "templates": len(templates)}


BUILDERS: dict[str, Callable[..., dict]] = {
    "sugarcrepe": _sugarcrepe, "sugarcrepe_pp": _sugarcrepe_pp, "valse": _valse, "whatsup": _whatsup,
    "crepe": _crepe, "aro": _aro, "winoground": _winoground, "coco": _coco, "flickr30k": _flickr30k,
    "zeroshot": _zeroshot,
}


def prepare_benchmarks(store: DataStore, root: str | Path, names: Sequence[str], imagenet_dir: str | None = None,
                       flickr30k_images: str | None = None, check_space: bool = True) -> dict[str, dict]:
    """Lay out every benchmark of ``names`` (names or sets) under ``root``; finished folders are kept."""
    root = Path(root)
    plan = folders_for(names)
    todo = {f: n for f, n in plan.items() if not (is_prepared(root / f) and _same_names(root / f, n))}
    if check_space:
        store.check_space([x for f, n in todo.items() for x in files_for(f, n, flickr30k_images)])
    summary = {}
    for folder, members in plan.items():
        if folder not in todo:
            summary[folder] = json.loads((root / folder / MARKER).read_text())
            continue
        result = BUILDERS[folder](store, root / folder, members, imagenet_dir=imagenet_dir,
                                  flickr30k_images=flickr30k_images)
        result["benchmarks"] = members
        (root / folder / MARKER).write_text(json.dumps(result, indent=1) + "\n")
        summary[folder] = result
    return summary


def _same_names(folder: Path, names: Sequence[str]) -> bool:
    recorded = json.loads((folder / MARKER).read_text()).get("benchmarks", [])
    return set(names) <= set(recorded)
