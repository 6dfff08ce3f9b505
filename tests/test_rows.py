"""The row module: image decoding (bit depth, decompression bombs), text checks, per-caption alignment."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from read_trainer.data.rows import (
    BadRowError,
    load_image,
    per_anchor_texts,
    row_captions,
    row_rng,
    row_text_problems,
    sha256_rng,
)
from read_trainer.evaluation.embedding import load_image as load_benchmark_image
from read_trainer.evaluation.items import ImageRef

# 16-bit samples spread over the range, and their 8-bit values computed by hand: v * 255 / 65535 rounded.
SAMPLES_16 = np.array([[0, 257, 4096, 32768], [40000, 65280, 65534, 65535]], dtype=np.uint16)
EXPECTED_8 = np.array([[0, 1, 16, 128], [156, 254, 255, 255]], dtype=np.uint8)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_16_bit_grayscale_is_scaled_to_8_bits_not_clipped(tmp_path, fmt):
    path = tmp_path / f"deep.{fmt.lower()}"
    Image.fromarray(SAMPLES_16).save(path, fmt)
    assert Image.open(path).mode.startswith("I;16")  # what a 16-bit grayscale file opens as
    rgb = np.asarray(load_image(str(path), row_id=0))
    assert rgb.shape == (2, 4, 3) and (rgb == EXPECTED_8[..., None]).all()
    # Benchmarks decode their images the same way.
    assert (np.asarray(load_benchmark_image(ImageRef(str(path)))) == rgb).all()


def test_32_bit_integer_image_holding_16_bit_data_is_scaled_by_16_bits():
    image = Image.fromarray(SAMPLES_16.astype(np.int32), "I")
    assert (np.asarray(load_image(image, row_id=0))[..., 0] == EXPECTED_8).all()


def test_8_bit_images_are_unchanged():
    pixels = np.arange(48, dtype=np.uint8).reshape(4, 4, 3) * 5
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    assert (np.asarray(load_image({"bytes": buffer.getvalue(), "path": None}, row_id=0)) == pixels).all()
    assert (np.asarray(load_image(Image.fromarray(pixels[..., 0], "L"), row_id=0))[..., 1] == pixels[..., 0]).all()


def test_decompression_bomb_is_a_named_bad_row(tmp_path, monkeypatch):
    path = tmp_path / "bomb.png"
    Image.new("L", (64, 64)).save(path)  # 4,096 pixels: more than twice the limit set below
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(BadRowError, match=r"row 'r7': image too large: .*bomb\.png"):
        load_image(str(path), "r7")


def test_texts_that_are_not_valid_utf8_name_the_row():
    assert row_captions([b"caf\xc3\xa9 on a corner", "  "], 3) == (["café on a corner"], [0])
    with pytest.raises(BadRowError, match=r"row 3: invalid text: 'captions' entry 1 is not valid UTF-8"):
        row_captions(["a cat", b"a \xff\xfe dog"], 3)
    with pytest.raises(BadRowError, match=r"row 3: invalid text: .*not valid UTF-8"):
        row_captions(["a cat", "a \udcff dog"], 3)  # bytes read with errors="surrogateescape"
    with pytest.raises(BadRowError, match=r"row 3: invalid text: .*U\+FFFD"):
        row_captions(["a cat \ufffd"], 3)  # bytes read with errors="replace"
    with pytest.raises(BadRowError, match=r"row 3: invalid text: 'captions' must be a string or a list"):
        row_captions(42, 3)


def test_a_blank_caption_is_dropped_with_its_per_caption_lists():
    raw = ["a red cube", None, "   ", "a blue ball"]
    captions, kept = row_captions(raw, 0)
    assert captions == ["a red cube", "a blue ball"] and kept == [0, 3]
    per_caption = [["red 1"], ["none 1"], ["blank 1"], ["blue 1", "blue 2"]]
    assert per_anchor_texts(per_caption, raw, kept, "paraphrases", 0, flat_is_shared=True) == \
        [["red 1"], ["blue 1", "blue 2"]]
    # A string inside a per-caption list is one text, not a list of letters.
    assert per_anchor_texts(["red 1", None, [], ["blue 1"]], raw, kept, "paraphrases", 0, True) == \
        [["red 1"], ["blue 1"]]
    # Flat paraphrases describe the image: every caption shares them.
    assert per_anchor_texts(["p", "q"], raw, kept, "paraphrases", 0, True) == [["p", "q"], ["p", "q"]]


def test_per_caption_problems_are_named_with_the_row():
    row = {"captions": ["a red cube", "", "a blue ball"], "negatives": [["x"], ["y"]], "paraphrases": None}
    assert row_text_problems(row, "r1") == [
        "negatives lists do not match the captions: 2 lists for 3 captions "
        "(blank ones included; lists align with captions by position)"]
    row = {"captions": ["a red cube", "a blue ball"], "negatives": ["a red ball", "a blue cube"]}
    assert row_text_problems(row, "r2") == [
        "ambiguous negatives: one flat list for 2 captions; give one list per caption"]
    # With one usable caption a flat list is unambiguous.
    assert row_text_problems(dict(row, captions=["a red cube", " "]), "r3") == []


def test_one_seeded_rng_recipe():
    # sha256 of the key, first 8 bytes: a stream independent of the process (hash() is salted).
    import hashlib
    import random

    digest = hashlib.sha256(b"7:2:img-3").digest()
    expected = random.Random(int.from_bytes(digest[:8], "little")).random()
    assert row_rng(7, 2, "img-3").random() == sha256_rng("7:2:img-3").random() == expected


def test_fields_of_the_wrong_type_are_problems_of_the_row_not_crashes():
    # A number where texts belong (JSON lets any row hold any type) names the row and the field.
    assert row_text_problems({"captions": ["a red cube"], "negatives": 5}, "r9") == [
        "invalid text: 'negatives' must be a string, a list of strings or one list per caption, got int"]
    assert row_text_problems({"captions": ["a red cube"], "paraphrases": {"a": 1}}, "r9") == [
        "invalid text: 'paraphrases' must be a string, a list of strings or one list per caption, got dict"]
    assert row_text_problems({"captions": ["a red cube"], "negatives": [["a blue cube", 7]]}, "r9") == [
        "invalid text: 'negatives' list 0 must be a string, got int"]
    assert row_text_problems({"captions": 3.5}, "r9") == [
        "invalid text: 'captions' must be a string or a list of strings, got float"]


def test_a_caption_of_control_characters_is_no_caption():
    with pytest.raises(BadRowError, match=r"row 4: no non-empty caption"):
        row_captions(["\x00\x00", "\x01\t\u200b\ufeff "], 4)  # NUL, SOH, tab, zero-width space, BOM
    assert row_captions(["\x00", "a cat on a mat"], 4) == (["a cat on a mat"], [1])
    # Negatives and paraphrases of nothing readable are dropped like blank ones.
    assert per_anchor_texts(["\x00\x00", "a dog on a mat"], "a cat on a mat", [0], "negatives", 4, False) == \
        [["a dog on a mat"]]


def test_exif_orientation_gives_the_same_pixels_through_imagefolder_jsonl_a_shard_and_the_benchmarks(tmp_path):
    """A JPEG whose EXIF orientation 6 says "turn 90 degrees clockwise to view" (a camera held upright)."""
    from read_trainer.data.loading import DataArguments, load_read_datasets
    from read_trainer.data.shards import write_webdataset_shards
    from read_trainer.data.stream_checks import ValidatedStream
    from read_trainer.data.streaming import open_shards

    photos = tmp_path / "photos"
    photos.mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6
    pixels = np.random.default_rng(0).integers(0, 256, (4, 6, 3), dtype=np.uint8)  # 4 rows, 6 columns
    Image.fromarray(pixels).save(photos / "p.jpg", quality=95, exif=exif)
    stored = np.asarray(Image.open(photos / "p.jpg").convert("RGB"))  # the JPEG's pixels as stored
    expected = np.rot90(stored, k=-1)  # turned clockwise: 6 rows, 4 columns
    assert expected.shape == (6, 4, 3)
    captions = ["a photo taken upright"]

    (photos / "metadata.jsonl").write_text(json.dumps({"file_name": "p.jpg", "captions": captions}) + "\n")
    imagefolder, _ = load_read_datasets(DataArguments(dataset_name=str(photos)))
    (tmp_path / "train.jsonl").write_text(json.dumps({"image": "photos/p.jpg", "captions": captions}) + "\n")
    jsonl, _ = load_read_datasets(DataArguments(train_file=str(tmp_path / "train.jsonl")))
    shard = write_webdataset_shards([{"row_id": 0, "image": str(photos / "p.jpg"), "captions": captions}],
                                    str(tmp_path / "shards"), image_format="jpg")  # the file's own bytes
    streamed = next(iter(ValidatedStream(open_shards(shard), shuffle_buffer_size=0, report_file=None)))

    decoded = {"imagefolder": load_image(imagefolder[0]["image"], 0), "jsonl": load_image(jsonl[0]["image"], 0),
               "shard": streamed["image"], "benchmark": load_benchmark_image(ImageRef(str(photos / "p.jpg")))}
    for path, image in decoded.items():
        assert (np.asarray(image) == expected).all(), path
