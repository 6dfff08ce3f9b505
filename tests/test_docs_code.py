"""Every ``bash`` and ``python`` block of the README and docs/*.md runs, as written, on tiny models.

What the test changes, and nothing else:

* hub model ids become tiny local models of the same classes (``HUB_MODELS``); a command that
  takes its models from a YAML ``--config`` gets them as flags;
* ``--max_steps N`` (``max_steps=N`` in Python) becomes 2, and a ``--config`` run gets
  ``--dataloader_num_workers 0`` unless it sets it (the reference YAML asks for 8) and
  ``--use_cpu true`` (the reference YAML trains in bf16, which transformers allows on a CPU only
  when told so; the test machine has no GPU);
* the data paths the blocks name (``my_photos``, ``data/...``, ``benchdata``, ...) are small
  folders written in a fresh working directory per page, beside links to ``recipes/`` and
  ``read_trainer/`` (so ``read_trainer/demo/base_checkpoints`` is the real shipped folder).

Blocks run in this process, one page after another (a subprocess per command would cost ~10 s of
imports each): ``python recipes/X.py ...`` (also behind ``accelerate launch``) calls the recipe's
``main(argv)``; a python block is executed statement by statement, and an expression followed by
``# ...`` comment lines must print (``repr``) what those lines show. Any other command in a block
that runs is an error: mark the block ``<!-- docs-test: skip (reason) -->``.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
from pathlib import Path

import pytest
from conftest import CAPTIONS, load_recipe, random_image
from docs_blocks import REPO, Block, blocks, doc_files
from transformers import CLIPModel, CLIPProcessor

from read_trainer.evaluation.bundled import bundled_data_root

HUB_MODELS = {"openai/clip-vit-base-patch32": 0, "google/t5-v1_1-large": 1, "google/flan-t5-large": 1}
PAGES = [p for p in doc_files() if any(b.runs for b in blocks(p))]


def _imagefolder(folder: Path, caption_key: str = "captions", n: int = 4) -> None:
    folder.mkdir(parents=True)
    lines = []
    for i in range(n):
        random_image(i).save(folder / f"{i}.jpg")
        captions = CAPTIONS[i % len(CAPTIONS)]
        lines.append(json.dumps({"file_name": f"{i}.jpg",
                                 caption_key: captions if caption_key == "captions" else captions[0]}))
    (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n")


def _karpathy(data: Path) -> None:
    """``data/dataset_coco.json`` and ``data/coco/<filepath>/<filename>``: 4 train/restval images."""
    images = []
    for i, split in enumerate(["train", "restval", "train", "restval"]):
        (data / "coco" / "train2014").mkdir(parents=True, exist_ok=True)
        name = f"COCO_train2014_{i:012d}.jpg"
        random_image(i).save(data / "coco" / "train2014" / name)
        images.append({"filepath": "train2014", "filename": name, "split": split, "cocoid": i,
                       "sentences": [{"raw": c} for c in CAPTIONS[i % len(CAPTIONS)]]})
    (data / "dataset_coco.json").write_text(json.dumps({"images": images, "dataset": "coco"}))


def _workspace(root: Path, tiny_models) -> Path:
    """A working directory holding every path the blocks name."""
    root.mkdir()
    for name in ("recipes", "read_trainer"):
        (root / name).symlink_to(REPO / name)
    _imagefolder(root / "my_photos")
    _imagefolder(root / "path" / "to" / "imagefolder", caption_key="text")
    _karpathy(root / "data")
    # The reference YAML's data, as recipes/prepare_data.py lays it out: train.jsonl with relative
    # image paths, and READ's per-image paraphrase file keyed by cocoid.
    coco_read = root / "data" / "coco_read"
    (coco_read / "images").mkdir(parents=True)
    lines = []
    for i in range(4):
        random_image(i).save(coco_read / "images" / f"{i}.jpg")
        lines.append(json.dumps({"image": f"images/{i}.jpg", "captions": CAPTIONS[i % len(CAPTIONS)], "cocoid": str(i)}))
    (coco_read / "train.jsonl").write_text("\n".join(lines) + "\n")
    (root / "data" / "paraphrases").mkdir()
    (root / "data" / "paraphrases" / "zero.json").write_text(
        json.dumps({str(i): [f"a paraphrase of picture {i}"] for i in range(4)}))
    (root / "train.jsonl").write_text("\n".join(json.dumps({"captions": c}) for c in CAPTIONS) + "\n")
    (root / "benchdata").symlink_to(bundled_data_root())
    export = root / "outputs" / "read-clip"  # an exported READ model: a plain CLIPModel + processor
    CLIPModel.from_pretrained(tiny_models[0]).save_pretrained(export)
    CLIPProcessor.from_pretrained(tiny_models[0]).save_pretrained(export)
    return root


def _commands(code: str) -> list[list[str]]:
    """The block's commands as argument lists (continuation lines joined, comments dropped)."""
    joined = code.replace("\\\n", " ")
    return [words for line in joined.split("\n") if (words := shlex.split(line, comments=True))]


