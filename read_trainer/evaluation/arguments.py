"""Flags that attach the compositional benchmarks to a training run (``run_read.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class BenchmarkArguments:
    """Benchmarks to run during and after training; results go to logs, results.json and the model card."""

    _argument_group_name = "benchmarks during and after training"  # its title in --help (a class attribute, not a field)

    benchmarks: str | None = field(
        default=None,
        metadata={"help": "Comma-separated benchmark or set names (e.g. 'sugarcrepe_pp_tot' or 'paper'); "
                  "see recipes/run_evaluation.py --help. None: no benchmark runs."},
    )
    benchmark_data_root: str | None = field(
        default=None, metadata={"help": "Folder holding one sub-folder of annotations per benchmark (default: the "
                                   "SugarCrepe, SugarCrepe++ and VALSE annotations shipped with the package)."}
    )
    benchmark_image_roots: str | None = field(
        default=None, metadata={"help": "Comma-separated name=folder image roots, e.g. 'sugarcrepe=coco/val2017'."}
    )
    benchmark_limit: int | None = field(default=None, metadata={"help": "Cap items per subset (quick checks)."})
    benchmark_steps: int | None = field(
        default=None,
        metadata={"help": "Run the benchmarks every N optimizer steps (default: whenever the trainer evaluates)."},
    )
    benchmark_batch_size: int = field(default=256, metadata={"help": "Embedding batch size for the benchmarks."})

    def names(self) -> list[str]:
        return [n.strip() for n in (self.benchmarks or "").split(",") if n.strip()]

    def image_roots(self) -> dict[str, str]:
        pairs = [p.split("=", 1) for p in (self.benchmark_image_roots or "").split(",") if p.strip()]
        bad = [p for p in pairs if len(p) != 2]
        if bad:
            raise ValueError(f"benchmark_image_roots entries must be name=folder, got {bad}")
        return {k.strip(): v.strip() for k, v in pairs}
