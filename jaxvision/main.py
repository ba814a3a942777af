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
import os
import sys

from jaxvision import interrupts, supervisor
from jaxvision.configs import UsageError, load_config

USER_ERRORS = (ValueError, FileNotFoundError, RuntimeError)  # the engine's own errors derive from these
# Exit codes: 0 done, 1 failed (one sentence on stderr), 2 a command-line mistake, and this one for a
# run stopped by SIGTERM/SIGINT after saving its checkpoint: run the same command again to resume
# (EX_TEMPFAIL, "try again later"; a SLURM script can requeue on it).
EXIT_INTERRUPTED = 75


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
    from jaxvision.research import runs, suite

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
            else runs.of(config).result(config, workdir).files[-1]
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
            print(f"Report written: {runs.of(config).result(config, workdir).files[-1]}")
    return 0


def _configured_run(args, overrides) -> int:
    # Imported here so that `--help` and command-line mistakes answer at once.
    from jaxvision import train
    from jaxvision.weights import warmstart
    from jaxvision.research import suite

    config = train.resolve(load_config(args.config), overrides)
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
    try:
        with interrupts.stop_at_once():
            code = _configured_run(args, overrides)
            if code == 0 and interrupts.pending:  # its exception was dropped (see interrupts.py)
                raise interrupts.StoppedOutsideAStep(interrupts.pending)
        return code
    except (interrupts.StoppedOutsideAStep, KeyboardInterrupt) as stop:
        name = str(stop) if isinstance(stop, interrupts.StoppedOutsideAStep) else "SIGINT"
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


def _error_line(message: str) -> None:
    import tqdm  # its write lifts a progress bar the message interrupted off the line first

    tqdm.tqdm.write(message, file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