def _rewrite(argv: list[str], tiny_models) -> list[str]:
    argv = [tiny_models[HUB_MODELS[a]] if a in HUB_MODELS else a for a in argv]
    if "--max_steps" in argv:
        argv[argv.index("--max_steps") + 1] = "2"
    if "--config" in argv:
        given = set(argv)
        for flag, value in (("--model_name_or_path", tiny_models[0]), ("--decoder_name_or_path", tiny_models[1]),
                            ("--dataloader_num_workers", "0"), ("--use_cpu", "true")):
            if flag not in given:
                argv += [flag, value]
    return argv


def _run_command(argv: list[str], block: Block, tiny_models) -> None:
    if argv[:2] == ["accelerate", "launch"]:
        argv = argv[2:]
        while argv and argv[0].startswith("--"):  # the launcher's own flags, e.g. --config_file
            argv = argv[2:]
    else:
        assert argv[0] == "python", f"{block.where}: `{' '.join(argv)}` is not a command this test runs; " \
                                    "mark the block <!-- docs-test: skip (reason) -->"
        argv = argv[1:]
    script = Path(argv[0])
    assert script.parent == Path("recipes") and script.suffix == ".py", f"{block.where}: {argv[0]}"
    load_recipe(script.stem).main(_rewrite(argv[1:], tiny_models))


def _run_python(block: Block, tiny_models) -> None:
    code = block.code
    for hub_id, index in HUB_MODELS.items():
        code = code.replace(f'"{hub_id}"', repr(tiny_models[index]))
    code = re.sub(r"\bmax_steps=\d+", "max_steps=2", code)
    lines = code.split("\n")
    namespace: dict = {"__name__": "__docs__"}
    for statement in ast.parse(code).body:
        source = "\n".join(lines[statement.lineno - 1:statement.end_lineno])
        if not isinstance(statement, ast.Expr):
            exec(compile(source, block.where, "exec"), namespace)
            continue
        value = eval(compile(source, block.where, "eval"), namespace)
        shown = []
        for line in lines[statement.end_lineno:]:
            if not line.startswith("#"):
                break
            shown.append(line.lstrip("#").strip())
        if shown:
            assert " ".join(repr(value).split()) == " ".join(" ".join(shown).split()), block.where


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_the_pages_code_blocks_run(page, tiny_models, tmp_path, monkeypatch):
    monkeypatch.chdir(_workspace(tmp_path / "work", tiny_models))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for block in blocks(page):
        if not block.runs:
            continue
        if block.lang == "python":
            _run_python(block, tiny_models)
        else:
            for argv in _commands(block.code):
                _run_command(argv, block, tiny_models)


def test_every_skipped_block_says_why_and_most_blocks_run():
    every = [b for page in doc_files() for b in blocks(page)]
    code = [b for b in every if b.lang in ("bash", "sh", "shell", "python")]
    assert all(b.skip_reason.strip() for b in code if not b.runs)
    running = [b for b in code if b.runs]
    # The blocks a newcomer copies first run: the README's own-photos command and its Python snippet.
    readme = [b for b in running if b.file.name == "README.md" and b.file.parent == REPO]
    assert any("--dataset_name my_photos" in b.code for b in readme)
    assert any("ReadTrainer(args=args, train_dataset=train_dataset)" in b.code for b in readme)
    assert len(running) >= len(code) // 2, [b.where for b in code if not b.runs]


def test_the_runner_checks_shown_output_and_refuses_unknown_commands(tiny_models):
    good = Block(REPO / "README.md", 1, "python", "x = [1, 2]\nx + [3]\n# [1, 2,\n#  3]", None)
    _run_python(good, tiny_models)
    wrong = Block(REPO / "README.md", 1, "python", "sorted([2, 1])\n# [2, 1]", None)
    with pytest.raises(AssertionError):
        _run_python(wrong, tiny_models)
    with pytest.raises(AssertionError, match="not a command this test runs"):
        _run_command(["hf", "download", "x"], wrong, tiny_models)
    assert _rewrite(["--config", "c.yaml", "--max_steps", "2000", "--model_name_or_path", "m"], tiny_models) == \
        ["--config", "c.yaml", "--max_steps", "2", "--model_name_or_path", "m",
         "--decoder_name_or_path", tiny_models[1], "--dataloader_num_workers", "0", "--use_cpu", "true"]
