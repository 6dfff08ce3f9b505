"""Fine-tune CLIP with READ.

    accelerate launch recipes/run_read.py --config recipes/read_clip_vit_b32.yaml
    python recipes/run_read.py --config recipes/read_clip_vit_b32.yaml --max_steps 100 --output_dir out

Every ReadConfig / TrainingArguments / DataArguments field is a flag and a YAML key;
flags override the YAML. The result in ``--output_dir`` is a plain CLIPModel + CLIPProcessor.
A mistake in the flags or files ends with one ``error:`` line; ``--debug`` keeps the traceback.
"""

from __future__ import annotations

import logging
import os
import sys

# Dynamic padding gives every batch new tensor shapes; with CUDA's default block allocator
# that fragments memory near the top of the card, and at ViT-B/32 + T5-v1.1-large, batch 256,
# the READ step slowed from 2.2 s to 5.6 s in three steps on an H100 (benchmarks/README.md);
# expandable segments held it at 2.1 s. Set before torch is imported; an explicit setting wins.
if "PYTORCH_ALLOC_CONF" not in os.environ and "PYTORCH_CUDA_ALLOC_CONF" not in os.environ:
    os.environ["PYTORCH_ALLOC_CONF"] = "expandable_segments:True"

from transformers import CLIPProcessor  # noqa: E402

from read_trainer.cli import (  # noqa: E402
    UsageError,
    one_line,
    parse_args_with_config,
    run_read_argument_types,
    run_recipe,
)
from read_trainer.data.loading import check_data_paths, load_read_datasets, negative_generator_for  # noqa: E402
from read_trainer.data.scan import scan_dataset  # noqa: E402
from read_trainer.data.streaming import open_read_stream  # noqa: E402
from read_trainer.evaluation.bundled import default_data_root  # noqa: E402
from read_trainer.evaluation.callback import CompositionalEvalCallback  # noqa: E402
from read_trainer.evaluation.report import write_results_json  # noqa: E402
from read_trainer.evaluation.suite import load_suite  # noqa: E402
from read_trainer.integrations import check_report_to  # noqa: E402
from read_trainer.output_dir import claim_output_dir  # noqa: E402
from read_trainer.resolve import check_hub_for_push, resolve_run_ids  # noqa: E402
from read_trainer.run_record import check_resume_settings  # noqa: E402
from read_trainer.trainer import ReadTrainer  # noqa: E402

logger = logging.getLogger("run_read")


def main(argv=None) -> str:
    data_args, config, bench_args = parse_args_with_config(run_read_argument_types(), argv,
                                                           description=__doc__)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        level=logging.INFO if config.should_log else logging.WARNING)
    # Every missing piece is reported now, in one line, not after the scan and the model load:
    # the loggers, a resume that matches its checkpoint (read from disk only), every model and
    # dataset id; then the output folder is claimed, before anything is written.
    check_report_to(config.report_to)
    check_resume_settings(config)
    resolve_run_ids(config, data_args)
    check_data_paths(data_args)
    if config.push_to_hub and config.process_index == 0:
        check_hub_for_push(config.hub_token)  # not after hours of training
    claim_output_dir(config.output_dir, resuming=config.resume_requested, overwrite=config.overwrite_output_dir,
                     is_main_process=config.process_index == 0)
    # A stream is read, checked and decoded as training goes (read_trainer/data/streaming.py).
    train_dataset, eval_dataset = (open_read_stream(data_args, config) if data_args.streaming
                                   else load_read_datasets(data_args))
    processor = CLIPProcessor.from_pretrained(config.model_name_or_path)
    if not data_args.skip_scan and not data_args.streaming:
        # Every image decoded and every caption checked now, not hours into training.
        with config.main_process_first(desc="scanning the training data"):
            train_dataset, report = scan_dataset(
                train_dataset, tokenizer=processor.tokenizer, max_text_length=config.max_text_length,
                policy=data_args.invalid_rows, num_proc=data_args.scan_num_proc,
                report_file=data_args.invalid_rows_report or os.path.join(config.output_dir, "invalid_rows.jsonl"),
            )
        logger.info(report.summary())
    generator = negative_generator_for(data_args, train_dataset, config.num_hard_negatives, config.seed)
    if generator is not None:  # hard_negatives=generate overrides a negatives column
        train_dataset, eval_dataset = (
            d.remove_columns("negatives") if d is not None and "negatives" in d.column_names else d
            for d in (train_dataset, eval_dataset)
        )
    trainer = ReadTrainer(args=config, train_dataset=train_dataset, eval_dataset=eval_dataset,
                          processing_class=processor, negative_generator=generator)
    trainer.card_datasets = [d for d in (data_args.dataset_name,) if d]
    benchmarks = None
    if bench_args.names():
        # No folder given: the annotation files shipped with the package.
        data_root = default_data_root(bench_args.benchmark_data_root, bench_args.names())
        tasks = load_suite(bench_args.names(), data_root, bench_args.image_roots(),
                           limit=bench_args.benchmark_limit)
        benchmarks = CompositionalEvalCallback(tasks, processor, eval_steps=bench_args.benchmark_steps,
                                               batch_size=bench_args.benchmark_batch_size).attach(trainer)
    trainer.train(resume_from_checkpoint=config.resume_from_checkpoint)
    trainer.save_model()
    if benchmarks is not None:
        # Final scores of the trained model: logged, saved beside it, and put in its model card.
        trainer.log(benchmarks.evaluate_now(trainer.model, processor, trainer.state.global_step))
        if trainer.is_world_process_zero():
            write_results_json(os.path.join(config.output_dir, "results.json"), {"this model": benchmarks.latest})
            trainer.create_model_card()
    if eval_dataset is not None:
        trainer.log_metrics("eval", trainer.evaluate())
    if config.push_to_hub:
        try:
            trainer.push_to_hub()
        except Exception as error:  # noqa: BLE001 - the network or the Hub; the export itself is complete
            raise UsageError(f"the model is exported to {config.output_dir}, but the push to the Hub failed "
                             f"({type(error).__name__}: {one_line(error)[:300]}); publish it with `python "
                             f"recipes/push.py --folder {config.output_dir} --repo_id <user>/<name>`") from error
    if trainer.is_world_process_zero():
        print(f"Exported plain CLIPModel + CLIPProcessor to {config.output_dir}")
    # Several processes: leave the process group before exiting, so no communication thread is
    # still running when the interpreter tears down (that aborts the process, failing the launch).
    trainer.accelerator.end_training()
    return config.output_dir


if __name__ == "__main__":
    sys.exit(run_recipe(main))
