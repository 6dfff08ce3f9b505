"""A local stand-in for every download host: an HTTP server on 127.0.0.1 and tiny copies of the sources.

``MirrorServer`` serves a folder over HTTP/1.0 with ``Range`` requests, counts the body bytes it sends
per path, can drop a connection part-way through a file once (``cut_once``) or answer a path with an
error status (``fail``), and answers Hub-style ``<repo type>s/<repo>/resolve/<revision>/<path>`` URLs
with the headers ``huggingface_hub`` needs (``X-Repo-Commit``, an ``ETag`` holding the file's sha256).

``build_mirror`` writes small files in the real sources' layouts and names (zip/tar members, JSON
and parquet columns, Python-literal JSONL lines) at the paths the package's manifest maps them to
under a mirror, and a manifest of its own: the real entries with this data's sizes, checksums, row
and file counts.
"""

from __future__ import annotations

import collections
import copy
import hashlib
import http.server
import io
import json
import re
import socket
import tarfile
import threading
import zipfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
from PIL import Image

HUB_COMMIT = "0123456789abcdef0123456789abcdef01234567"
HUB_PATH = re.compile(r"^(datasets|models|spaces)/.+/resolve/[^/]+/.+")


class MirrorServer:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.sent: collections.Counter = collections.Counter()
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        self.cut_once: dict[str, int] = {}
        self.fail: dict[str, tuple[int, dict]] = {}
        self._sha: dict[Path, str] = {}
        self._lock = threading.Lock()

    def sha256(self, path: Path) -> str:
        if path not in self._sha:
            self._sha[path] = hashlib.sha256(path.read_bytes()).hexdigest()
        return self._sha[path]

    def handler(self):
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_HEAD(self):
                self._serve(body=False)

            def do_GET(self):
                self._serve(body=True)

            def _serve(self, body: bool):
                path = unquote(urlsplit(self.path).path).lstrip("/")
                with server._lock:
                    server.requests.append((self.command, path, self.headers.get("Range")))
                hub = bool(HUB_PATH.match(path))
                if path in server.fail:
                    status, headers = server.fail[path]
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    if hub:
                        self.send_header("X-Repo-Commit", HUB_COMMIT)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                file = server.root / path
                if not file.is_file():
                    self.send_response(404)
                    if hub:
                        self.send_header("X-Error-Code", "EntryNotFound")
                        self.send_header("X-Repo-Commit", HUB_COMMIT)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = file.read_bytes()
                etag = f'"{server.sha256(file)}"'
                start = 0
                ranged = self.headers.get("Range")
                if_range = self.headers.get("If-Range")
                if ranged and (if_range is None or if_range == etag):
                    match = re.fullmatch(r"bytes=(\d+)-(\d*)", ranged.strip())
                    start = int(match.group(1))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    end = int(match.group(2)) if match.group(2) else len(data) - 1
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
                    data = data[start:end + 1]
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Content-Type", "text/html" if file.suffix == ".html" else "application/octet-stream")
                self.send_header("ETag", etag)
                self.send_header("Accept-Ranges", "bytes")
                if hub:
                    self.send_header("X-Repo-Commit", HUB_COMMIT)
                self.end_headers()
                if not body:
                    return
                cut = server.cut_once.pop(path, None) if self.command == "GET" else None
                payload = data if cut is None else data[:cut]
                self.wfile.write(payload)
                with server._lock:
                    server.sent[path] += len(payload)
                if cut is not None:
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)

        return Handler

    def __enter__(self) -> "MirrorServer":
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


# -- tiny data in the real layouts -------------------------------------------------------------


def jpeg(seed: int, size: int = 12) -> bytes:
    rng = np.random.default_rng(seed)
    out = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(out, "JPEG")
    return out.getvalue()


def png(seed: int, size: int = 12) -> bytes:
    rng = np.random.default_rng(seed)
    out = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(out, "PNG")
    return out.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return out.getvalue()


def tar_gz_bytes(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return out.getvalue()


def parquet_bytes(rows: list[dict]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), out)
    return out.getvalue()


TRAIN_CAPTIONS = {
    11: ["a red cube to the left of a blue sphere", "a blue sphere right of a red cube", "two shapes on a table"],
    12: ["a man riding a brown horse on the beach", "a horse with a man on the sand"],
    13: ["a cat sleeping on a wooden table next to a laptop", "a laptop beside a sleeping cat"],
    14: ["a child flying a kite in a grassy field", "a kite above a child in a field"],
    21: ["a red cube to the left of a blue sphere", "two shapes on a table"],
    22: ["a man riding a brown horse on the beach", "a horse with a man on the sand"],
}
TEST_CAPTIONS = {31: ["a cat sleeping on a wooden table", "a laptop beside a cat"],
                 32: ["a child flying a kite", "a kite above a field"]}
