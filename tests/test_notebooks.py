"""Both notebooks execute top to bottom, in a working directory that is not the checkout (small sizes
injected into their parameters cell; evaluate_and_publish on its defaults otherwise)."""

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from read_trainer.evaluation.bundled import bundled_data_root

REPO = Path(__file__).resolve().parents[1]
BENCHDATA = bundled_data_root()


def _run(name: str, parameters: str, cwd: Path) -> nbformat.NotebookNode:
    notebook = nbformat.read(REPO / "notebooks" / name, as_version=4)
    cells = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{name} needs exactly one cell tagged 'parameters'"
    cells[0].source += "\n# injected by the test\n" + parameters
    env_token = os.environ.pop("HF_TOKEN", None)  # the publish cells must take their no-token branch
    try:
        NotebookClient(notebook, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(cwd)}}).execute()
    finally:
        if env_token is not None:
            os.environ["HF_TOKEN"] = env_token
    return notebook


def _outputs(notebook) -> str:
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", "") + json.dumps(output.get("data", {})))
    return "\n".join(texts)


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("nb")
    notebook = _run("quickstart.ipynb", "N_TRAIN, N_TEST, N_NOVEL = 96, 24, 24\nCLIP_PRETRAIN_STEPS, "
                    "T5_PRETRAIN_STEPS = 3, 3\nSTEPS, BATCH = 3, 16\n", cwd)
    return cwd, notebook


def test_quickstart_trains_evaluates_plots_and_skips_publishing(quickstart):
    cwd, notebook = quickstart
    export = cwd / "outputs" / "quickstart" / "read-clip"
    assert json.loads((export / "config.json").read_text())["architectures"] == ["CLIPModel"]
    assert (cwd / "outputs" / "quickstart" / "chart.png").stat().st_size > 1000
    text = _outputs(notebook)
    assert "HF_TOKEN not set: skipping push_to_hub" in text
    assert "image/png" in text and "SugarCrepe++-style TOT" in text
    assert "base models (start your own fine-tuning from these folders): CLIP " in text


def test_evaluate_and_publish_runs_on_the_quickstart_export(quickstart):
    cwd, _ = quickstart
    assert not (cwd / "setup.cfg").exists() and REPO not in cwd.parents  # not the checkout
    export = cwd / "outputs" / "quickstart" / "read-clip"
    base = json.loads((export / "read_training_args.json").read_text())["model_name_or_path"]
    # Defaults: the quickstart's export in this folder, the base it records, the shipped annotations.
    notebook = _run("evaluate_and_publish.ipynb", "LIMIT = 4\nALPHAS = [0.0, 1.0]\n", cwd)
    text = _outputs(notebook)
    assert f"base: {base}" in text and f"annotations: {BENCHDATA}" in text
    assert "SugarCrepe++ TOT" in text and "HF_TOKEN not set: skipping the upload" in text
    assert "pipeline_tag: zero-shot-image-classification" in text
    # The demo tokenizer knows the world's words only: evaluating on real captions says so.
    assert "of the benchmark's words are not whole tokens" in text
