"""Opening a run: the one place where a config becomes pipelines, an engine and checkpoints.

Training (`loop.fit`), scoring (`scoring.evaluate`, `predict`), the warm start
(`warmstart.prepare`) and the reports (`research.trained`) all open their run here, so the config is
resolved once and every run is built the same way.
"""

from __future__ import annotations

import dataclasses
import functools
import os

import jax
import ml_collections

from jaxvision.train import lock
from jaxvision.train.checkpoint import Checkpoints, writable_workdir
from jaxvision.train.config import resolve
from jaxvision.train.distributed import initialize_from_environment
from jaxvision.train.engine import Engine, build_engine


@dataclasses.dataclass
class OpenRun:
    """A run's resolved config, its data pipelines, its engine and its checkpoints. Close it
    (or use it as a context manager) to finish pending saves. The engine is built when first
    asked for, so that what the data and checkpoints say can be checked before."""

    config: ml_collections.ConfigDict
    workdir: str
    pipelines: object  # jaxvision.data.Pipelines
    checkpoints: Checkpoints
    lock: str | None = None  # the workdir's lock (jaxvision.train.lock) when opened for writing

    @functools.cached_property
    def engine(self) -> Engine:
        return build_engine(self.config, self.pipelines.info, max(self.pipelines.steps_per_epoch, 1))

    def close(self) -> None:
        try:
            self.checkpoints.wait()
            self.checkpoints.close()
        finally:
            if self.lock:
                lock.release(self.lock)
                self.lock = None

    def __enter__(self) -> "OpenRun":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_run(
    config: ml_collections.ConfigDict, workdir: str, *, read_only: bool = False, splits: tuple[str, ...] | None = None
) -> OpenRun:
    """Resolves `config` and opens its run in `workdir`.

    `read_only` opens a finished run to score or report on it: its workdir must exist and is
    never written. `splits` reads only these splits, for evaluation (nothing is trained).
    """
    from jaxvision import data  # TensorFlow (tf.data) loads only when a run reads data

    config = resolve(config)
    initialize_from_environment(config.peer_timeout_s)  # before anything touches a device
    if read_only:
        workdir = os.path.abspath(workdir)
        if not os.path.isdir(os.path.join(workdir, "checkpoints")):
            raise FileNotFoundError(
                f"{workdir} holds no checkpoints: train there first (--mode train), or point --workdir at a run."
            )
    else:
        workdir = writable_workdir(workdir)
    held = lock.acquire(workdir) if not read_only and jax.process_index() == 0 else None
    try:
        if splits is not None:
            config.data.train_split = ""
            config.data.eval_splits = tuple(splits)
        pipelines = data.make_pipelines(config)
        checkpoints = Checkpoints(workdir, keep=config.checkpoint.keep, read_only=read_only)
    except BaseException:
        if held:
            lock.release(held)
        raise
    return OpenRun(config, workdir, pipelines, checkpoints, held)
