"""Command-line parsing shared by the recipes: ``--config x.yaml`` plus flag overrides, ``--help``
grouped with READ's own options first, and the one-line ``error:`` exit for the mistakes a user
is expected to make."""

from __future__ import annotations

import argparse
import copy
import dataclasses
import difflib
import os
import re
import sys
import types
import typing
from pathlib import Path
from typing import Sequence

import yaml
from transformers import HfArgumentParser, TrainingArguments

from .paths import missing_path_message


class UsageError(Exception):
    """A mistake in the user's flags, files or data, stated in one line; no traceback is useful."""


class FlagError(UsageError):
    """A flag argparse cannot read (unknown, misspelt, a value of the wrong type): --help, not a traceback, helps."""




# -- parsing -----------------------------------------------------------------------------

# Shown in --help before the groups of a recipe's dataclasses; both are read before argparse runs.
CONFIG_HELP = "YAML file of option: value defaults (its keys are the flags below); flags given here override it."
DEBUG_FLAG = "--debug"
DEBUG_ENV = "READ_TRAINER_DEBUG"


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the usage examples of a recipe's docstring as written and shows every default."""


class CompactHelpFormatter(HelpFormatter):
    """One name per option (not its ``--dashed-alias``) and a short value name, so --help stays readable."""

    def __init__(self, prog, indent_increment=2, max_help_position=36, width=None):
        super().__init__(prog, indent_increment, max_help_position, width)

    def _get_help_string(self, action: argparse.Action) -> str:
        # "(default: None)" on half the options says nothing.
        return action.help if action.default is None else super()._get_help_string(action)

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if not action.option_strings:
            return action.dest
        longs = [s for s in action.option_strings if s.startswith("--")] or action.option_strings
        name = next((s for s in longs if "-" not in s[2:]), longs[0])
        if action.nargs == 0:
            return name
        if action.metavar is not None:
            value = action.metavar
        elif action.choices is not None and len(action.choices) <= 8:
            value = "{" + ",".join(str(c) for c in action.choices) + "}"
        elif action.choices is not None:
            value = "CHOICE"
        else:
            value = getattr(action.type, "__name__", "value").upper()
            value = {"STRING_TO_BOOL": "BOOL"}.get(value, value if value.isidentifier() else "VALUE")
        return f"{name} {'[' + value + ']' if action.nargs == '?' else value}"


def _first_sentence(text: str | None) -> str | None:
    if not text:
        return text
    text = " ".join(text.split())
    end = text.find(". ")
    return text if end < 0 else text[: end + 1]


class RecipeArgumentParser(HfArgumentParser):
    """``HfArgumentParser`` whose mistakes are one ``UsageError`` line and whose --help is grouped.

    Groups, in this order: READ's own options (the fields a ``TrainingArguments`` subclass
    declares itself, READ's defaults of Trainer options included), then each other
    dataclass (data, benchmarks, ...), then the remaining ``TrainingArguments`` fields,
    with the first sentence of their help only.
    """

    def __init__(self, dataclass_types: Sequence[type], **kwargs):
        kwargs.setdefault("formatter_class", CompactHelpFormatter)
        kwargs.setdefault("allow_abbrev", False)  # --learning_rat is a typo to name, not a prefix to accept
        kwargs.setdefault("usage", "%(prog)s [--config FILE.yaml] [--OPTION VALUE ...] [--debug]")
        kwargs.setdefault("epilog", f"{DEBUG_FLAG} (or {DEBUG_ENV}=1): an error shows its traceback instead of one line.")
        self._own_group = self._trainer_group = None
        super().__init__(dataclass_types, **kwargs)
        self.add_argument("--config", metavar="FILE.yaml", default=None, help=CONFIG_HELP)
        groups = self._action_groups
        if self._own_group is not None:  # READ's own options first, after --help and --config
            groups.remove(self._own_group)
            groups.insert(2, self._own_group)
        if self._trainer_group is not None:  # Trainer's own options last
            groups.remove(self._trainer_group)
            groups.append(self._trainer_group)

    def _add_dataclass_arguments(self, dtype):
        hints = typing.get_type_hints(dtype)
        is_trainer = issubclass(dtype, TrainingArguments)
        own = set(dtype.__dict__.get("__annotations__", {})) if is_trainer else None
        title = getattr(dtype, "_argument_group_name", None) or dtype.__name__
        group = self.add_argument_group(title)
        if is_trainer:
            self._own_group = group
        for f in dataclasses.fields(dtype):
            if not f.init:
                continue
            f.type = hints[f.name]
            target = group
            if is_trainer and f.name not in own:
                if self._trainer_group is None:
                    self._trainer_group = self.add_argument_group(
                        "transformers TrainingArguments (first sentence of their help; see its documentation)")
                target = self._trainer_group
                if f.metadata.get("help"):
                    f = copy.copy(f)  # the class's own field keeps its whole help
                    f.metadata = types.MappingProxyType({**f.metadata, "help": _first_sentence(f.metadata["help"])})
            before = len(self._actions)
            self._parse_dataclass_field(target, f)
            for action in self._actions[before + 1:]:  # --no_<flag>: --<flag> false says the same
                action.help = argparse.SUPPRESS

    def error(self, message: str):
        # argparse would print the whole usage (hundreds of lines) before the one that matters,
        # and name each option with its --dashed-alias ("argument --learning_rate/--learning-rate").
        raise FlagError(re.sub(r"(--\w+)/--[\w-]+", r"\1", message))


