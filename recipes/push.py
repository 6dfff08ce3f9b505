"""Publish an exported READ folder (plain CLIPModel + processor) to the Hub with a model card.

    python recipes/push.py --folder outputs/read-clip --repo_id me/read-clip-vit-b32 [--private]

The token comes from --token, HF_TOKEN or `hf auth login`. Only the model, processor, card,
results and redacted training arguments are uploaded.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from transformers import CLIPModel

from read_trainer.hub import build_model_card, read_training_args, upload_folder
from read_trainer.nonfinite import assert_finite_folder


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", required=True, help="exported folder (save_model output)")
    parser.add_argument("--repo_id", required=True, help="hub repo, e.g. user/read-clip")
    parser.add_argument("--token", default=None, help="write token (default: HF_TOKEN or the login cache)")
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument("--revision", default=None, help="branch to push to")
    parser.add_argument("--dataset", action="append", default=[], help="training dataset id(s) for the card")
    parser.add_argument("--license", default=None, help="license id for the card metadata")
    args = parser.parse_args(argv)

    folder = Path(args.folder)
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{folder} has no config.json: not an exported model folder")
    if json.loads(config_file.read_text()).get("architectures") != ["CLIPModel"]:
        raise ValueError(f"{folder} does not hold a plain CLIPModel")
    CLIPModel.from_pretrained(folder)  # refuse to publish what cannot be loaded
    assert_finite_folder(str(folder))  # ... or a diverged (NaN/inf) model; before the card is written

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
    card.save(folder / "README.md")
    info = upload_folder(folder, args.repo_id, token=args.token, private=args.private or None,
                         revision=args.revision, commit_message="Upload READ CLIPModel")
    print(f"pushed {folder} to {args.repo_id}")
    return info


if __name__ == "__main__":
    main(sys.argv[1:])
