"""The training loop: `fit(config, workdir)`.

One epoch = `steps_per_epoch` pmapped train steps over this process's share of the training
split, then an evaluation of every non-test split, then a checkpoint (the latest few, and the
best by `config.monitor`). Early stopping ends training after `config.early_stopping.patience`
epochs without improvement; a final evaluation on 'test' (if the data has one) uses the best
state (`config.test_with`).

Resume is exact: the data order depends only on (seed, epoch, step), every step's randomness on
(state.rng, step), and the early-stopping counters are in the checkpoint, so a run restarted
from any checkpoint reproduces an uninterrupted run bit for bit on the same machine.
"""

from __future__ import annotations

import collections
import dataclasses
import time

import jax
import ml_collections
import numpy as np
from flax import jax_utils

from jaxvision.metrics import Ratio
from jaxvision.train import features
from jaxvision.train.checkpoint import Checkpoints, check_class_names, run_meta
from jaxvision.train.distributed import PeerLost
from jaxvision.train.engine import Engine
from jaxvision.train.logs import RunLog
from jaxvision.train.monitor import Monitor
from jaxvision.train.run import open_run
from jaxvision.train.signals import StopRequests
from jaxvision.train.state import TrainState
from jaxvision.train.steps import WEIGHT_GROWTH_LIMIT, replicate
from jaxvision.train.sums import add, evaluate_split, summarize

Results = dict[str, dict[str, float]]  # split -> metric -> value
STEPS_IN_FLIGHT = 2  # dispatches made after the one whose metrics the host reads (0: read each at once)


class TrainingDiverged(RuntimeError):
    """The loss or the gradient norm stopped being finite."""


@dataclasses.dataclass
class FitResult:
    state: TrainState  # the last state trained (host arrays), not necessarily the best
    status: str  # 'finished', 'early_stopped' or 'interrupted'
    message: str  # one line for people
    results: Results  # the latest evaluation of each split ('train' = the last epoch's average)


# --- the run ----------------------------------------------------------------------------------


def _format(results: Results) -> str:
    parts = []
    for split, metrics in results.items():
        hidden = ("grad_norm", "learning_rate", "epoch_seconds")
        shown = [f"{k} {v:.4g}" for k, v in metrics.items() if "/" not in k and k not in hidden]
        parts.append(f"{split}: " + ", ".join(shown))
    return " | ".join(parts)


def _dispatches(batches, start: int, first_step: int, most: int, every: int):
    """(index of the first, [batches]) of each dispatch of an epoch whose steps before `start`
    are done: up to `most` steps each, ending where an index within the epoch is a multiple of
    `most` and where a mid-epoch checkpoint falls (global step, from `first_step` + 1, a
    multiple of `every`), so a resumed epoch groups its steps as an uninterrupted one did."""
    group: list = []
    for i, batch in enumerate(batches, start=start):
        group.append(batch)
        if (i + 1) % most == 0 or (every and (first_step + i + 1) % every == 0):
            yield i + 1 - len(group), group
            group = []
    if group:
        yield i + 1 - len(group), group