VAL2017 = [61, 62, 63]


def _karpathy_row(cocoid: int, split: str, captions: list[str]) -> dict:
    folder = "train2014" if split == "train" else "val2014"
    return {"filepath": folder, "filename": f"COCO_{folder}_{cocoid:012d}.jpg", "sentids": list(range(len(captions))),
            "imgid": cocoid, "split": split, "sentences": captions, "cocoid": cocoid,
            "url": f"http://images.cocodataset.org/{folder}/COCO_{folder}_{cocoid:012d}.jpg"}


def fixture_files() -> dict[tuple[str, str], bytes]:
    """(source id, file name) -> the bytes of a tiny stand-in in the real layout."""
    f: dict[tuple[str, str], bytes] = {}
    train = {f"train2014/COCO_train2014_{i:012d}.jpg": jpeg(i) for i in (11, 12, 13, 14, 41)}
    f["coco-train2014", "train2014.zip"] = zip_bytes(train)
    f["coco-val2014", "val2014.zip"] = zip_bytes({f"val2014/COCO_val2014_{i:012d}.jpg": jpeg(i)
                                                  for i in (21, 22, 31, 32, 51)})
    f["coco-val2017", "val2017.zip"] = zip_bytes({f"val2017/{i:012d}.jpg": jpeg(i) for i in VAL2017})
    rows = {"train": [_karpathy_row(i, "train", TRAIN_CAPTIONS[i]) for i in (11, 12, 13, 14)],
            "restval": [_karpathy_row(i, "restval", TRAIN_CAPTIONS[i]) for i in (21, 22)],
            "test": [_karpathy_row(i, "test", c) for i, c in TEST_CAPTIONS.items()]}
    for split, table in rows.items():
        f["karpathy-coco", f"{split}.parquet"] = parquet_bytes(table)
    # READ's hub copy: Python-literal lines (single quotes), images flat by file name.
    lines = [repr({"filename": f"COCO_train2014_{i:012d}.jpg", "sentences": TRAIN_CAPTIONS[i], "cocoid": str(i)})
             for i in (11, 12, 13, 14)]
    f["read-coco-karpathy", "examples.jsonl"] = ("\n".join(lines) + "\n").encode()
    f["read-coco-karpathy", "images.zip"] = zip_bytes({f"COCO_train2014_{i:012d}.jpg": jpeg(i) for i in (11, 12, 13, 14)})
    f["read-zero-paraphrases", "zero.json"] = json.dumps(
        {str(i): [f"in short {c}" for c in caps] for i, caps in TRAIN_CAPTIONS.items() if i != 14}).encode()
    for subset in ("add_att", "add_obj", "replace_att", "replace_obj", "replace_rel", "swap_att", "swap_obj"):
        f["sugarcrepe", f"{subset}.json"] = json.dumps({
            "0": {"filename": "000000000061.jpg", "caption": "a red cube to the left of a blue sphere",
                  "negative_caption": "a blue cube to the left of a red sphere"},
            "1": {"filename": "000000000062.jpg", "caption": "a man riding a brown horse",
                  "negative_caption": "a horse riding a brown man"}}).encode()
    for subset in ("replace_att", "replace_obj", "replace_rel", "swap_att", "swap_obj"):
        f["sugarcrepe-pp", f"{subset}.json"] = json.dumps([
            {"id": 0, "filename": "000000000061.jpg", "caption": "a red cube to the left of a blue sphere",
             "caption2": "a blue sphere right of a red cube", "negative_caption": "a blue cube left of a red sphere"},
            {"id": 1, "filename": "000000000063.jpg", "caption": "a cat sleeping on a table",
             "caption2": "a table with a sleeping cat", "negative_caption": "a table sleeping on a cat"}]).encode()
    valse_images = {"visual7w": "v7w_1.jpg", "SWiG": "jumping_1.jpg", "VisDial_v1.0": "COCO_train2014_000000000041.jpg",
                    "FOIL dataset": "COCO_val2014_000000000051.jpg", "coco2017": "000000000061.jpg",
                    "coco_2017": "000000000062.jpg"}
    pieces = {"existence": "visual7w", "plurals": "coco2017", "counting-hard": "visual7w",
              "counting-small-quant": "visual7w", "counting-adversarial": "visual7w", "relations": "coco_2017",
              "action-replacement": "SWiG", "actant-swap": "SWiG", "coreference-standard": "VisDial_v1.0",
              "coreference-hard": "VisDial_v1.0", "foil-it": "FOIL dataset"}
    for piece, dataset in pieces.items():
        image = "VisualDialog_val2018_000000000001.jpg" if piece == "coreference-hard" else valse_images[dataset]
        f["valse", f"{piece}.json"] = json.dumps({
            "a": {"dataset": dataset, "image_file": image, "caption": "a man riding a horse",
                  "foil": "a horse riding a man", "mturk": {"caption": 3, "foil": 0, "other": 0}},
            # An invalid sample (mturk.caption < 2) whose image is in no source: never needed.
            "b": {"dataset": dataset, "image_file": "not_validated.jpg", "caption": "x", "foil": "y",
                  "mturk": {"caption": 1, "foil": 2, "other": 0}}}).encode()
    f["visual7w-images", "visual7w_images.zip"] = zip_bytes({"images/v7w_1.jpg": jpeg(101)})
    f["swig-images", "images_512.zip"] = zip_bytes({"images_512/jumping_1.jpg": jpeg(102)})
    f["visdial-val2018-images", "VisualDialog_val2018.zip"] = zip_bytes(
        {"VisualDialog_val2018/VisualDialog_val2018_000000000001.jpg": jpeg(103)})
    options = ["a mug left of a plate", "a mug right of a plate", "a mug on a plate", "a mug under a plate"]
    f["whatsup", "controlled_images_dataset.json"] = json.dumps(
        [{"image_path": "data/controlled_images/mug_left_of_plate.jpeg", "caption_options": options}]).encode()
    f["whatsup", "controlled_clevr_dataset.json"] = json.dumps(
        [{"image_path": "data/controlled_clevr/cube_left_of_sphere.jpeg", "caption_options": options}]).encode()
    f["whatsup", "coco_qa_one_obj.json"] = json.dumps([[61, "a cube on the left", "a cube on the right"]]).encode()
    f["whatsup", "coco_qa_two_obj.json"] = json.dumps([[62, "a horse below a man", "a horse above a man"]]).encode()
    f["whatsup", "vg_qa_one_obj.json"] = json.dumps([[71, "a kite above", "a kite below"]]).encode()
    f["whatsup", "vg_qa_two_obj.json"] = json.dumps([[72, "a cat left of a laptop", "a cat right of a laptop"]]).encode()
    f["whatsup", "controlled_images.tar.gz"] = tar_gz_bytes({"controlled_images/mug_left_of_plate.jpeg": jpeg(111)})
    f["whatsup", "controlled_clevr.tar.gz"] = tar_gz_bytes({"controlled_clevr/cube_left_of_sphere.jpeg": jpeg(112)})
    f["whatsup", "vg_images.tar.gz"] = tar_gz_bytes({"vg_images/71.jpg": jpeg(171), "vg_images/72.jpg": jpeg(172)})
    crepe = {}
    for kind in ("atom", "swap", "negate"):
        for k in range(4, 13):
            image_id = 81 if k % 2 else 82
            crepe[f"prod_hard_negatives/{kind}/prod_vg_hard_negs_{kind}_complexity_{k}.csv"] = (
                "image_id,x,y,width,height,caption,hard_negs\n"
                f"{image_id},1,1,8,8,a man riding a horse,\"['a horse riding a man', 'a man riding a cat']\"\n").encode()
    f["crepe", "prod_hard_negatives.zip"] = zip_bytes(crepe)
    f["visual-genome", "images.zip"] = zip_bytes({"VG_100K/81.jpg": jpeg(181)})
    f["visual-genome", "images2.zip"] = zip_bytes({"VG_100K_2/82.jpg": jpeg(182)})
    f["flickr30k-karpathy", "dataset_flickr30k.json"] = json.dumps({"dataset": "flickr30k", "images": [
        {"filename": "1001.jpg", "split": "test", "sentences": [{"raw": "a dog runs on the grass"},
                                                               {"raw": "a dog on a lawn"}]},
        {"filename": "1002.jpg", "split": "test", "sentences": [{"raw": "two people ride bikes"},
                                                               {"raw": "cyclists on a road"}]},
        {"filename": "2001.jpg", "split": "train", "sentences": [{"raw": "not a test image"}]}]}).encode()
    f["flickr30k-test-images", "images_flickr_1k_test.zip"] = zip_bytes(
        {"images_flickr_1k_test/1001.jpg": jpeg(201), "images_flickr_1k_test/1002.jpg": jpeg(202)})
    f["imagenet-prompts", "en_classnames.json"] = json.dumps({"imagenet1k": ["tench", "goldfish"],
                                                              "cifar10": ["airplane"]}).encode()
    f["imagenet-prompts", "en_zeroshot_classification_templates.json"] = json.dumps(
        {"imagenet1k": ["a photo of a {c}.", "a bad photo of the {c}."]}).encode()
    box = {"bbox_x": 1, "bbox_y": 1, "bbox_w": 8, "bbox_h": 8}
    f["aro", "visual_genome_relation.json"] = json.dumps([
        {"image_path": "2316491.jpg", **box, "true_caption": "the cup is on the table",
         "false_caption": "the table is on the cup", "relation_name": "on"}]).encode()
    f["aro", "visual_genome_attribution.json"] = json.dumps([
        {"image_path": "2316492.jpg", **box, "true_caption": "the red cup and the blue table",
         "false_caption": "the blue cup and the red table", "attributes": ["red", "blue"]}]).encode()
    f["aro", "vgr_vga_images.zip"] = zip_bytes({"images/2316491.jpg": jpeg(291), "images/2316492.jpg": jpeg(292)})
    f["blip-karpathy-test", "coco_karpathy_test.json"] = json.dumps(
        [{"image": "val2014/COCO_val2014_000000000031.jpg", "caption": TEST_CAPTIONS[31]}]).encode()
    f["blip-karpathy-test", "flickr30k_test.json"] = json.dumps(
        [{"image": "flickr30k-images/1001.jpg", "caption": ["a dog runs on the grass"]}]).encode()
    f["winoground", "examples.jsonl"] = (json.dumps({"id": 0, "image_0": "ex_0_img_0", "image_1": "ex_0_img_1",
                                                     "caption_0": "a cat on a mat", "caption_1": "a mat on a cat",
                                                     "collapsed_tag": "Object"}) + "\n").encode()
    f["winoground", "images.zip"] = zip_bytes({"images/ex_0_img_0.png": png(301), "images/ex_0_img_1.png": png(302)})
    return f


