"""Expected user mistakes end the recipes with one ``error:`` line and exit status 2; ``--debug`` or
READ_TRAINER_DEBUG=1 keeps the traceback; ``--help`` shows every default, READ's own options first.

``REFUSALS`` walks the list: each case is a recipe and its flags, and the words the one line must
hold (the flag or path at fault, and what to do). The recipes run in this process (``run_recipe``
is what their ``__main__`` calls); two real subprocesses check that wiring itself.
"""

import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import datasets
import pytest
from conftest import load_recipe, make_rows, write_caption_jsonl
from huggingface_hub import constants

from read_trainer.cli import run_recipe

REPO = Path(__file__).resolve().parents[1]
run_read = load_recipe("run_read")
run_evaluation = load_recipe("run_evaluation")
make_negatives = load_recipe("make_negatives")
make_paraphrases = load_recipe("make_paraphrases")
make_shards = load_recipe("make_shards")
push = load_recipe("push")
wise_ft = load_recipe("wise_ft")


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    # Progress bars of the data loading may come first; the failure itself is the last line, alone.
    errors = [line for line in err.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and err.strip().endswith(errors[0]) and "Traceback" not in err, err[-2000:]
    assert errors[0].startswith("error: ")
    assert errors[0].endswith(("(--debug for the traceback)", "(see --help)")), errors[0]
    return errors[0]


@pytest.fixture
def run_args(tiny_models, tmp_path):
    write_caption_jsonl(tmp_path)
    clip_dir, t5_dir = tiny_models
    return ["--model_name_or_path", clip_dir, "--decoder_name_or_path", t5_dir, "--train_file",
            str(tmp_path / "train.jsonl"), "--output_dir", str(tmp_path / "out"), "--report_to", "none",
            "--use_cpu", "true"]


# -- the list ------------------------------------------------------------------------------


@dataclass
class Refusal:
    """A mistake: ``argv(run_args, tmp_path)`` for ``recipe``; the one line holds every string of ``says``."""

    name: str
    recipe: object
    argv: Callable[[list, Path], list]
    says: list[str]
    before_loading: bool = True  # refused before the output folder is created (nothing scanned or loaded)
    setup: Callable[[Path], None] = field(default=lambda tmp: None)


def _with(flag, value):
    return lambda args, tmp: [*args, flag, value]


def _replace(flag, value):
    def argv(args, tmp):
        args = list(args)
        args[args.index(flag) + 1] = value(tmp) if callable(value) else value
        return args
    return argv


def _unsafe_yaml(tmp):
    # Constructed by yaml.load, this tag would create the folder; safe_load refuses it.
    (tmp / "unsafe.yaml").write_text(f"learning_rate: !!python/object/apply:os.mkdir ['{tmp / 'pwned'}']\n")


def _busy_output_dir(tmp):
    # A lock held by a live process (this test's parent) in an otherwise empty folder.
    (tmp / "out").mkdir()
    (tmp / "out" / ".read_trainer.lock").write_text(f"{os.getppid()} {socket.gethostname()}\n")


def _bad_jsonl(tmp):
    (tmp / "bad.jsonl").write_text('{"image": "0.png", "captions": ["a cat"]}\n{"image": "1.png", "capt')


REFUSALS = [
    Refusal("a word for a number", run_read, _with("--learning_rate", "fast"),
            ["argument --learning_rate: invalid float value: 'fast'", "see --help"]),
    Refusal("a misspelt flag", run_read, lambda args, tmp: [*args, "--learning_rat", "1e-5"],
            ["unknown option", "--learning_rat (did you mean --learning_rate?)"]),
    Refusal("a choice that is not one", run_read, _with("--hard_negatives", "some"),
            ["argument --hard_negatives: invalid choice: 'some'", "'generate'"]),
    Refusal("a batch of no rows", run_read, _with("--per_device_train_batch_size", "0"),
            ["--per_device_train_batch_size must be at least 1, got 0"]),
    Refusal("a NaN learning rate", run_read, _with("--learning_rate", "nan"),
            ["--learning_rate must be a finite number >= 0, got nan"]),
    Refusal("an invalid fraction", run_read, _with("--max_invalid_fraction", "1.5"),
            ["--max_invalid_fraction must be in [0, 1], got 1.5"]),
    Refusal("an unsafe YAML tag", run_read, lambda args, tmp: [*args, "--config", str(tmp / "unsafe.yaml")],
            ["unsafe.yaml line 1: not a plain YAML file", "python/object/apply:os.mkdir"], setup=_unsafe_yaml),
    Refusal("a YAML list for a number", run_read, lambda args, tmp: [*args, "--config", str(tmp / "list.yaml")],
            ["list.yaml: learning_rate must be a number, got [1, 2]"],
            setup=lambda tmp: (tmp / "list.yaml").write_text("learning_rate: [1, 2]\n")),
    Refusal("an output folder that holds another run", run_read, lambda args, tmp: args,
            ["is not empty (old.txt)", "--resume_from_checkpoint", "--overwrite_output_dir"], before_loading=False,
            setup=lambda tmp: ((tmp / "out").mkdir(), (tmp / "out" / "old.txt").write_text("x"))),
    Refusal("an output folder in use", run_read, lambda args, tmp: args,
            ["is in use by another run", f"pid {os.getppid()}"], before_loading=False, setup=_busy_output_dir),
    Refusal("a mistyped local folder", run_read,
            lambda args, tmp: [*args[:4], "--dataset_name", "my_photoz", *args[6:]],
            ["dataset 'my_photoz': no local folder 'my_photoz' exists (relative to the current directory",
             "`hf download my_photoz --repo-type dataset`"]),
    Refusal("an empty JSONL file", run_read, _replace("--train_file", lambda tmp: str(tmp / "empty.jsonl")),
            ["empty.jsonl' holds no rows"], before_loading=False,
            setup=lambda tmp: (tmp / "empty.jsonl").write_text("\n")),
    Refusal("a JSONL line that is not JSON", run_read, _replace("--train_file", lambda tmp: str(tmp / "bad.jsonl")),
            ["bad.jsonl' line 2 is not valid JSON (Unterminated string", "fix or remove that line"],
            before_loading=False, setup=_bad_jsonl),
    Refusal("a missing --image_root", run_read, lambda args, tmp: [*args, "--image_root", str(tmp / "pics")],
            ["--image_root '", "pics' does not exist"]),
    Refusal("a missing --paraphrase_file", run_read,
            lambda args, tmp: [*args, "--paraphrase_file", str(tmp / "paraphrases.jsonl")],
            ["--paraphrase_file '", "paraphrases.jsonl' does not exist"]),
    Refusal("--push_to_hub offline", run_read, lambda args, tmp: [*args, "--push_to_hub", "true"],
            ["--push_to_hub needs the Hub, but HF_HUB_OFFLINE=1", "recipes/push.py --folder"]),
    Refusal("--streaming without --max_steps", run_read, lambda args, tmp: [*args, "--streaming", "true"],
            ["--streaming needs --max_steps"], before_loading=False),
    Refusal("push.py without a value", push, lambda args, tmp: ["--repo_id", "me/x", "--folder"],
            ["argument --folder: expected one argument"]),
    Refusal("push.py of a missing folder", push,
            lambda args, tmp: ["--folder", str(tmp / "exported"), "--repo_id", "me/x"],
            ["export folder", "exported' does not exist"]),
    Refusal("wise_ft.py of a missing folder", wise_ft,
            lambda args, tmp: ["--base", args[1], "--finetuned", str(tmp / "tuned"), "--output", str(tmp / "w"),
                               "--alpha", "0.5"], ["--finetuned folder", "tuned' does not exist"]),
    Refusal("make_shards.py of a missing file", make_shards,
            lambda args, tmp: ["--train_file", str(tmp / "rows.jsonl"), "--output", str(tmp / "shards")],
            ["--train_file '", "rows.jsonl' does not exist"]),
    Refusal("run_evaluation.py with a misspelt flag", run_evaluation, lambda args, tmp: ["--benchmark", "x"],
            ["unknown option(s)", "--benchmark (did you mean --benchmarks?)"]),
]


@pytest.mark.parametrize("case", REFUSALS, ids=lambda case: case.name)
def test_every_expected_refusal_is_one_line_and_exit_status_2(case, run_args, tmp_path, capsys):
    case.setup(tmp_path)
    assert run_recipe(case.recipe.main, case.argv(run_args, tmp_path)) == 2
    line = one_error_line(capsys)
    for words in case.says:
        assert words in line, (words, line)
    if case.before_loading:
        assert not (tmp_path / "out").exists()  # refused before the folder is claimed and the data read
    assert not (tmp_path / "pwned").exists()  # nothing in a YAML file ever runs


def test_a_relative_path_from_another_folder_says_where_it_exists(run_args, tmp_path, capsys, monkeypatch):
    # The README's commands are written from the checkout; run from elsewhere, the path is relative to there.
    monkeypatch.chdir(tmp_path)
    assert run_recipe(run_read.main, [*run_args, "--config", "recipes/read_clip_vit_b32.yaml"]) == 2
    line = one_error_line(capsys)
    assert f"config file 'recipes/read_clip_vit_b32.yaml' does not exist (relative to the current directory " \
           f"{tmp_path}; {REPO / 'recipes' / 'read_clip_vit_b32.yaml'} exists: pass that path or run from {REPO})" \
           in line


def test_a_diverged_run_stops_with_one_line(tiny_models, tmp_path, capsys):
    data = tmp_path / "train"
    datasets.Dataset.from_list(make_rows(8, paraphrases=True)).save_to_disk(str(data))
    clip_dir, t5_dir = tiny_models
    assert run_recipe(run_read.main, [
        "--model_name_or_path", clip_dir, "--decoder_name_or_path", t5_dir, "--dataset_name", str(data),
        "--output_dir", str(tmp_path / "run"), "--per_device_train_batch_size", "4", "--max_steps", "12",
        "--learning_rate", "1e3", "--warmup_steps", "0", "--report_to", "none", "--use_cpu", "true",
        "--save_strategy", "no", "--dataloader_num_workers", "0"]) == 2
    line = one_error_line(capsys)
    assert "non-finite" in line and "optimizer step" in line and "--nonfinite" in line, line


# -- the Hub, online but unreachable -----------------------------------------------------


@pytest.fixture
def unreachable_hub(monkeypatch, tmp_path):
    """Online mode with the Hub endpoint at a closed local port: every connection is refused at once."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    return f"http://127.0.0.1:{port}"


def test_push_to_hub_with_the_hub_unreachable_is_refused_before_training(run_args, tmp_path, capsys, unreachable_hub):
    assert run_recipe(run_read.main, [*run_args, "--push_to_hub", "true", "--hub_token", "hf_xyz"]) == 2
    line = one_error_line(capsys)
    assert f"--push_to_hub: the Hub ({unreachable_hub}) could not be reached" in line
    assert "recipes/push.py" in line and not (tmp_path / "out").exists()


@pytest.mark.parametrize("offline", [True, False], ids=["offline", "unreachable"])
def test_push_recipe_fails_in_one_line_and_leaves_the_folder_as_it_was(tiny_models, tmp_path, capsys, monkeypatch,
                                                                       offline):
    from transformers import CLIPModel, CLIPProcessor

    folder = tmp_path / "export"
    CLIPModel.from_pretrained(tiny_models[0]).save_pretrained(folder)
    CLIPProcessor.from_pretrained(tiny_models[0]).save_pretrained(folder)
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    if not offline:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{sock.getsockname()[1]}"
        sock.close()
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    assert run_recipe(push.main, ["--folder", str(folder), "--repo_id", "me/read", "--token", "hf_xyz"]) == 2
    line = one_error_line(capsys)
    assert f"publishing {folder} to me/read failed" in line
    assert ("HF_HUB_OFFLINE=1 forbids the Hub" if offline else f"check that {endpoint} can be reached") in line
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before  # no README.md left behind


# -- the real entry points ---------------------------------------------------------------


@pytest.mark.parametrize("script, argv, says", [
    ("run_read.py", ["--learning_rate", "fast"], "error: argument --learning_rate"),
    ("push.py", ["--folder", "no_such_export", "--repo_id", "me/x"], "error: export folder 'no_such_export'"),
])
def test_the_scripts_print_one_line_and_exit_2(script, argv, says, tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    done = subprocess.run([sys.executable, str(REPO / "recipes" / script), *argv], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=120)
    assert done.returncode == 2 and done.stdout == "", (done.returncode, done.stdout[-500:])
    assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith(says), done.stderr[-2000:]


# -- the earlier cases ------------------------------------------------------------------


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
    assert f"--train_file {missing!r} does not exist" in one_error_line(capsys)
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


# -- --help --------------------------------------------------------------------------------


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


def test_help_puts_reads_own_options_first_and_trainers_last(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit):
        run_read.main(["--help"])
    text = capsys.readouterr().out
    lines = text.splitlines()
    titles = [line for line in lines if line and not line.startswith(" ") and line.endswith(":")]
    assert [t.split(" ")[0] for t in titles] == ["options:", "READ", "data", "benchmarks", "transformers"]
    assert lines[0].startswith("usage: ") and lines[0].endswith(" [--config FILE.yaml] [--OPTION VALUE ...] [--debug]")
    section = {t: text.index(t) for t in titles}
    assert section[titles[1]] < text.index("--reconstruction_weight FLOAT") < section[titles[2]]
    assert section[titles[2]] < text.index("--train_file STR") < section[titles[3]]
    assert text.index("--gradient_accumulation_steps INT") > section[titles[4]]
    # One name per option (the --dashed-alias and --no_flag twins are still accepted, not listed).
    assert "--learning-rate" not in text and "--no_decoder_dropout" not in text
    assert len(lines) < 450, len(lines)  # it was 755 at this width, the first 160 of them the usage line
