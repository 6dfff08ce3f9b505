"""Command-line parsing shared by the recipes: ``--config x.yaml`` plus flag overrides."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Sequence

import yaml
from transformers import HfArgumentParser


def parse_args_with_config(dataclass_types: Sequence[type], argv: Sequence[str] | None = None):
    """Parse ``argv`` into ``dataclass_types``; ``--config FILE`` supplies YAML defaults.

    Flags on the command line override the YAML. A YAML key that names no field is an
    error (a typo must not silently leave a default in place).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    config_path = None
    for i, token in enumerate(argv):
        if token == "--config":
            if i + 1 >= len(argv):
                raise SystemExit("--config needs a YAML file")
            config_path = argv[i + 1]
            del argv[i: i + 2]
            break
        if token.startswith("--config="):
            config_path = token.split("=", 1)[1]
            del argv[i]
            break
    parser = HfArgumentParser(dataclass_types)
    if config_path is not None:
        parser.set_defaults(**load_yaml_config(config_path, dataclass_types))
    return parser.parse_args_into_dataclasses(args=argv)


def load_yaml_config(path: str, dataclass_types: Sequence[type]) -> dict:
    """Read a YAML mapping and check every key is a field of one of ``dataclass_types``."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"config file {path!r} does not exist")
    values = yaml.safe_load(file.read_text()) or {}
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a mapping of option: value, got {type(values).__name__}")
    known = {f.name for cls in dataclass_types for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{path}: unknown option(s) {unknown}")
    return values


def run_read_argument_types() -> tuple[type, ...]:
    """The dataclasses ``recipes/run_read.py`` parses (and so the keys a recipe YAML may hold)."""
    from .config import ReadConfig
    from .data.loading import DataArguments
    from .evaluation.arguments import BenchmarkArguments

    return DataArguments, ReadConfig, BenchmarkArguments
