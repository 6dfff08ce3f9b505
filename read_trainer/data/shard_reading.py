"""Reading the samples of one shard: a damaged shard is a reported entry, never a crash or a silent stop.

A webdataset ``.tar`` is read here (not by ``datasets``' builder): a truncated tar used to end
the run naming no shard, and a corrupt member header silently ended the shard (tarfile stops
at a header it cannot read, as at the end of the archive). Here the end is checked: the
archive must stop at its end-of-archive block with nothing but zero bytes after it.

Every reader yields raw rows (``__key__`` plus the sample's fields) and, when the shard cannot
be read to its end, one last row holding ``SHARD_ERROR``: what went wrong, where, and how many
samples were read before. A sample that cannot be parsed (a JSONL line or a ``.json`` part
that is not JSON) carries ``SAMPLE_PROBLEMS``. ``ValidatedStream`` reports both in the
invalid-rows report, with the shard's name, and counts them against ``max_invalid_fraction``.

Only these fields are decoded: ``json``/``jsn`` (JSON), ``txt``/``text`` (UTF-8) and images
(kept encoded, as ``{"bytes", "path"}``); anything else stays bytes. Nothing is unpickled.
"""

from __future__ import annotations

import json
import re
import tarfile
from typing import Iterator

import fsspec

SHARD_ERROR = "__shard_error__"
SAMPLE_PROBLEMS = "__problems__"

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff")
_KEY_AND_FIELD = re.compile(r"^((?:.*/|)[^./]+)\.([^/]*)$")  # webdataset: key = path up to the first dot


def shard_rows(shard: str, builder: str) -> Iterator[dict]:
    """The raw rows of ``shard`` (``builder``: webdataset, json or parquet), each with ``__key__`` and ``__url__``.

    Never raises for a damaged shard: the last row then holds ``SHARD_ERROR``.
    """
    read = 0
    try:
        for row in _READERS[_reader_kind(shard, builder)](shard):
            row.setdefault("__key__", str(read))
            row["__url__"] = shard
            read += 1
            yield row
    except Exception as error:  # noqa: BLE001 - whatever a damaged file makes a reader raise
        yield {"__key__": f"(shard, after {read} samples)", "__url__": shard,
               SHARD_ERROR: f"shard cannot be read to its end, the rest of it is skipped after {read} samples: "
                            f"{_describe(error)}"}


def _reader_kind(shard: str, builder: str) -> str:
    if builder == "json" and shard.split("?")[0].lower().endswith(".jsonl"):
        return "jsonl"
    return builder


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {' '.join(str(error).split())[:300]}"


# -- webdataset ---------------------------------------------------------------------------


class DamagedTarError(ValueError):
    """The tar archive does not end where a complete archive ends."""


class _StopRecordingTarInfo(tarfile.TarInfo):
    """Records on the archive why tarfile stopped: it ends silently at any header it cannot read."""

    @classmethod
    def fromtarfile(cls, archive):
        try:
            return super().fromtarfile(archive)
        except tarfile.HeaderError as error:
            archive.stop_reason = error
            raise


def _tar_rows(shard: str) -> Iterator[dict]:
    with fsspec.open(shard, "rb") as raw:
        archive = tarfile.open(fileobj=raw, mode="r|", tarinfo=_StopRecordingTarInfo)
        sample: dict = {}
        try:
            for member in archive:
                if not member.isreg():
                    continue
                match = _KEY_AND_FIELD.match(member.name)
                if match is None or member.name.rsplit("/", 1)[-1].startswith((".", "__")):
                    continue  # no extension, or hidden: not a part of a sample (as datasets reads them)
                key, field = match.groups()
                if sample and sample["__key__"] != key:
                    yield _decoded(sample)
                    sample = {}
                sample["__key__"] = key
                data = archive.extractfile(member).read()  # a truncated member raises ReadError here
                if field in sample:
                    sample.setdefault(SAMPLE_PROBLEMS, []).append(f"duplicate part {field!r} in the tar")
                sample[field] = data
        except (tarfile.TarError, OSError, EOFError) as error:
            where = f" in sample {sample['__key__']!r}" if sample else ""
            raise DamagedTarError(f"{_describe(error)}{where} (truncated or corrupt)") from error
        if sample:
            yield _decoded(sample)
        _check_tar_end(archive, archive.offset)


def _check_tar_end(archive: tarfile.TarFile, offset: int) -> None:
    """Raise ``DamagedTarError`` unless the archive stopped at a zero block followed only by zero bytes."""
    reason = getattr(archive, "stop_reason", None)
    if not isinstance(reason, tarfile.EOFHeaderError):
        what = ("the file ends without the end-of-archive blocks (truncated)"
                if isinstance(reason, (tarfile.EmptyHeaderError, tarfile.TruncatedHeaderError))
                else f"corrupt member header at byte {offset} ({reason})")
        raise DamagedTarError(what)
    position = offset + tarfile.BLOCKSIZE
    while block := archive.fileobj.read(1 << 16):
        if block.count(0) != len(block):
            first = position + next(i for i, b in enumerate(block) if b)
            raise DamagedTarError(f"data after an all-zero header at byte {offset} (at byte {first}): "
                                  "a zeroed or corrupt member header")
        position += len(block)


def _decoded(sample: dict) -> dict:
    for field in [f for f in sample if not f.startswith("__")]:
        extension = field.rsplit(".", 1)[-1].lower()
        data = sample[field]
        if extension in ("json", "jsn"):
            try:
                sample[field] = json.loads(data)
            except ValueError as err:  # JSONDecodeError and UnicodeDecodeError
                sample[field] = None
                sample.setdefault(SAMPLE_PROBLEMS, []).append(f"part {field!r} is not valid JSON ({err})")
        elif extension in ("txt", "text"):
            # Invalid UTF-8 is kept as bytes: the text checks name it for the row.
            try:
                sample[field] = data.decode("utf-8")
            except UnicodeDecodeError:
                pass
        elif extension in IMAGE_EXTENSIONS:
            sample[field] = {"bytes": data, "path": f"{sample['__key__']}.{field}"}
    return sample


# -- JSONL, JSON and parquet ------------------------------------------------------------------


def _jsonl_rows(shard: str) -> Iterator[dict]:
    """One row per non-blank line; a line that is not a JSON object is a sample with a problem."""
    with fsspec.open(shard, "rb") as f:
        position = 0
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise ValueError(f"a JSON {type(row).__name__}, not an object")
            except ValueError as err:  # a truncated last line, bytes that are not UTF-8, ...
                row = {SAMPLE_PROBLEMS: [f"line {number} is not a JSON object ({' '.join(str(err).split())[:200]})"]}
            row.setdefault("__key__", str(position))
            position += 1
            yield row


def _builder_rows(builder: str):
    def read(shard: str) -> Iterator[dict]:
        import datasets

        part = datasets.load_dataset(builder, data_files=[shard], split="train", streaming=True).decode(False)
        # ``iter`` rather than ``for row in part``: inside a DataLoader worker the latter would
        # split this one shard among the workers again (the caller already holds the share).
        for batch in part.iter(batch_size=64):
            yield from (dict(zip(batch, values)) for values in zip(*batch.values()))

    return read


_READERS = {"webdataset": _tar_rows, "jsonl": _jsonl_rows, "json": _builder_rows("json"),
            "parquet": _builder_rows("parquet")}
