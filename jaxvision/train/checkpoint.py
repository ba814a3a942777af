"""Orbax checkpoints in the workdir: the latest few and the best one, written atomically.

  WORKDIR/checkpoints/STEP/  the latest `config.checkpoint.keep` states
  WORKDIR/best/STEP/         the state with the best monitored metric so far

Each holds 'state' (the TrainState as host arrays) and 'meta' (JSON, `run_meta`: the loop's
bookkeeping of monitor and early stopping, the results so far, the class names). Orbax writes into a
temporary directory and renames it when complete, so a run killed mid-save leaves the previous
checkpoints readable; leftovers are cleaned up on the next start. In a multi-process run every
process calls `save` (orbax synchronises them) and process 0 writes.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import sys
import tempfile
from typing import Any

import flax.serialization
import jax
import numpy as np
import orbax.checkpoint as ocp

from jaxvision.train import lock
from jaxvision.train.state import TrainState


class CheckpointError(RuntimeError):
    """A checkpoint exists but cannot be read into this run's state."""


@contextlib.contextmanager
def _quiet_asyncio():
    """When reading a damaged checkpoint fails, orbax leaves sibling reads whose errors asyncio
    logs, with tracebacks, as they are collected; the one error that matters is raised."""
    logger = logging.getLogger("asyncio")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        gc.collect()
        logger.setLevel(level)


def _ignore_late_callbacks() -> None:
    """After a failed read, tensorstore threads may still report to the closed event loop of
    orbax's reads; Python would print each as an 'Exception ignored' traceback."""
    previous = sys.unraisablehook
    if getattr(previous, "jaxvision", False):
        return

    def hook(unraisable):
        if not (isinstance(unraisable.exc_value, RuntimeError) and str(unraisable.exc_value) == "Event loop is closed"):
            previous(unraisable)

    hook.jaxvision = True
    sys.unraisablehook = hook


def _warn(message: str) -> None:
    print(message, file=sys.stderr)


def _zeros_like(stored):
    """Host arrays shaped like a stored tree's metadata: a template to restore it as it is."""
    return jax.tree.map(lambda leaf: np.zeros(leaf.shape, leaf.dtype), stored)


def _short(error: Exception, limit: int = 120) -> str:
    """The first line of an error, cut to `limit` characters (orbax's can run to thousands)."""
    line = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return line if len(line) <= limit else line[:limit].rstrip() + "..."


def _manager(directory: str, keep: int, read_only: bool) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep,
        create=not read_only,
        read_only=read_only,
        cleanup_tmp_directories=not read_only,
    )
    # Handlers named up front, so that the stored arrays' shapes can be read before restoring them.
    handlers = {"state": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()}
    return ocp.CheckpointManager(directory, options=options, item_handlers=handlers)


def writable_workdir(workdir: str) -> str:
    """`workdir` as an absolute path, created if needed, after checking a file can be written
    there: a run learns that its folder is unusable before it does any work."""
    workdir = os.path.abspath(workdir)
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise CheckpointError(f"--workdir {workdir} is a file, not a folder: give a folder for the run.")
    try:
        os.makedirs(workdir, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=workdir, prefix=".write-test-"):
            pass
    except OSError as e:
        raise CheckpointError(
            f"--workdir {workdir} cannot be written ({e.strerror}): give a folder you can write to."
        ) from None
    return workdir