def _unknown_flags_message(parser: argparse.ArgumentParser, remaining: list[str]) -> str:
    known = [s for action in parser._actions for s in action.option_strings]
    hints, after_flag = [], False
    for token in remaining:
        if not token.startswith("--"):
            if not after_flag:  # a value with no flag before it
                hints.append(repr(token))
            after_flag = False
            continue
        after_flag = "=" not in token
        flag = token.split("=", 1)[0]
        close = difflib.get_close_matches(flag, known, n=1)
        hints.append(f"{flag} (did you mean {close[0]}?)" if close else flag)
    return f"unknown option(s) or stray value(s): {', '.join(hints)}"


# Options that say the same thing in different ways: one given on the command line replaces the
# YAML's others (the reference YAML names a train_file; `--dataset_name my_photos` must train on
# my_photos, not be shadowed by it).
ALTERNATIVE_OPTIONS = (("dataset_name", "train_file"),)


def _flags_given(argv: Sequence[str]) -> set[str]:
    return {token[2:].split("=", 1)[0] for token in argv if token.startswith("--")}


def parse_args_with_config(dataclass_types: Sequence[type], argv: Sequence[str] | None = None,
                           description: str | None = None):
    """Parse ``argv`` into ``dataclass_types``; ``--config FILE`` supplies YAML defaults.

    Flags on the command line override the YAML. A YAML key that names no field is an
    error (a typo must not silently leave a default in place), and so is a flag that
    names none.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    argv = [a for a in argv if a != DEBUG_FLAG]
    config_path = None
    for i, token in enumerate(argv):
        if token == "--config":
            if i + 1 >= len(argv):
                raise UsageError("--config needs a YAML file")
            config_path = argv[i + 1]
            del argv[i: i + 2]
            break
        if token.startswith("--config="):
            config_path = token.split("=", 1)[1]
            del argv[i]
            break
    parser = RecipeArgumentParser(dataclass_types, description=description)
    if config_path is not None:
        values = load_yaml_config(config_path, dataclass_types)
        _check_yaml_types(parser, values, config_path)
        given = _flags_given(argv)
        for group in ALTERNATIVE_OPTIONS:
            if given & set(group):
                for name in set(group) - given:
                    values.pop(name, None)
        parser.set_defaults(**values)
    *parsed, remaining = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
    if remaining:
        raise FlagError(_unknown_flags_message(parser, remaining))
    # The namespace of --config/--debug (already handled) is not a dataclass of the recipe.
    return tuple(p for p in parsed if not isinstance(p, argparse.Namespace))


def load_yaml_config(path: str, dataclass_types: Sequence[type]) -> dict:
    """Read a YAML mapping and check every key is a field of one of ``dataclass_types``."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(missing_path_message("config file", path))
    try:
        # safe_load: a tag such as !!python/object is refused, never constructed.
        values = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" line {where.line + 1}" if where is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ValueError(f"{path}{line}: not a plain YAML file of option: value ({problem})") from None
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


def _check_yaml_types(parser: argparse.ArgumentParser, values: dict, path: str) -> None:
    """A YAML value argparse will not convert (not a string) must already be of its option's type."""
    types = {action.dest: action.type for action in parser._actions}
    for key, value in values.items():
        wanted = types.get(key)
        if value is None or isinstance(value, str) or wanted not in (int, float):
            continue
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok or (wanted is int and isinstance(value, float) and not value.is_integer()):
            raise ValueError(f"{path}: {key} must be {'an integer' if wanted is int else 'a number'}, "
                             f"got {value!r}")


def run_read_argument_types() -> tuple[type, ...]:
    """The dataclasses ``recipes/run_read.py`` parses (and so the keys a recipe YAML may hold)."""
    from .config import ReadConfig
    from .data.loading import DataArguments
    from .evaluation.arguments import BenchmarkArguments

    return DataArguments, ReadConfig, BenchmarkArguments


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` for the recipes: a mistake is one ``UsageError`` line, not the usage."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def parse_args(self, args=None, namespace=None):
        parsed, remaining = self.parse_known_args(args, namespace)
        if remaining:
            raise FlagError(_unknown_flags_message(self, remaining))
        return parsed

    def error(self, message: str):
        raise FlagError(message)


# -- the one-line exit ---------------------------------------------------------------------

# What a user gets wrong (a typo in a key, a missing folder or file, a wrong column name, an
# unreachable model id, a folder in use, a run that diverged): the message names the culprit, so
# the traceback is noise to them. Anything else is a bug and keeps its traceback.
EXPECTED_ERRORS = (UsageError, FileNotFoundError, NotADirectoryError, ValueError, KeyError)


def expected_errors() -> tuple[type[BaseException], ...]:
    """``EXPECTED_ERRORS`` plus the refusals the package raises with types of their own."""
    from .evaluation.bundled import ChecksumError
    from .nonfinite import NonFiniteError
    from .output_dir import OutputDirError

    return EXPECTED_ERRORS + (OutputDirError, NonFiniteError, ChecksumError)


def debug_requested(argv: Sequence[str]) -> bool:
    return DEBUG_FLAG in argv or os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes")


def one_line(error: BaseException) -> str:
    """The message of ``error`` on one line (a KeyError's ``str`` would add quotes)."""
    message = error.args[0] if isinstance(error, KeyError) and error.args else error
    return " ".join(str(message).split())


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
    except expected_errors() as error:
        if debug:
            raise
        _end_progress_bars()
        advice = "see --help" if isinstance(error, FlagError) else f"{DEBUG_FLAG} for the traceback"
        print(f"error: {one_line(error)} ({advice})", file=sys.stderr)
        return 2
    return 0


def _end_progress_bars() -> None:
    """Close the progress bars an error interrupted, so the error line starts a line of its own."""
    tqdm = sys.modules.get("tqdm")
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", ()) or ()):
        try:
            bar.close()
        except Exception:  # noqa: BLE001 - a bar that cannot be closed must not hide the error
            pass
