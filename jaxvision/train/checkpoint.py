"""Orbax checkpoints in the workdir: the latest few and the best one, written atomically.

  WORKDIR/checkpoints/STEP/  the latest `config.checkpoint.keep` states
  WORKDIR/best/STEP/         the state with the best monitored metric so far

Each holds 'state' (the TrainState as host arrays) and 'meta' (JSON: epoch, loop bookkeeping
such as early-stopping counters, and the metrics that made it best). Orbax writes into a
temporary directory and renames it when complete, so a run killed mid-save leaves the previous
checkpoints readable; leftovers are cleaned up on the next start. In a multi-process run every
process calls `save` (orbax synchronises them) and process 0 writes.
"""

from __future__ import annotations

import os
from typing import Any

import flax.serialization
import jax
import orbax.checkpoint as ocp

from jaxvision.train.state import TrainState


class CheckpointError(RuntimeError):
    """A checkpoint exists but cannot be read into this run's state."""


def _manager(directory: str, keep: int, read_only: bool) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep,
        create=not read_only,
        read_only=read_only,
        cleanup_tmp_directories=not read_only,
    )
    return ocp.CheckpointManager(directory, options=options, item_names=("state", "meta"))


class Checkpoints:
    """The latest and best checkpoints of one workdir."""

    def __init__(self, workdir: str, keep: int = 2, read_only: bool = False):
        workdir = os.path.abspath(workdir)
        self.directory = os.path.join(workdir, "checkpoints")
        self._managers = {
            "latest": _manager(self.directory, keep, read_only),
            "best": _manager(os.path.join(workdir, "best"), 1, read_only),
        }

    def step(self, which: str = "latest") -> int | None:
        """The step of the latest or best checkpoint, None if there is none."""
        return self._managers[which].latest_step()

    def save(self, state: TrainState, meta: dict[str, Any], best: bool = False) -> None:
        """Saves `state` (host or replicated-away arrays) at its step; also as the best if asked."""
        step = int(state.step)
        args = ocp.args.Composite(
            state=ocp.args.StandardSave(flax.serialization.to_state_dict(state)),
            meta=ocp.args.JsonSave(meta),
        )
        names = ("latest", "best") if best else ("latest",)
        for name in names:
            if self._managers[name].latest_step() != step:
                # One save in flight at a time: in a multi-process run, the barriers of two
                # managers' background saves would interleave differently on each process
                # and deadlock.
                self.wait()
                self._managers[name].save(step, args=args)

    def restore(self, target: TrainState, which: str = "latest") -> tuple[TrainState, dict] | None:
        """The latest or best state, shaped like `target`, with its meta; None if there is none."""
        manager = self._managers[which]
        step = manager.latest_step()
        if step is None:
            return None
        # Host (numpy) leaves in the template make orbax restore host arrays on every process.
        template = flax.serialization.to_state_dict(jax.device_get(target))
        try:
            restored = manager.restore(
                step,
                args=ocp.args.Composite(state=ocp.args.StandardRestore(template), meta=ocp.args.JsonRestore()),
            )
        except Exception as error:  # orbax raises many types; the user needs one sentence.
            raise CheckpointError(
                f"The checkpoint {manager.directory}/{step} could not be read ({type(error).__name__}: "
                f"{str(error).splitlines()[0] if str(error) else ''}); it was left untouched: check that "
                f"the config matches the run that wrote it, or start in a new --workdir."
            ) from error
        return flax.serialization.from_state_dict(target, restored["state"]), dict(restored["meta"])

    def wait(self) -> None:
        """Blocks until background saves are on disk."""
        for manager in self._managers.values():
            manager.wait_until_finished()

    def close(self) -> None:
        for manager in self._managers.values():
            manager.close()