class _Run:
    """One call of `fit`: the loop and its bookkeeping."""

    def __init__(self, config, workdir, pipelines, engine: Engine, log: RunLog, checkpoints: Checkpoints, stop):
        self.config, self.workdir, self.pipelines, self.engine = config, workdir, pipelines, engine
        self.log, self.checkpoints, self.stop = log, checkpoints, stop
        self.monitor = Monitor(
            config.monitor.metric, config.monitor.mode, config.early_stopping.patience, config.early_stopping.min_delta
        )
        # Cross-validation scores its fold of the training photos instead (features.cached).
        self.epoch_splits = ["fold"] if config.cv_folds else [s for s in pipelines.evals if s != "test"]
        self.class_names = pipelines.info.class_names
        self.results: Results = {}
        self.early_stopped = False
        self._check_monitor()
        if config.cache_features:
            features.check(config, engine.model)

    def _check_monitor(self) -> None:
        if not self.monitor.enabled:
            return
        split, _, name = self.config.monitor.metric.partition("/")
        if split not in self.epoch_splits or name.split("/")[0] not in self.engine.metric_names:
            raise ValueError(
                f"config.monitor.metric is {self.config.monitor.metric!r}, but each epoch evaluates the splits "
                f"{self.epoch_splits} with the metrics {list(self.engine.metric_names)}: name one as "
                f"'split/metric', or set it to '' to keep no best checkpoint and stop no run early."
            )

    # -- checkpoints --

    def _save(self, state, best: bool = False) -> None:
        host = jax.device_get(jax_utils.unreplicate(state))
        if not all(np.all(np.isfinite(x)) for x in jax.tree.leaves(host) if np.issubdtype(x.dtype, np.floating)):
            raise TrainingDiverged(
                f"The state at step {int(host.step)} holds non-finite values, so it was not saved; "
                f"the checkpoints in {self.checkpoints.directory} are untouched."
            )
        self.checkpoints.save(
            host,
            run_meta(
                self.monitor.counters(),
                early_stopped=self.early_stopped,
                results=self.results,
                class_names=self.class_names,
            ),
            best=best,
        )

    def _restore(self) -> TrainState:
        restored = self.checkpoints.restore(self.engine.initial_state, say=self.log.warn)
        if restored is None:
            return self.engine.initial_state
        state, meta = restored
        check_class_names(meta, self.class_names, self.workdir, "resume training")
        self.monitor.load(meta["monitor"])
        self.results, self.early_stopped = meta["results"], meta["early_stopped"]
        if int(state.step):
            self.log.say(f"Resuming from the checkpoint at step {int(state.step)} in {self.checkpoints.directory}.")
        return state

    # -- training --

    def _check_finite(self, state, step: int, epoch: int, metrics: dict[str, Ratio]) -> None:
        """Stops the run at a step the train step refused (its metric 'finite' is 0), after saving
        the state before it: the step left it unchanged, so it is finite."""
        growth = float(metrics.pop("weight_growth").total)
        if float(metrics.pop("finite").total) > 0:
            return
        loss = float(metrics["loss"].total / metrics["loss"].count)
        grad_norm = float(metrics["grad_norm"].total)
        what = (
            f"the loss is {loss}"
            if not np.isfinite(loss)
            else f"the gradient norm is {grad_norm}"
            if not np.isfinite(grad_norm)
            else f"its update would have multiplied the weights' norm by {growth:.3g}"
            if growth > WEIGHT_GROWTH_LIMIT
            else "its update would have made the weights non-finite"
        )
        kept = step - 1
        self.checkpoints.wait()
        if self.checkpoints.step() != kept:
            self._save(state)
            self.checkpoints.wait()
        raise TrainingDiverged(
            f"Training diverged at step {step} (epoch {epoch + 1}): {what}. The state before it (step {kept}, "
            f"its update refused) is saved in {self.checkpoints.directory}: lower config.optimizer.learning_rate "
            f"(or set config.optimizer.clip_norm) and run the same command again to continue from step {kept}."
        )

    def _check_batch(self, batch: dict) -> None:
        target = self.engine.task.target
        if target not in batch:
            raise ValueError(
                f"config.task {self.engine.task.name!r} needs batches with '{target}', but dataset "
                f"{self.pipelines.info.name!r} gives {sorted(batch)}: choose a task this dataset supports."
            )

    def _train_epoch(self, state, epoch: int, start: int):
        """Trains from step `start` of `epoch`; returns (state, metric sums, stop was voted).

        Steps are dispatched alone or, with `config.steps_per_dispatch` > 1, several at once
        (`_dispatches`). The host reads a dispatch's metrics and stop votes STEPS_IN_FLIGHT
        dispatches later, so the device never waits for the host's bookkeeping. A refused step
        refuses the steps after it (`go`), so the state read then is still the one before the
        first refused step.
        """
        spe, batch_size = self.pipelines.steps_per_epoch, self.config.batch_size
        every, log_every = self.config.checkpoint.every_steps, self.config.log_every_steps
        sums, stop = None, False
        in_flight: collections.deque = collections.deque()
        go = replicate(np.float32(1.0))
        with self.log.progress(epoch, self.config.num_epochs, spe, start, batch_size) as bar:

            def settle(state, keep: int) -> bool:
                """Reads the dispatches in flight but the `keep` latest; whether one voted to stop."""
                nonlocal sums
                voted = False
                while len(in_flight) > keep:
                    last, n, on_devices = in_flight.popleft()
                    metrics, votes = jax.tree.map(lambda x: x[0], jax.device_get(on_devices))  # devices agree
                    each = [jax.tree.map(lambda x, j=j: x[j], metrics) for j in range(n)] if n > 1 else [metrics]
                    for step, metrics in enumerate(each, start=last - len(each) + 1):
                        self._check_finite(state, step, epoch, metrics)
                        sums = add(sums, metrics)
                        bar.update(batch_size)
                        if log_every and step % log_every == 0:
                            self.log.write(step, epoch, "train_step", summarize(metrics, self.class_names))
                    bar.set_postfix(loss=f"{metrics['loss'].total / metrics['loss'].count:.4g}", refresh=False)
                    voted = voted or float(votes) > 0
                return voted

            batches = self.pipelines.train(epoch, start)
            for i, group in _dispatches(batches, start, epoch * spe, self.config.steps_per_dispatch, every):
                if i == start:
                    self._check_batch(group[0])
                vote = np.full((jax.local_device_count(),), float(self.stop.requested), np.float32)
                if len(group) == 1:
                    state, metrics, votes, go = self.engine.train_step(state, group[0], vote, go)
                else:
                    stacked = jax.tree.map(lambda *xs: np.stack(xs, axis=1), *group)
                    state, metrics, votes, go = self.engine.train_steps(state, stacked, vote, go)
                i += len(group) - 1
                step = epoch * spe + i + 1
                in_flight.append((step, len(group), (metrics, votes)))
                stop = settle(state, STEPS_IN_FLIGHT)
                if not stop and every and step % every == 0 and i + 1 < spe:
                    stop = settle(state, 0)
                    if not stop:
                        self._save(state)
                if stop:
                    break
            stop = settle(state, 0) or stop
        return state, sums, stop

    def run(self) -> FitResult:
        host_state = self._restore()
        if self.config.cache_features:
            from jaxvision import data

            self.pipelines = features.cached(self.config, self.engine, host_state, data.make_pipelines, self.log.say)
        spe = self.pipelines.steps_per_epoch
        step = int(host_state.step)
        state = replicate(host_state)
        epoch = step // spe
        while epoch < self.config.num_epochs and not self.early_stopped:
            started = time.time()
            state, sums, stop = self._train_epoch(state, epoch, step % spe)
            step = int(jax_utils.unreplicate(state).step)
            if stop and step % spe:
                # Mid-epoch: save here; the epoch's evaluation runs after the resume.
                self._save(state)
                return self._interrupted(state, step)
            # After a mid-epoch resume, 'train' averages the steps run since the resume.
            train = summarize(sums, self.class_names) if sums else {}
            train.update(learning_rate=float(self.engine.schedule(step)), epoch_seconds=time.time() - started)
            self.results = {"train": train}
            for split in self.epoch_splits:
                self.results[split] = evaluate_split(self.engine, state, self.pipelines.evals[split], self.class_names)
            improved = self.monitor.update(epoch, self.results)
            self.early_stopped = self.monitor.should_stop
            for split, metrics in self.results.items():
                self.log.write(step, epoch, split, metrics)
            if (
                improved
                or stop
                or self.early_stopped
                or epoch + 1 == self.config.num_epochs
                or (epoch + 1) % self.config.checkpoint.every_epochs == 0
            ):
                self._save(state, best=improved)
            self.log.say(
                f"epoch {epoch + 1}/{self.config.num_epochs} step {step}  {_format(self.results)}"
                + ("  (best)" if improved else "")
            )
            if stop:
                return self._interrupted(state, step)
            epoch += 1
        if self.early_stopped:
            self.log.say(
                f"Early stopping: {self.monitor.metric} has not improved for {self.monitor.bad_epochs} "
                f"epochs; the best was {self.monitor.best:.4g} after epoch {self.monitor.best_epoch + 1}."
            )
        self._final_test(state, step)
        status = "early_stopped" if self.early_stopped else "finished"
        message = f"Training {status.replace('_', ' ')} at step {step}; results in {self.workdir}."
        return FitResult(jax.device_get(jax_utils.unreplicate(state)), status, message, self.results)

    def _final_test(self, state, step: int) -> None:
        if "test" not in self.pipelines.evals:
            return
        which = "last"
        if self.config.test_with == "best" and self.checkpoints.step("best") is not None:
            self.checkpoints.wait()
            state, which = replicate(self.checkpoints.restore(self.engine.initial_state, "best")[0]), "best"
        self.results["test"] = evaluate_split(self.engine, state, self.pipelines.evals["test"], self.class_names)
        self.log.write(step, step // self.pipelines.steps_per_epoch, "test", self.results["test"])
        self.log.say(f"{_format({'test': self.results['test']})}  ({which} state)")

    def _interrupted(self, state, step: int) -> FitResult:
        self.checkpoints.wait()
        message = (
            f"Stopped by {self.stop.signal_name or 'a peer process'} at step {step}; the checkpoint is "
            f"saved in {self.checkpoints.directory}. Run the same command again (same --workdir) to resume."
        )
        return FitResult(jax.device_get(jax_utils.unreplicate(state)), "interrupted", message, self.results)


def fit(config: ml_collections.ConfigDict, workdir: str) -> FitResult:
    """Trains `config`'s experiment in `workdir`, resuming from its latest checkpoint if any.

    Raises TrainingDiverged when the loss or gradient norm stops being finite (the checkpoints
    are kept), PeerLost when another process of a multi-process run dies. SIGTERM/SIGINT save a
    checkpoint and return with status 'interrupted'.
    """
    run = open_run(config, workdir)
    try:
        engine = run.engine  # a model that does not fit the data stops here, before anything is written
    except BaseException:
        run.close()
        raise
    log = RunLog(run.workdir, enabled=jax.process_index() == 0)
    log.save_config(run.config)
    log.save_environment()
    try:
        with StopRequests() as stop:
            return _Run(run.config, run.workdir, run.pipelines, engine, log, run.checkpoints, stop).run()
    except jax.errors.JaxRuntimeError as error:
        if jax.process_count() > 1:
            raise PeerLost.from_error(error) from error
        raise
    finally:
        run.close()
        log.close()
