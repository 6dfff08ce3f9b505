"""READ's row schema, and the one place that decodes a row's image and texts.

One training row (extra keys are ignored)::

    {
      "row_id":      int | str,               # names the row in errors; seeds its sampling
      "image":       PIL.Image | str | bytes | {"path": ..., "bytes": ...},
      "captions":    list[str] | str,         # all human captions of the image
      "paraphrases": list[str] | list[list[str]] | None,  # of the image, or one list per caption
      "negatives":   list[str] | list[list[str]] | None,  # per anchor, or one list per caption
    }

Per-caption lists are aligned by position with the ``captions`` field as given. A blank
or ``None`` caption (blank: nothing but white space, control or format characters such
as NUL) is dropped *together with* the paraphrases and negatives at its position, so the remaining captions keep their own lists; a per-caption field whose
length differs from the captions field is a bad row. Inside a per-caption list a string
is one paraphrase (or negative), never a sequence of letters.

Every problem with a row is a :class:`BadRowError` whose message starts with
``row <id>:`` (a field of the wrong type, e.g. a number where texts belong, included); the collator, the up-front scan and the trainer's check all raise it
from the functions here, so a row the scan accepts is a row the collator can use.

Random choices for a row come from :func:`row_rng`, seeded by (seed, epoch, row_id)
through sha256, so they do not depend on the process, the DataLoader worker or the
order rows are seen in.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import unicodedata
from typing import Any

import numpy as np
from PIL import Image, ImageOps

ROW_ID_COLUMN = "row_id"
IMAGE_COLUMN = "image"
CAPTION_COLUMN = "captions"
PARAPHRASE_COLUMN = "paraphrases"
NEGATIVES_COLUMN = "negatives"

# What a decoder puts in place of bytes that are not valid UTF-8 (``errors="replace"``).
REPLACEMENT_CHARACTER = "\ufffd"

# An image path the loader refused to open (outside the data folder, see loading.py) is kept
# as this prefix + the reason: NUL cannot occur in a path, so no real file is ever mistaken for it,
# and every reader of the row (scan, collator, stream) reports the reason as the row's problem.
REFUSED_IMAGE_PREFIX = "\0refused image path\0"


class BadRowError(ValueError):
    """A dataset row that cannot be used; the message names the row."""


# -- seeded randomness -------------------------------------------------------------------


def sha256_rng(key: str, byteorder: str = "little") -> random.Random:
    """A ``random.Random`` seeded by sha256(``key``): the same stream in every process.

    Python's ``hash()`` of a string is salted per process, so it would give DataLoader
    workers and reruns different draws.
    """
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:8], byteorder))


def row_rng(seed: int, epoch: int, row_id: Any) -> random.Random:
    """A generator private to (seed, epoch, row): stable across processes and workers."""
    return sha256_rng(f"{seed}:{epoch}:{row_id}")


# -- texts -------------------------------------------------------------------------------


def is_blank(text: str) -> bool:
    """Nothing readable: only white space, control (NUL, ...), format (zero-width, BOM) or unassigned characters."""
    return all(unicodedata.category(ch)[0] in "CZ" for ch in text)


def as_text_list(value: Any) -> list[str]:
    """Normalize a caption-like field: a string or a list of strings; blanks dropped."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    return [v.strip() for v in value if isinstance(v, str) and not is_blank(v)]


