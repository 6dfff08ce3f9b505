"""Command-line parsing shared by the recipes: ``--config x.yaml`` plus flag overrides, and the
one-line ``error:`` exit for the mistakes a user is expected to make."""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
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
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hints.append(f"{key!r} (did you mean {close[0]!r}?)" if close else repr(key))
        raise ValueError(f"{path}: unknown option(s) {', '.join(hints)}")
    return values


def run_read_argument_types() -> tuple[type, ...]:
    """The dataclasses ``recipes/run_read.py`` parses (and so the keys a recipe YAML may hold)."""
    from .config import ReadConfig
    from .data.loading import DataArguments
    from .evaluation.arguments import BenchmarkArguments

    return DataArguments, ReadConfig, BenchmarkArguments


class UsageError(Exception):
    """A mistake in the user's flags, files or data, stated in one line; no traceback is useful."""


# What a user gets wrong (a typo in a key, a missing folder or file, a wrong column name, an
# unreachable model id): the message names the culprit, so the traceback is noise to them.
# Anything else is a bug and keeps its traceback.
EXPECTED_ERRORS = (UsageError, FileNotFoundError, NotADirectoryError, ValueError, KeyError)
DEBUG_FLAG = "--debug"
DEBUG_ENV = "READ_TRAINER_DEBUG"


def debug_requested(argv: Sequence[str]) -> bool:
    return DEBUG_FLAG in argv or os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes")


def run_recipe(main, argv: Sequence[str] | None = None) -> int:
    """Call ``main(argv)``; an expected mistake becomes ``error: <message>`` on stderr and exit status 2.

    ``--debug`` (removed before ``main`` sees it) or ``READ_TRAINER_DEBUG=1`` lets the
    exception through with its traceback.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = debug_requested(argv)
    argv = [a for a in argv if a != DEBUG_FLAG]
    try:
        main(argv)
    except EXPECTED_ERRORS as error:
        if debug:
            raise
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        one_line = " ".join(str(message).split())
        print(f"error: {one_line} ({DEBUG_FLAG} for the traceback)", file=sys.stderr)
        return 2
    return 0


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the usage examples of a recipe's docstring as written and shows every default."""
