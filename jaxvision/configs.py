"""Experiment files and command-line overrides: `load_config('FILE.py[:variant]')` and
`apply_override(config, 'a.b', 'text')`.

Experiment files (which build on each other's configs) and tests load configs here, not through
the command line's module. An experiment file defines `get_config(variant)` returning an
ml_collections.ConfigDict; an override's text is read as the field's type (3, 1e-3, true,
"(64, 32)", a comma list test,validation, text).
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import os
import traceback

import ml_collections


class UsageError(ValueError):
    """A command-line mistake; the message says what to type instead."""


def load_config(spec: str) -> ml_collections.ConfigDict:
    """`FILE.py[:variant]` -> the file's get_config(variant) (or get_config() without one)."""
    path, _, variant = spec.partition(":")
    if not os.path.isfile(path):
        raise UsageError(f"The experiment file {path} does not exist: give a path such as experiments/quickstart.py.")
    module_spec = importlib.util.spec_from_file_location(f"_experiment_{os.path.basename(path)[:-3]}", path)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except SyntaxError as e:
        raise UsageError(f"{e.filename}, line {e.lineno}: {e.msg}; fix the experiment file and run again.") from None
    except Exception as e:
        raise UsageError(_raised_in(path, e, "loading it")) from None
    if not hasattr(module, "get_config"):
        raise UsageError(f"{path} has no get_config(variant) function: it is not an experiment file.")
    try:
        return module.get_config(variant) if variant else module.get_config()
    except ValueError:
        raise  # the experiment's own sentence, e.g. an unknown variant
    except Exception as e:
        raise UsageError(_raised_in(path, e, f"get_config({variant!r})" if variant else "get_config()")) from None


def _raised_in(path: str, error: Exception, doing: str) -> str:
    """One sentence for an exception an experiment file raised: its own last line in the traceback."""
    here = os.path.abspath(path)
    frames = [f for f in traceback.extract_tb(error.__traceback__) if os.path.abspath(f.filename) == here]
    where = f"{path}, line {frames[-1].lineno}" if frames else path
    return f"{where}: {doing} raised {type(error).__name__}: {error}; fix the experiment file and run again."


def _parse_sequence(text: str, current) -> tuple:
    """A Python literal ('("test", "validation")', '[2, 3]') or the comma form 'test,validation',
    whose items take the type of the current value's items."""
    if not text.strip():
        return ()
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        kind = type(current[0]) if current and isinstance(current[0], (int, float)) else str
        value = tuple(kind(part.strip()) for part in text.split(",") if part.strip())
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def _parse_value(text: str, current, name: str):
    """Reads `text` as the type of the field's current value."""
    try:
        if isinstance(current, bool):
            lowered = text.lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return lowered in ("true", "1", "yes")
        if isinstance(current, int):
            return int(text)
        if isinstance(current, float):
            return float(text)
        if isinstance(current, str):
            return text
        if isinstance(current, (tuple, list)):
            return _parse_sequence(text, current)
    except (ValueError, SyntaxError):
        raise UsageError(
            f"--{name}={text} cannot be read as a {type(current).__name__} (its current value is {current!r})."
        ) from None
    try:  # a new or None field: a Python literal if it is one, else text
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def apply_override(config: ml_collections.ConfigDict, dotted: str, text: str) -> None:
    """Sets config.<dotted> from the command-line text `text`.

    Keys must exist, except inside config.model, whose keys are the model's keyword arguments
    (the model checks them). Not `ml_collections.config_flags`: it overrides the experiment
    file's config before `train.resolve` adds the defaults, so it refuses every default the
    file leaves out (--config.checkpoint.every_steps=100) and every model argument the file does
    not name, with a KeyError traceback.
    """
    *parents, key = dotted.split(".")
    section, where = config, "config"
    for part in parents:
        if part not in section or not isinstance(section[part], ml_collections.ConfigDict):
            raise UsageError(_unknown(f"{where}.{part}", part, section))
        section, where = section[part], f"{where}.{part}"
    if key not in section:
        if where != "config.model":
            raise UsageError(_unknown(f"{where}.{key}", key, section))
        with section.unlocked():
            section[key] = _parse_value(text, None, f"{where}.{key}")
        return
    if isinstance(section[key], ml_collections.ConfigDict):
        example = next(iter(section[key].keys()), "x")
        raise UsageError(
            f"--{where}.{key} is a group of settings: set one of its keys, e.g. --{where}.{key}.{example}=..."
        )
    current = section[key]
    if current is None and section.get_type(key) in (bool, int, float, str):  # a typed field left unset
        current = section.get_type(key)()
    section[key] = _parse_value(text, current, f"{where}.{key}")


def _unknown(name: str, key: str, section: ml_collections.ConfigDict) -> str:
    close = difflib.get_close_matches(key, list(section.keys()), n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"the keys there are {', '.join(sorted(section.keys()))}."
    return f"Unknown config key {name}: {hint}"