def set_aside_after(workdir: str, step: int) -> str:
    """Makes checkpoint `step` the one a resume starts from: the later ones (latest and best) are
    renamed STEP.set-aside, never deleted. Returns what was done, in one sentence."""
    workdir = os.path.abspath(workdir)
    folders = {name: os.path.join(workdir, name) for name in ("checkpoints", "best")}
    saved = {
        name: sorted(int(d) for d in os.listdir(path) if d.isdigit()) if os.path.isdir(path) else []
        for name, path in folders.items()
    }
    if step not in saved["checkpoints"]:
        have = ", ".join(map(str, saved["checkpoints"])) or "none"
        raise CheckpointError(
            f"--from_step {step}: {folders['checkpoints']} holds no checkpoint of that step (it holds {have}): "
            "give one of those."
        )
    held = lock.acquire(workdir)  # no run may be writing while its checkpoints are renamed
    try:
        later = []
        for name, path in folders.items():
            for s in (s for s in saved[name] if s > step):
                os.replace(os.path.join(path, str(s)), os.path.join(path, f"{s}.set-aside"))
                later.append(f"{name}/{s}")
    finally:
        lock.release(held)
    moved = f"; set aside (renamed STEP.set-aside, kept): {', '.join(later)}" if later else ""
    return f"Resuming from the checkpoint at step {step} in {folders['checkpoints']}{moved}."


def run_meta(
    monitor: dict, *, early_stopped: bool = False, results: dict | None = None, class_names=()
) -> dict[str, Any]:
    """What a checkpoint records beside the state: the training loop reads it back on resume,
    scoring compares `class_names` with the images it is given."""
    return {
        "monitor": monitor,
        "early_stopped": early_stopped,
        "results": results or {},
        "class_names": list(class_names),
    }


def check_class_names(meta: dict, names, workdir: str, what: str) -> None:
    """Refuses to `what` ('score it', 'resume training') the checkpoint described by `meta` on data
    whose classes differ from those it was trained on: the head's outputs would mean other classes."""
    trained_on = meta.get("class_names")
    if trained_on is not None and list(trained_on) != list(names):
        raise ValueError(
            f"The checkpoint in {workdir} was trained on {len(trained_on)} classes ({_names(trained_on)}), "
            f"but this dataset has {len(names)} ({_names(names)}): {what} on data with the same classes, in "
            f"the same order."
        )


def _names(names) -> str:
    names = list(names)
    return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")


