"""The command line: train an experiment, or evaluate one of its checkpoints.

    python -m jaxvision.main --config EXPERIMENT.py[:variant] [--workdir DIR]
                             [--mode train|evaluate|predict|report] [--split test]
                             [--checkpoint best|latest] [--from_step N] [--config.key=value ...]

`./launch.sh EXPERIMENT.py[:variant] ...` runs exactly this. An experiment file defines
`get_config(variant)` returning an ml_collections.ConfigDict; `--config.a.b=value` overrides a
field (the value is read as the field's type: 3, 1e-3, true, "(64, 32)", text). The workdir
defaults to runs/EXPERIMENT[-variant]; a workdir that holds a checkpoint resumes from it (from
its latest, or from the step `--from_step N` names).
`--mode evaluate` scores a checkpoint on a split ('all' = every split, e.g. of another folder
given with --config.data.folder.root), `--mode predict` writes each image's top-5 classes to
WORKDIR/predictions-SPLIT-CHECKPOINT.csv.

Training itself is `jaxvision.train.fit(config, workdir)` (jaxvision/train/loop.py).
"""

from __future__ import annotations

import argparse
import ast
import difflib
import importlib.util
import os
import signal
import sys
import threading
import traceback

import ml_collections

from jaxvision import supervisor

USER_ERRORS = (ValueError, FileNotFoundError, RuntimeError)  # the engine's own errors derive from these
# Exit codes: 0 done, 1 failed (one sentence on stderr), 2 a command-line mistake, and this one for a
# run stopped by SIGTERM/SIGINT after saving its checkpoint: run the same command again to resume
# (EX_TEMPFAIL, "try again later"; a SLURM script can requeue on it).
EXIT_INTERRUPTED = 75


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


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[tuple[str, str]]]:
    parser = argparse.ArgumentParser(prog="python -m jaxvision.main", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="EXPERIMENT.py[:variant]")
    parser.add_argument("--workdir", help="where checkpoints and logs go (default runs/EXPERIMENT[-variant])")
    parser.add_argument(
        "--mode",
        choices=("train", "evaluate", "predict", "report"),
        default="train",
        help="evaluate: metrics of a checkpoint; predict: its top-5 classes per image, as CSV; "
        "report: redraw the figures and tables of a finished run or suite",
    )
    parser.add_argument(
        "--split", default="test", help="split to evaluate or predict ('all': every split of the dataset)"
    )
    parser.add_argument("--checkpoint", choices=("best", "latest"), default="best", help="checkpoint to score")
    parser.add_argument(
        "--from_step",
        type=int,
        help="train: resume from this checkpoint step; the later ones are renamed STEP.set-aside (kept)",
    )
    args, rest = parser.parse_known_args(argv)
    overrides, i = [], 0
    while i < len(rest):
        arg = rest[i]
        if not arg.startswith("--config."):
            parser.error(f"unrecognised argument {arg!r}: overrides look like --config.key=value")
        if "=" in arg:
            key, value = arg[len("--config.") :].split("=", 1)
        elif i + 1 < len(rest):
            key, value = arg[len("--config.") :], rest[i + 1]
            i += 1
        else:
            parser.error(f"{arg} needs a value: --config.key=value")
        overrides.append((key, value))
        i += 1
    return args, overrides


def _default_workdir(spec: str) -> str:
    path, _, variant = spec.partition(":")
    name = os.path.splitext(os.path.basename(path))[0]
    return os.path.join("runs", f"{name}-{variant}" if variant else name)


