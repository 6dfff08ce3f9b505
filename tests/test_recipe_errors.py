"""Expected user mistakes end the recipes with one ``error:`` line and exit status 2; ``--debug`` or
READ_TRAINER_DEBUG=1 keeps the traceback; ``--help`` shows every default."""

import json

import pytest
from conftest import load_recipe, write_caption_jsonl

from read_trainer.cli import run_recipe

run_read = load_recipe("run_read")
run_evaluation = load_recipe("run_evaluation")
make_negatives = load_recipe("make_negatives")
make_paraphrases = load_recipe("make_paraphrases")


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    # Progress bars of the data loading may come first; the failure itself is the last line, alone.
    errors = [line for line in err.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and err.strip().endswith(errors[0]) and "Traceback" not in err, err[-2000:]
    assert errors[0].startswith("error: ") and errors[0].endswith("(--debug for the traceback)")
    return errors[0]


@pytest.fixture
def run_args(tiny_models, tmp_path):
    write_caption_jsonl(tmp_path)
    clip_dir, t5_dir = tiny_models
    return ["--model_name_or_path", clip_dir, "--decoder_name_or_path", t5_dir, "--train_file",
            str(tmp_path / "train.jsonl"), "--output_dir", str(tmp_path / "out"), "--report_to", "none",
            "--use_cpu", "true"]


def test_unknown_yaml_key_suggests_the_close_one(tmp_path, capsys, monkeypatch):
    config = tmp_path / "run.yaml"
    config.write_text("learning_rat: 1.0e-5\nnum_hard_negativs: 3\nmy_own_key: 1\n")
    assert run_recipe(run_read.main, ["--config", str(config)]) == 2
    line = one_error_line(capsys)
    assert "'learning_rat' (did you mean 'learning_rate'?)" in line
    assert "'num_hard_negativs' (did you mean 'num_hard_negatives'?)" in line and "'my_own_key'" in line
    with pytest.raises(ValueError, match="did you mean 'learning_rate'"):
        run_recipe(run_read.main, ["--config", str(config), "--debug"])
    monkeypatch.setenv("READ_TRAINER_DEBUG", "1")
    with pytest.raises(ValueError, match="did you mean 'learning_rate'"):
        run_recipe(run_read.main, ["--config", str(config)])


def test_missing_dataset_folder_and_missing_file(run_args, tmp_path, capsys):
    assert run_recipe(run_read.main, [*run_args[:4], "--dataset_name", "./data/no_such_folder",
                                      *run_args[6:]]) == 2
    assert "dataset folder './data/no_such_folder' does not exist" in one_error_line(capsys)
    missing = str(tmp_path / "nope.jsonl")
    assert run_recipe(run_read.main, [*run_args[:5], missing, *run_args[6:]]) == 2
    assert f"data file {missing!r} does not exist" in one_error_line(capsys)
    assert run_recipe(run_read.main, [*run_args, "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml' does not exist" in one_error_line(capsys)


def test_wrong_caption_column_names_the_columns_that_exist(run_args, capsys):
    assert run_recipe(run_read.main, [*run_args, "--caption_column", "text"]) == 2
    line = one_error_line(capsys)
    assert "column 'text' (for captions) not found" in line and "'captions'" in line and "--caption_column" in line


def test_report_to_a_missing_integration_fails_before_loading(run_args, tmp_path, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    assert run_recipe(run_read.main, [*run_args[:-4], "--report_to", "wandb", "--use_cpu", "true"]) == 2
    assert "pip install 'read-trainer[wandb]'" in one_error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_other_recipes_exit_with_one_line(tmp_path, capsys):
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"caption": "a red cube left of a blue sphere"}))
    assert run_recipe(make_negatives.main, ["--input", str(tmp_path / "missing.jsonl"), "--output", "x.jsonl"]) == 2
    assert "input file(s) not found" in one_error_line(capsys)
    assert run_recipe(make_negatives.main, ["--input", str(rows), "--output", str(tmp_path / "o.jsonl"),
                                            "--caption_column", "text"]) == 2
    assert "no column 'text' (columns: ['caption'])" in one_error_line(capsys)
    # Offline (the suite runs with HF_HUB_OFFLINE=1) and not cached: named, with what to do.
    assert run_recipe(make_paraphrases.main, ["--model", "nobody/no-such-t5", "--train_file", str(rows),
                                              "--output", str(tmp_path / "p.jsonl")]) == 2
    line = one_error_line(capsys)
    assert "model 'nobody/no-such-t5' is not in the local Hugging Face cache" in line and "hf download" in line
    assert run_recipe(run_evaluation.main, ["--model", str(tmp_path), "--benchmarks", "whatsup"]) == 2
    assert "['whatsup'] are not shipped with the package" in one_error_line(capsys)


@pytest.mark.parametrize("recipe, expected", [
    (run_read, ["(default: openai/clip-vit-base-patch32)", "(default: 0.1)", "(default: captions)"]),
    (run_evaluation, ["(default: 256)", "(default: eval_results)", "python recipes/run_evaluation.py --model"]),
    (make_negatives, ["(default: 3)", "(default: rules)"]),
    (make_paraphrases, ["(default: paraphrase: {caption})", "(default: 2)"]),
])
def test_help_shows_defaults(recipe, expected, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # argparse would otherwise break long defaults at hyphens
    with pytest.raises(SystemExit) as done:
        recipe.main(["--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for snippet in expected:
        assert snippet in text, snippet
