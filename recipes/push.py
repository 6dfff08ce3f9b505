"""Publish an exported READ folder (plain CLIPModel + processor) to the Hub with a model card.

    python recipes/push.py --folder outputs/read-clip --repo_id me/read-clip-vit-b32 [--private]

The token comes from --token, HF_TOKEN or `hf auth login`. Only the model, processor, card,
results and redacted training arguments are uploaded; the folder itself is not changed (the
card is written beside the upload, not into it). A mistake ends with one ``error:`` line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from transformers import CLIPModel

from read_trainer.cli import ArgumentParser, UsageError, one_line, run_recipe
from read_trainer.hub import build_model_card, read_training_args, upload_folder
from read_trainer.nonfinite import assert_finite_folder
from read_trainer.paths import missing_path_message


def main(argv=None):
    parser = ArgumentParser(description=__doc__)
    parser.add_argument("--folder", required=True, help="exported folder (save_model output)")
    parser.add_argument("--repo_id", required=True, help="hub repo, e.g. user/read-clip")
    parser.add_argument("--token", default=None, help="write token (default: HF_TOKEN or the login cache)")
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument("--revision", default=None, help="branch to push to")
    parser.add_argument("--dataset", action="append", default=[], help="training dataset id(s) for the card")
    parser.add_argument("--license", default=None, help="license id for the card metadata")
    args = parser.parse_args(argv)

    folder = Path(args.folder)
    if not folder.is_dir():
        raise FileNotFoundError(missing_path_message("export folder", args.folder))
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{folder} has no config.json: not an exported model folder")
    if json.loads(config_file.read_text()).get("architectures") != ["CLIPModel"]:
        raise ValueError(f"{folder} does not hold a plain CLIPModel")
    CLIPModel.from_pretrained(folder)  # refuse to publish what cannot be loaded
    assert_finite_folder(str(folder))  # ... or a diverged (NaN/inf) model

    training_args = read_training_args(folder)
    eval_results, table = None, None
    results_file = folder / "results.json"
    if results_file.is_file():
        from read_trainer.evaluation.report import load_results, markdown_report, model_card_eval_results

        results = load_results(results_file)
        eval_results, table = model_card_eval_results(results), markdown_report({"this model": results})
    card = build_model_card(model_id=args.repo_id, base_model=training_args.get("model_name_or_path"),
                            training_args=training_args, datasets=args.dataset, eval_results=eval_results,
                            results_markdown=table, license=args.license)
    try:
        info = upload_folder(folder, args.repo_id, token=args.token, private=args.private or None,
                             revision=args.revision, commit_message="Upload READ CLIPModel", card=card)
    except Exception as error:  # noqa: BLE001 - offline, unreachable, refused token, no write access
        raise UsageError(f"publishing {folder} to {args.repo_id} failed ({type(error).__name__}: "
                         f"{one_line(error)[:300]}){_push_advice(error)}") from error
    print(f"pushed {folder} to {args.repo_id}")
    return info


def _push_advice(error: Exception) -> str:
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "; HF_HUB_OFFLINE=1 forbids the Hub: run this on a connected machine"
    status = getattr(getattr(error, "response", None), "status_code", None)
    if status in (401, 403):
        return "; log in with a write token (`hf auth login`) or pass --token"
    return f"; check that {constants.ENDPOINT} can be reached"


if __name__ == "__main__":
    sys.exit(run_recipe(main))