def _text(value: Any, what: str, row_id: Any) -> str | None:
    """``value`` as a str (bytes decoded as UTF-8), ``None`` for a missing one, or name the row."""
    if value is None:
        return None
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as err:
            raise BadRowError(f"row {row_id!r}: invalid text: {what} is not valid UTF-8 "
                              f"({err.reason} at byte {err.start})") from err
    if not isinstance(value, str):
        raise BadRowError(f"row {row_id!r}: invalid text: {what} must be a string, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:  # lone surrogates, e.g. bytes read with errors="surrogateescape"
        raise BadRowError(f"row {row_id!r}: invalid text: {what} is not valid UTF-8 "
                          f"({err.reason} at character {err.start})") from err
    if REPLACEMENT_CHARACTER in value:
        raise BadRowError(f"row {row_id!r}: invalid text: {what} holds U+FFFD at character "
                          f"{value.index(REPLACEMENT_CHARACTER)} (bytes that were not valid UTF-8 when read)")
    return value


def row_captions(value: Any, row_id: Any, column: str = CAPTION_COLUMN) -> tuple[list[str], list[int]]:
    """The row's usable captions and their positions in the field as given.

    Blank and ``None`` captions are dropped (their positions are skipped, see
    :func:`caption_aligned`); a caption that is not text or not valid UTF-8, or a field
    with no usable caption, is a :class:`BadRowError`.
    """
    if isinstance(value, (str, bytes)) or value is None:
        value = [value]
    elif not isinstance(value, (list, tuple)):
        raise BadRowError(f"row {row_id!r}: invalid text: {column!r} must be a string or a list of strings, "
                          f"got {type(value).__name__}")
    captions, positions = [], []
    for position, item in enumerate(value):
        text = _text(item, f"{column!r} entry {position}", row_id)
        if text is not None and not is_blank(text):
            captions.append(text.strip())
            positions.append(position)
    if not captions:
        raise BadRowError(f"row {row_id!r}: no non-empty caption: {column!r} holds only blank or missing ones "
                          "(white space or control characters only count as blank)")
    return captions, positions


def caption_count(value: Any) -> int:
    """How many captions the field holds as given, blanks included (what per-caption lists align with)."""
    return 1 if isinstance(value, (str, bytes)) or value is None else len(value)


def is_per_caption(value: Any) -> bool:
    """Whether a paraphrases/negatives field is one list per caption rather than one flat list."""
    if value is None or isinstance(value, (str, bytes)):
        return False
    return any(item is not None and not isinstance(item, (str, bytes)) for item in value)


def text_list(value: Any, what: str, row_id: Any) -> list[str]:
    """A flat paraphrase/negative list (or one string) as its non-blank texts; non-text names the row."""
    if value is None:
        return []
    items = [value] if isinstance(value, (str, bytes)) else value
    if not isinstance(items, (list, tuple)):
        raise BadRowError(f"row {row_id!r}: invalid text: {what} must be a string or a list of strings, "
                          f"got {type(value).__name__}")
    texts = (_text(item, what, row_id) for item in items)
    return [t.strip() for t in texts if t is not None and not is_blank(t)]


def caption_aligned(value: Any, raw_captions: Any, positions: list[int], column: str,
                    row_id: Any) -> list[list[str]] | None:
    """The per-caption lists of the usable captions, in order; ``None`` when ``value`` is flat.

    ``positions`` comes from :func:`row_captions`: the list at a dropped caption's
    position is dropped with it. A count that differs from the captions field is a
    :class:`BadRowError`.
    """
    if not is_per_caption(value):
        return None
    n_captions = caption_count(raw_captions)
    if len(value) != n_captions:
        raise BadRowError(f"row {row_id!r}: {column} lists do not match the captions: {len(value)} lists for "
                          f"{n_captions} captions (blank ones included; lists align with captions by position)")
    return [text_list(value[p], f"{column!r} list {p}", row_id) for p in positions]


def per_anchor_texts(value: Any, raw_captions: Any, positions: list[int], column: str, row_id: Any,
                     flat_is_shared: bool) -> list[list[str]] | None:
    """The texts of a paraphrases/negatives field for each usable caption; ``None`` when absent.

    A per-caption field gives each caption its own list (see :func:`caption_aligned`). A
    flat field is shared by every caption when ``flat_is_shared`` (paraphrases describe
    the image); otherwise (negatives are false of one caption, not of the others) it is
    accepted only for a single usable caption or a single string.
    """
    if value is None:
        return None
    if not isinstance(value, (str, bytes, list, tuple)):
        raise BadRowError(f"row {row_id!r}: invalid text: {column!r} must be a string, a list of strings or one "
                          f"list per caption, got {type(value).__name__}")
    aligned = caption_aligned(value, raw_captions, positions, column, row_id)
    if aligned is not None:
        return aligned
    if not flat_is_shared and len(positions) > 1 and not isinstance(value, (str, bytes)):
        raise BadRowError(f"row {row_id!r}: ambiguous {column}: one flat list for {len(positions)} captions; "
                          "give one list per caption")
    flat = text_list(value, repr(column), row_id)
    return [flat] * len(positions)


def row_text_problems(row: dict, row_id: Any, caption_column: str = CAPTION_COLUMN,
                      paraphrase_column: str | None = PARAPHRASE_COLUMN,
                      negatives_column: str | None = NEGATIVES_COLUMN) -> list[str]:
    """Everything wrong with a row's texts, as the collator would find it (empty when usable)."""
    prefix = f"row {row_id!r}: "
    try:
        _, positions = row_captions(row.get(caption_column), row_id, caption_column)
    except BadRowError as err:
        return [str(err).removeprefix(prefix)]
    problems = []
    for column, shared in ((negatives_column, False), (paraphrase_column, True)):
        if column:
            try:
                per_anchor_texts(row.get(column), row.get(caption_column), positions, column, row_id, shared)
            except BadRowError as err:
                problems.append(str(err).removeprefix(prefix))
    return problems


# -- images ------------------------------------------------------------------------------


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB with 8 bits per channel; 16- and 32-bit integer images are scaled by their bit depth.

    PIL's own ``convert("RGB")`` clips integer pixels to 255, which turns a 16-bit
    grayscale TIFF or PNG (modes ``I;16*`` and ``I``) almost entirely white.
    """
    if image.mode.startswith("I;16") or image.mode == "I":
        pixels = np.asarray(image).astype(np.int64)
        low, high = int(pixels.min(initial=0)), int(pixels.max(initial=0))
        # Mode "I" holds 32-bit signed values, but PNG and TIFF readers put 16-bit data in it.
        full_scale = 65535 if image.mode != "I" or (low >= 0 and high <= 65535) else 2**31 - 1
        scaled = (np.clip(pixels, 0, full_scale) * 255 + full_scale // 2) // full_scale
        return Image.fromarray(scaled.astype(np.uint8), "L").convert("RGB")
    return image.convert("RGB")


def _image_source(value: Any) -> tuple[str | None, Any]:
    """(where, opener argument) for an image field, or (None, None) for a missing image."""
    if isinstance(value, Image.Image):
        return "<in-memory image>", value
    if isinstance(value, str) and value:
        return value, value
    if isinstance(value, (bytes, bytearray)) and value:
        return "<embedded bytes>", io.BytesIO(value)
    if isinstance(value, dict) and value.get("bytes"):
        return value.get("path") or "<embedded bytes>", io.BytesIO(value["bytes"])
    if isinstance(value, dict) and value.get("path"):
        return value["path"], value["path"]
    return None, None


ORIENTATION = 0x0112  # the EXIF tag


def refused_image_path(reason: str) -> str:
    """The value an image field holds when its path was refused: decoding it raises ``ValueError(reason)``."""
    return REFUSED_IMAGE_PREFIX + reason


def decode_image(value: Any) -> Image.Image:
    """Fully decode an image field to 8-bit RGB, EXIF orientation applied; raises ``ValueError("<kind>: <detail>")``.

    This is the one image decoder of the package: training rows of every source (map-style,
    imagefolder, stream) and benchmark images all pass through it. The kinds are ``missing
    image``, ``image file not found``, ``image too large``, ``image does not decode`` and the
    reason of a refused path, e.g. ``image path outside the data folder`` (the scan counts
    rows by kind).
    """
    where, source = _image_source(value)
    if source is None:
        raise ValueError(f"missing image (got {type(value).__name__})")
    if isinstance(source, str) and source.startswith(REFUSED_IMAGE_PREFIX):
        raise ValueError(source[len(REFUSED_IMAGE_PREFIX):])
    if isinstance(source, str) and not os.path.isfile(source):
        raise ValueError(f"image file not found: {source}")
    try:
        image = source if isinstance(source, Image.Image) else Image.open(source)
        image.load()  # every pixel: a truncated file passes Image.open and fails here
        if image.getexif().get(ORIENTATION) not in (None, 1):
            # The camera's orientation, as datasets' Image feature and image viewers apply it:
            # the same photo must give the same pixels whichever way the row was loaded.
            image = ImageOps.exif_transpose(image)
        return _to_rgb(image)
    except Image.DecompressionBombError as err:
        raise ValueError(f"image too large: {where} ({err})") from err
    except Exception as err:  # noqa: BLE001 - PIL's plugins raise OSError, SyntaxError, ValueError, struct.error...
        raise ValueError(f"image does not decode: {where} ({err.__class__.__name__}: {err})") from err


def load_image(value: Any, row_id: Any) -> Image.Image:
    """Decode a row's image (PIL, path, bytes or datasets' ``{"path", "bytes"}``) to RGB, or name the row."""
    try:
        return decode_image(value)
    except ValueError as err:
        raise BadRowError(f"row {row_id!r}: {err}") from err


def image_problem(value: Any) -> str | None:
    """``None`` if the image decodes, else the reason (what the scan records for the row)."""
    try:
        decode_image(value)
    except ValueError as err:
        return str(err)
    return None
