"""make_paraphrases.py end to end with tiny local models, and its output feeding training."""

import json
from pathlib import Path

import pytest
from conftest import CAPTIONS, load_recipe, write_caption_jsonl
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

from read_trainer.data.paraphrases import ParaphraseFilter

make_paraphrases = load_recipe("make_paraphrases")
run_read = load_recipe("run_read")

LOOSE = ["--min_words", "1", "--min_length_ratio", "0", "--max_length_ratio", "100"]


def test_filter_rules():
    keep = ParaphraseFilter(min_words=3, max_length_ratio=2.0, min_length_ratio=0.5)
    caption = "a man riding a horse"
    assert keep(caption, "a person on horseback riding")
    assert not keep(caption, "")
    assert not keep(caption, "  A man riding a horse. ")  # the caption itself
    assert not keep(caption, "a man")  # too short
    assert not keep(caption, "word " * 11)  # too long


@pytest.fixture(scope="module")
def captions_file(tmp_path_factory):
    return write_caption_jsonl(tmp_path_factory.mktemp("para"), image_key="file_name")


def test_seq2seq_paraphrases_feed_a_training_run(tiny_models, captions_file, tmp_path):
    clip_dir, t5_dir = tiny_models
    sidecar = tmp_path / "paraphrases.jsonl"
    counts = make_paraphrases.main(["--model", t5_dir, "--train_file", str(captions_file), "--image_column",
                                    "file_name", "--output", str(sidecar), "--num_paraphrases", "3",
                                    "--batch_size", "4", *LOOSE])
    records = [json.loads(line) for line in sidecar.read_text().splitlines()]
    unique = {c for caps in CAPTIONS for c in caps}
    assert {r["caption"] for r in records} == unique and counts["captions"] == len(unique)
    assert counts["with_paraphrases"] > 0
    for r in records:
        assert all(p.strip() and p.strip() != r["caption"] for p in r["paraphrases"])

    out = run_read.main(["--model_name_or_path", clip_dir, "--decoder_name_or_path", t5_dir,
                         "--train_file", str(captions_file), "--image_column", "file_name",
                         "--paraphrase_file", str(sidecar), "--num_hard_negatives", "0",
                         "--output_dir", str(tmp_path / "run"), "--max_steps", "2",
                         "--per_device_train_batch_size", "2", "--report_to", "none", "--use_cpu", "true",
                         "--save_strategy", "no"])
    assert (Path(out) / "model.safetensors").is_file()


def test_causal_lm_paraphrases_cut_the_prompt(tiny_models, captions_file, tmp_path):
    _, t5_dir = tiny_models
    tokenizer = AutoTokenizer.from_pretrained(t5_dir)
    folder = tmp_path / "gpt"
    config = GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=2, n_positions=128,
                        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id)
    GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    sidecar = tmp_path / "p.jsonl"
    make_paraphrases.main(["--model", str(folder), "--train_file", str(captions_file), "--image_column",
                           "file_name", "--output", str(sidecar), "--template", "say it again: {caption} =>",
                           *LOOSE])
    records = [json.loads(line) for line in sidecar.read_text().splitlines()]
    assert len(records) == len({c for caps in CAPTIONS for c in caps})
    assert not any("say it again" in p for r in records for p in r["paraphrases"])


def test_missing_placeholder_in_template_is_an_error(tiny_models, captions_file, tmp_path):
    with pytest.raises(ValueError, match=r"\{caption\}"):
        make_paraphrases.main(["--model", tiny_models[1], "--train_file", str(captions_file), "--image_column",
                               "file_name", "--output", str(tmp_path / "x.jsonl"), "--template", "paraphrase this"])


def test_sidecar_lines_must_be_caption_and_paraphrase_list_and_errors_name_file_and_line(tmp_path):
    from read_trainer.data.paraphrases import load_paraphrase_file

    good = json.dumps({"caption": "a red cube ", "paraphrases": ["a cube that is red", " "]})
    path = tmp_path / "para.jsonl"
    path.write_text(good + "\n\n" + json.dumps({"caption": "a red cube", "paraphrases": ["red cube"]}) + "\n")
    assert load_paraphrase_file(str(path)) == {"a red cube": ["a cube that is red", "red cube"]}
    bad_lines = {
        # A string is one paraphrase, never its letters: the file must say it as a list.
        json.dumps({"caption": "a cube", "paraphrases": "a box"}): r"para\.jsonl:2: 'paraphrases' must be a list",
        json.dumps({"caption": "a cube", "paraphrases": ["a box", 3]}): r"para\.jsonl:2: 'paraphrases' must be a list",
        json.dumps({"caption": 7, "paraphrases": ["a box"]}): r"para\.jsonl:2: 'caption' must be a string",
        json.dumps({"text": "a cube"}): r"para\.jsonl:2: expected an object with keys",
        json.dumps(["a cube", "a box"]): r"para\.jsonl:2: expected an object with keys",
        '{"caption": "a cube", "paraphrases": [': r"para\.jsonl:2: not valid JSON",
    }
    for line, message in bad_lines.items():
        path.write_text(good + "\n" + line + "\n")
        with pytest.raises(ValueError, match=message):
            load_paraphrase_file(str(path))
    path.write_bytes(good.encode() + b'\n{"caption": "a \xff cube", "paraphrases": []}\n')
    with pytest.raises(ValueError, match=r"para\.jsonl:2: not valid UTF-8"):
        load_paraphrase_file(str(path))