class Checkpoints:
    """The latest and best checkpoints of one workdir."""

    def __init__(self, workdir: str, keep: int = 2, read_only: bool = False):
        workdir = os.path.abspath(workdir)
        self.directory = os.path.join(workdir, "checkpoints")
        self._read_only = read_only
        self._pending: tuple[str, int, int | None] | None = None  # the save in flight: folder, step, step before
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
            manager = self._managers[name]
            if manager.latest_step() != step:
                # One save in flight at a time: in a multi-process run, the barriers of two
                # managers' background saves would interleave differently on each process
                # and deadlock.
                self.wait()
                self._pending = (manager.directory, step, manager.latest_step())
                with self._failed_save():
                    manager.save(step, args=args)

    @contextlib.contextmanager
    def _failed_save(self):
        """A save that fails (a full disk, a folder made read-only) becomes one sentence that
        says the checkpoint before it is intact."""
        try:
            yield
        except Exception as error:
            _ignore_late_callbacks()
            directory, step, before = self._pending or (self.directory, "?", None)
            intact = (
                f"the previous checkpoint (step {before}) is intact"
                if before is not None
                else "no earlier checkpoint was written"
            )
            raise CheckpointError(
                f"Saving the checkpoint of step {step} in {directory} failed ({_short(error)}); "
                f"{intact}: free disk space or fix the folder, then run the same command again "
                f"to resume."
            ) from error

    def restore(self, target: TrainState, which: str = "latest", say=None) -> tuple[TrainState, dict] | None:
        """The latest or best state, shaped like `target`, with its meta; None if there is none.

        A checkpoint whose arrays do not fit `target` (another model config) stops with a
        sentence. A damaged one is moved aside (renamed STEP.damaged, never deleted; left in place
        when read-only) and the one before it is restored instead, which `say` reports.
        """
        _ignore_late_callbacks()  # before the first read: a damaged one reports while it fails
        manager = self._managers[which]
        steps = sorted(manager.all_steps(), reverse=True)
        # Host (numpy) leaves in the template make orbax restore host arrays on every process.
        template = flax.serialization.to_state_dict(jax.device_get(target))
        for i, step in enumerate(steps):
            where = os.path.join(manager.directory, str(step))
            try:
                with _quiet_asyncio():
                    stored = manager.item_metadata(step)["state"]
                    other_optimizer = self._check_fits(stored, template, where)
                    wanted = (
                        dict(template, opt_state=_zeros_like(stored.tree["opt_state"])) if other_optimizer else template
                    )
                    restored = manager.restore(
                        step,
                        args=ocp.args.Composite(state=ocp.args.StandardRestore(wanted), meta=ocp.args.JsonRestore()),
                    )
            except CheckpointError:
                raise
            except Exception as error:  # orbax raises many types; the user needs one sentence.
                _ignore_late_callbacks()
                reason = _short(error)
                if i + 1 == len(steps):
                    raise CheckpointError(
                        f"The checkpoint {where} is damaged ({reason}) and no earlier {which} one is left: start in "
                        f"a new --workdir (the damaged one was left as it is)."
                    ) from error
                moved = self._move_aside(where)
                manager.reload()  # forget the step moved aside, so that it is saved again when reached
                (say or _warn)(
                    f"warning: the checkpoint {where} is damaged ({reason}); {moved}using the one "
                    f"before it, step {steps[i + 1]}."
                )
                continue
            if other_optimizer:
                restored["state"]["opt_state"] = template["opt_state"]
                (say or _warn)(
                    f"notice: the checkpoint {where} was trained with another optimizer setup (its state holds "
                    "other arrays than this config's): its weights and batch statistics go on, the optimizer's "
                    "state (moments, schedule count) starts afresh."
                )
            return flax.serialization.from_state_dict(target, restored["state"]), dict(restored["meta"])
        return None

    @staticmethod
    def _check_fits(stored, template: dict, where: str) -> bool:
        """Stops when the checkpoint's arrays are not those of this run's state (another model);
        True when only the optimizer's state differs (clip_norm added, another optimizer)."""
        if stored is None:  # written by a version of orbax that leaves no metadata: nothing to compare
            return False
        found = {
            jax.tree_util.keystr(p): tuple(leaf.shape)
            for p, leaf in jax.tree_util.tree_flatten_with_path(stored.tree)[0]
        }
        wanted = {
            jax.tree_util.keystr(p): tuple(np.shape(leaf))
            for p, leaf in jax.tree_util.tree_flatten_with_path(template)[0]
        }
        differ = [key for key in set(found) | set(wanted) if found.get(key) != wanted.get(key)]
        if differ and all(key.startswith("['opt_state']") for key in differ):
            return True
        for key in sorted(differ, key=lambda k: (not k.startswith("['params']"), k))[:1]:
            have = f"holds {key} with shape {found[key]}" if key in found else f"has no {key}"
            need = f"this config's run has {wanted[key]}" if key in wanted else "this config's run has none"
            raise CheckpointError(
                f"The checkpoint {where} {have}, but {need}: run with the config it was trained with (its "
                f"config.json), or start in a new --workdir."
            )
        return False

    def _move_aside(self, where: str) -> str:
        if self._read_only:
            return ""
        target = f"{where}.damaged"
        os.replace(where, target)
        return f"it was moved to {target}; "

    def meta(self, which: str = "latest") -> dict | None:
        """The meta of the latest or best checkpoint alone (no arrays read); None if there is none."""
        manager = self._managers[which]
        step = manager.latest_step()
        if step is None:
            return None
        try:
            return dict(manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"])
        except Exception as error:  # orbax raises many types; the user needs one sentence.
            raise CheckpointError(
                f"The checkpoint {manager.directory}/{step} could not be read "
                f"({type(error).__name__}); it was left untouched."
            ) from error

    def wait(self) -> None:
        """Blocks until background saves are on disk."""
        for manager in self._managers.values():
            with self._failed_save():
                manager.wait_until_finished()

    def close(self) -> None:
        for manager in self._managers.values():
            manager.close()