def _git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _count(data: bytes, name: str, pattern: str) -> int:
    import fnmatch

    if name.endswith(".zip"):
        members = zipfile.ZipFile(io.BytesIO(data)).namelist()
    else:
        members = tarfile.open(fileobj=io.BytesIO(data)).getnames()
    return sum(fnmatch.fnmatchcase(m, pattern) for m in members)


def mirror_location(root: Path, file: dict) -> Path:
    if "hub" in file:
        hub = file["hub"]
        return root / f"{hub.get('repo_type', 'dataset')}s" / hub["repo_id"] / "resolve" / hub.get("revision", "main") \
            / hub["path"]
    if file.get("mirror_path"):
        return root / file["mirror_path"]
    parts = urlsplit(file["url"])
    return root / f"{parts.hostname}{parts.path}"


def build_mirror(root: str | Path, real_manifest: str | Path) -> tuple[Path, Path, dict]:
    """Write the tiny sources under ``root/mirror`` and their manifest to ``root/manifest.json``.

    Returns (mirror folder, manifest path, the fixture bytes by (source, file)).
    """
    root = Path(root)
    mirror = root / "mirror"
    data = fixture_files()
    real = json.loads(Path(real_manifest).read_text())
    sources = {}
    for source_id, entry in real["sources"].items():
        entry = copy.deepcopy(entry)
        files = []
        for file in entry.get("files", []):
            key = (source_id, file["name"])
            if key not in data:
                raise KeyError(f"no fixture for {key}")
            body = data[key]
            location = mirror_location(mirror, file)
            location.parent.mkdir(parents=True, exist_ok=True)
            location.write_bytes(body)
            file.pop("bundled", None)  # the test data is downloaded from the mirror, not the package's copies
            if "bytes" in file:
                file["bytes"] = len(body)
            if "sha256" in file:
                file["sha256"] = hashlib.sha256(body).hexdigest()
            if "md5" in file:
                file["md5"] = hashlib.md5(body).hexdigest()
            if "git_sha1" in file:
                file["git_sha1"] = _git_sha1(body)
            if "rows" in file:
                import pyarrow.parquet as pq

                file["rows"] = pq.read_table(io.BytesIO(body)).num_rows
            if file.get("extract", {}).get("count") is not None:
                file["extract"]["count"] = _count(body, file["name"], file["extract"]["pattern"])
            files.append(file)
        entry["files"] = files
        sources[source_id] = entry
    manifest = root / "manifest.json"
    manifest.write_text(json.dumps({"version": 1, "sources": sources}, indent=1))
    return mirror, manifest, data


def imagenet_folder(root: str | Path) -> Path:
    """A user's ImageNet-style folder: one subfolder per class (two classes here)."""
    folder = Path(root) / "imagenet_val"
    for c, wnid in enumerate(("n01440764", "n01443537")):
        (folder / wnid).mkdir(parents=True, exist_ok=True)
        for i in range(2):
            (folder / wnid / f"ILSVRC2012_val_{c}{i}.JPEG").write_bytes(jpeg(400 + 10 * c + i))
    return folder
