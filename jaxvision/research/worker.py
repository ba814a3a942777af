"""One run of a suite in a process of its own (jaxvision/research/scheduled.py starts it):

    python -m jaxvision.research.worker SUBDIR CORE < pickled resolved run config

It moves itself to CORE before jax or TensorFlow start, so that their thread pools are one
thread wide (a preexec_fn would make the suite fork, which a process running jax must not).

Exit codes are jaxvision.main's: 0 done, 1 failed (its `error:` line last in the output), 75
stopped by a signal with its checkpoint saved.
"""

from __future__ import annotations

import os
import pickle
import sys

from jaxvision import interrupts, supervisor
from jaxvision.main import EXIT_INTERRUPTED, USER_ERRORS


def main(sub: str, core: int) -> int:
    os.sched_setaffinity(0, {core})
    supervisor.die_with_parent()  # killing the suite kills its runs
    config = pickle.load(sys.stdin.buffer)
    try:
        with interrupts.stop_at_once():
            from jaxvision.research import runs

            stopped = runs.of(config).run(config, sub)
            if stopped or interrupts.pending:
                print(stopped or f"Stopped by {interrupts.pending} after the run's last step.", flush=True)
                return EXIT_INTERRUPTED
        return 0
    except (interrupts.StoppedOutsideAStep, KeyboardInterrupt):
        print("Stopped outside a training step; every checkpoint on disk is whole.", flush=True)
        return EXIT_INTERRUPTED
    except USER_ERRORS as error:
        print(f"error: {error}", flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2])))
