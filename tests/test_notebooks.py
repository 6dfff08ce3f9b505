"""Both notebooks execute top to bottom with their defaults, in a working directory that is not the
checkout, as a user runs them: the quickstart's training length is the one value changed (3 steps
instead of 250; its own run time is measured and written in the notebook), and
evaluate_and_publish runs on its defaults untouched, on the quickstart's export."""

import json
import os
from pathlib import Path

import nbformat
import pytest
import yaml
from nbclient import NotebookClient

from read_trainer.config import ReadConfig
from read_trainer.demo.shipped_base import SHIPPED_DIR
from read_trainer.evaluation.bundled import bundled_data_root

REPO = Path(__file__).resolve().parents[1]
BENCHDATA = bundled_data_root()


def _run(name: str, parameters: str, cwd: Path) -> nbformat.NotebookNode:
    notebook = nbformat.read(REPO / "notebooks" / name, as_version=4)
    cells = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{name} needs exactly one cell tagged 'parameters'"
    if parameters:
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
    notebook = _run("quickstart.ipynb", "STEPS = 3\n", cwd)
    return cwd, notebook


def test_quickstart_trains_with_the_demos_settings_evaluates_plots_and_skips_publishing(quickstart):
    cwd, notebook = quickstart
    export = cwd / "outputs" / "quickstart" / "read-clip"
    assert json.loads((export / "config.json").read_text())["architectures"] == ["CLIPModel"]
    assert (cwd / "outputs" / "quickstart" / "chart.png").stat().st_size > 1000
    text = _outputs(notebook)
    assert "HF_TOKEN not set: skipping push_to_hub" in text
    assert "image/png" in text and "SugarCrepe++-style TOT" in text and "/36 cells" in text
    assert f"base models (start your own fine-tuning from these folders): CLIP {SHIPPED_DIR / 'clip'}" in text
    assert "READ fine-tuning" in text and "total" in text  # the run's own time

    # Every setting of recipes/demo_world.yaml, as the export recorded it; only the length differs.
    demo = yaml.safe_load((REPO / "recipes" / "demo_world.yaml").read_text())
    expected = json.loads(ReadConfig(output_dir="x", **demo).to_json_string())
    saved = json.loads((export / "read_training_args.json").read_text())
    differ = {k: (saved[k], expected[k]) for k in demo if saved[k] != expected[k]}
    assert differ == {"max_steps": (3, demo["max_steps"])}


def test_evaluate_and_publish_runs_on_its_defaults_with_the_quickstarts_local_base(quickstart):
    cwd, _ = quickstart
    assert not (cwd / "setup.cfg").exists() and REPO not in cwd.parents  # not the checkout
    notebook = _run("evaluate_and_publish.ipynb", "", cwd)
    text = _outputs(notebook)
    # The base is the shipped folder the quickstart started from, not a hub id named after its last part.
    assert f"base: {SHIPPED_DIR / 'clip'}\n" in text and f"annotations: {BENCHDATA}" in text
    assert "SugarCrepe++ TOT" in text and "HF_TOKEN not set: skipping the upload" in text
    assert "pipeline_tag: zero-shot-image-classification" in text
    card = next(o["text"] for c in notebook.cells for o in c.get("outputs", []) if "pipeline_tag" in o.get("text", ""))
    assert "base_model:" not in card and "a local model folder, `clip`" in card and str(SHIPPED_DIR) not in card
    # The sweep covers every default alpha; its ends are the two models scored above.
    assert all(f"{alpha}: {{'sugarcrepe_pp_tot'" in text for alpha in (0.0, 0.25, 0.5, 0.75, 1.0))
    # The demo tokenizer knows the world's words only: evaluating on real captions says so.
    assert "of the benchmark's words are not whole tokens" in text
