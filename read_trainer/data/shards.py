"""Writing READ rows as shards for streaming: webdataset ``.tar`` or ``.parquet``.

A webdataset sample is ``<key>.<ext>`` (the image's bytes) beside ``<key>.json``
(``captions`` and, when the row has them, ``paraphrases`` and ``negatives``); a parquet
shard has the columns ``__key__``, ``image`` (``datasets.Image``), ``captions``, ... .
Keys are the rows' ``row_id`` s, zero-padded, so an invalid-rows report names the source
row. Images keep their original bytes when already in the shard's format and are
re-encoded otherwise (the webdataset builder types a field by its extension, so one
format per shard set). Bytes that do not decode are written unchanged: the stream then
reports them with shard and key instead of the writer dropping them silently.
"""

from __future__ import annotations

import io
import json
import logging
import os
import tarfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from PIL import Image, UnidentifiedImageError

logger = logging.getLogger(__name__)

PIL_FORMATS = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP"}
TEXT_FIELDS = ("captions", "paraphrases", "negatives")


def _raw_image(value: Any) -> tuple[bytes | None, Image.Image | None]:
    """(encoded bytes, or an already decoded PIL image) of a row's image field."""
    if isinstance(value, Image.Image):
        return None, value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value), None
    if isinstance(value, dict) and value.get("bytes"):
        return value["bytes"], None
    path = value.get("path") if isinstance(value, dict) else value
    if isinstance(path, str) and os.path.isfile(path):
        return Path(path).read_bytes(), None
    return b"", None  # missing: written empty, reported by the stream


def image_bytes(value: Any, image_format: str) -> tuple[bytes, bool]:
    """The image as ``image_format`` bytes, and whether it decodes at all."""
    data, image = _raw_image(value)
    if image is None:
        try:
            image = Image.open(io.BytesIO(data))
            if image.format == PIL_FORMATS[image_format]:
                image.load()
                return data, True
            image.load()
        except (OSError, UnidentifiedImageError, SyntaxError):
            return data, False
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format=PIL_FORMATS[image_format])
    return buffer.getvalue(), True


def _key(row: dict, position: int) -> str:
    row_id = row.get("row_id", position)
    # webdataset splits a file name at its first dot into key and field.
    return f"{row_id:09d}" if isinstance(row_id, int) else str(row_id).replace(".", "_").replace("/", "_")


def _chunks(rows: Iterable[dict], size: int) -> Iterator[list[tuple[int, dict]]]:
    chunk = []
    for position, row in enumerate(rows):
        chunk.append((position, row))
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def write_webdataset_shards(rows: Iterable[dict], folder: str, samples_per_shard: int = 1000,
                            prefix: str = "train", image_format: str = "jpg") -> list[str]:
    """Write ``rows`` (READ's row schema) as ``<prefix>-00000.tar``, ...; return the paths."""
    if image_format not in PIL_FORMATS:
        raise ValueError(f"image_format must be one of {sorted(PIL_FORMATS)}, got {image_format!r}")
    Path(folder).mkdir(parents=True, exist_ok=True)
    paths, undecodable = [], 0
    for number, chunk in enumerate(_chunks(rows, samples_per_shard)):
        path = os.path.join(folder, f"{prefix}-{number:05d}.tar")
        with tarfile.open(path, "w") as tar:
            for position, row in chunk:
                key = _key(row, position)
                data, ok = image_bytes(row.get("image"), image_format)
                undecodable += not ok
                meta = {k: row[k] for k in TEXT_FIELDS if row.get(k) is not None}
                for name, payload in ((f"{key}.{image_format}", data),
                                      (f"{key}.json", json.dumps(meta, ensure_ascii=False).encode())):
                    info = tarfile.TarInfo(name)
                    info.size = len(payload)
                    tar.addfile(info, io.BytesIO(payload))
        paths.append(path)
    if undecodable:
        logger.warning("%d image(s) do not decode; written unchanged (streaming reports them)", undecodable)
    return paths


def write_parquet_shards(rows: Iterable[dict], folder: str, samples_per_shard: int = 1000,
                         prefix: str = "train", image_format: str = "jpg") -> list[str]:
    """Write ``rows`` as ``<prefix>-00000.parquet``, ... (``datasets.Image`` column); return the paths."""
    import datasets

    Path(folder).mkdir(parents=True, exist_ok=True)
    paths = []
    for number, chunk in enumerate(_chunks(rows, samples_per_shard)):
        records = []
        for position, row in chunk:
            key = _key(row, position)
            record = {"__key__": key, "image": {"bytes": image_bytes(row.get("image"), image_format)[0],
                                                 "path": f"{key}.{image_format}"}}
            record.update({k: row[k] for k in TEXT_FIELDS if k in row})
            records.append(record)
        path = os.path.join(folder, f"{prefix}-{number:05d}.parquet")
        datasets.Dataset.from_list(records).cast_column("image", datasets.Image(decode=False)).to_parquet(path)
        paths.append(path)
    return paths
