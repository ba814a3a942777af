"""One run of a suite trained whole under an ablation variant (benchmarks/ablations.py), to see
where a change that only rounds differently sends a training run.

    python -m benchmarks.ablation_run experiments/quickstart.py deep_cnn '{"batch_norm": "two_pass"}' \
        --workdir runs/ablation-deep_cnn-two_pass

The run is the suite's own (its seed and settings); compare its metrics.jsonl with the suite's
run of the same name.
"""

from __future__ import annotations

import argparse
import json
import os

from benchmarks import ablations
from jaxvision.configs import load_config
from jaxvision.research import runs, suite

SWAPS = set(ablations.CHOICES) - set(ablations.BENCHMARK_ONLY)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", help="a suite's experiment file, e.g. experiments/quickstart.py[:variant]")
    parser.add_argument("run", help="the name of one of its runs, e.g. deep_cnn")
    parser.add_argument(
        "variant", type=json.loads, help='an ablation variant as JSON, e.g. \'{"batch_norm": "two_pass"}\''
    )
    parser.add_argument("--workdir", required=True)
    args = parser.parse_args()
    config = load_config(args.experiment)
    if args.run not in config.get("runs", {}):
        parser.error(f"{args.experiment} has no run {args.run!r}: use one of {', '.join(config.suite.order)}.")
    if other := sorted(set(args.variant) - SWAPS):
        parser.error(f"only the layer swaps {', '.join(sorted(SWAPS))} apply to a whole run, not {other}.")
    try:
        ablations.apply(args.variant)
    except ValueError as e:
        parser.error(str(e))
    config.suite.order = (args.run,)
    workdir = os.path.abspath(args.workdir)
    run = suite.resolved_runs(config, workdir)[args.run]
    runs.of(run).run(run, os.path.join(workdir, args.run))


if __name__ == "__main__":
    main()