def _run_mode(args, config, workdir: str) -> int:
    """Trains, scores or reports on the resolved `config` in `workdir`; the exit code."""
    from jaxvision import train
    from jaxvision.weights import warmstart
    from jaxvision.research import outcomes, suite

    if args.mode == "evaluate":
        train.evaluate(config, workdir, split=args.split, which=args.checkpoint)
    elif args.mode == "predict":
        print(f"Predictions written: {train.predict(config, workdir, split=args.split, which=args.checkpoint)}")
    elif args.mode == "report":
        if not suite.is_suite(config) and "report" not in config:
            raise UsageError("This experiment's config has no report section (config.report): nothing to draw.")
        drawn = (
            suite.write_report(config, workdir)
            if suite.is_suite(config)
            else outcomes.run_report(config, workdir)[0][-1]
        )
        print(f"Report written: {drawn}")
    elif suite.is_suite(config):  # several runs and one report (quickstart, paper tables)
        message, interrupted = suite.run(config, workdir)
        print(message, file=sys.stderr if interrupted else sys.stdout)
        return EXIT_INTERRUPTED if interrupted else 0
    else:
        if args.from_step is not None:
            print(train.set_aside_after(workdir, args.from_step), file=sys.stderr)
        started = warmstart.prepare(config, workdir)  # config.init: begin from borrowed weights
        if started:
            print(started)
        result = train.fit(config, workdir)
        if result.status == "interrupted":
            print(result.message, file=sys.stderr)
            return EXIT_INTERRUPTED
        print(result.message)
        if "report" in config:  # curves, figures and results.md beside the run
            print(f"Report written: {outcomes.run_report(config, workdir)[0][-1]}")
    return 0


class StoppedOutsideAStep(Exception):
    """SIGTERM outside the training loop (start-up, data preparation, a report): stop at once."""


def _stop_at_once(signum, frame):
    raise StoppedOutsideAStep(signal.Signals(signum).name)


def _configured_run(args, overrides) -> int:
    # Imported here so that `--help` and command-line mistakes answer at once.
    from jaxvision import train
    from jaxvision.weights import warmstart
    from jaxvision.research import suite

    config = train.resolve(load_config(args.config))
    for key, value in overrides:
        apply_override(config, key, value)
    config = train.resolve(config)  # checks the overridden values too
    workdir = args.workdir or _default_workdir(args.config)
    if args.from_step is not None and (args.mode != "train" or suite.is_suite(config)):
        raise UsageError(
            "--from_step resumes the training of one experiment: give it with --mode train and a single run's "
            "experiment file (a suite's run has its own sub-workdir)."
        )
    if args.from_step is not None and supervisor.multi_process_environment():
        raise UsageError(
            "--from_step renames checkpoints, which every process of a multi-process run would race to do: "
            "rename the later STEP folders of WORKDIR/checkpoints and WORKDIR/best by hand, then start as usual."
        )
    if args.mode in ("evaluate", "predict") and suite.is_suite(config):
        raise UsageError(
            f"{args.config} runs several experiments: score one of them with its own experiment "
            "file and its sub-workdir (--mode report redraws the whole report)."
        )
    if not suite.is_suite(config):
        config = warmstart.bind(config, workdir)  # the graph its weights need (config.init)
    return _run_mode(args, config, workdir)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if supervisor.multi_process_environment() and not os.environ.get(supervisor.ENV_FLAG):
        return supervisor.run(argv)  # a lost peer: one sentence instead of jax's abort
    args, overrides = parse_args(argv)
    # The training loop installs its own handler (save, then stop); elsewhere SIGTERM stops at
    # once, like Ctrl-C, and the exit code still says "run me again" to a batch system.
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _stop_at_once) if in_main_thread else None
    try:
        return _configured_run(args, overrides)
    except (StoppedOutsideAStep, KeyboardInterrupt) as stop:
        name = str(stop) if isinstance(stop, StoppedOutsideAStep) else "SIGINT"
        _error_line(
            f"Stopped by {name} outside a training step; every checkpoint on disk is whole: run the same "
            "command again to continue."
        )
        return EXIT_INTERRUPTED
    except USER_ERRORS as error:
        if os.environ.get("JAXVISION_TRACEBACK"):
            raise
        _error_line(f"error: {error}")
        print("(set JAXVISION_TRACEBACK=1 to see where it came from)", file=sys.stderr)
        from jaxvision.train import PeerLost  # already imported: errors come after the import

        if isinstance(error, PeerLost):
            # Leave now: jax's exit handler would wait at a shutdown barrier for the dead peer.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(1)
        return 1
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


def _error_line(message: str) -> None:
    import tqdm  # its write lifts a progress bar the message interrupted off the line first

    tqdm.tqdm.write(message, file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
